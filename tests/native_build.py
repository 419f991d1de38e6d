"""Shared by the tests that build tests/native/isa_check.cpp (or another
native program) against the C++ core, outside the extension: test_native.py,
test_neon.py, test_avx512_simde.py and test_sanitizers.py."""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "tests", "native")
INCLUDE = os.path.join(ROOT, "include")


def core_sources():
    """The library's C++ core: the same globs setup.py uses."""
    return sorted(glob.glob(os.path.join(ROOT, "src", "common", "*.cpp"))
                  + glob.glob(os.path.join(ROOT, "src", "cpu", "*.cpp")))
