"""The C++ core builds and runs on its own, with no Python headers: a small
program compiled against include/ and the core sources with the system C++
compiler, with no Python include path (native_build.py's SANITIZED build,
shared with test_sanitizers.py), runs and reports its checks."""
import subprocess

from native_build import CXX, require, sanitized_program


def test_core_builds_and_runs_without_python(native_builds):
    require(CXX, "the C++ compiler")
    exe = sanitized_program(native_builds, "standalone_core.cpp")
    run = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: [quantize] group_size=48 is not supported" in run.stdout
    assert "ok: [interleave16] a has no data" in run.stdout
