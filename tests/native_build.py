"""Shared by the tests that build tests/native/isa_check.cpp (or another
native program) against the C++ core, outside the extension: test_native.py,
test_neon.py, test_avx512_simde.py and test_sanitizers.py."""
import glob
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "tests", "native")
INCLUDE = os.path.join(ROOT, "include")


def core_sources():
    """The library's C++ core: the same globs setup.py uses."""
    return sorted(glob.glob(os.path.join(ROOT, "src", "common", "*.cpp"))
                  + glob.glob(os.path.join(ROOT, "src", "cpu", "*.cpp")))


def has_simde(cxx):
    """Whether cxx finds SIMDe's AVX-512 header (Debian: libsimde-dev), which
    test_avx512_simde.py and test_sanitizers.py build avx512.cpp on."""
    probe = subprocess.run([cxx, "-x", "c++", "-E", "-", "-o", os.devnull],
                           input="#include <simde/x86/avx512.h>\n", capture_output=True, text=True)
    return probe.returncode == 0


# Compiler flags that build src/cpu/avx512.cpp on SIMDe (see tests/native/avx512_on_simde.h).
# -Wno-psabi: SIMDe passes 64-byte vectors by value without AVX-512.
AVX512_ON_SIMDE = ["-DONEBIT_AVX512_ON_SIMDE", "-I", NATIVE, "-Wno-psabi"]
