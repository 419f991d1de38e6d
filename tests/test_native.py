"""The C++ core builds and runs on its own, with no Python headers: compile a
small program against include/ and the core sources with the system C++
compiler and run it."""
import os
import shutil
import subprocess

import pytest

from native_build import INCLUDE, NATIVE, core_sources


def test_core_builds_and_runs_without_python(tmp_path):
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    exe = tmp_path / "standalone_core"
    cmd = [cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-I", INCLUDE,
           os.path.join(NATIVE, "standalone_core.cpp"), *core_sources(),
           "-o", str(exe), "-pthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    # The core never includes Python.h: a build without Python's include path worked.
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: [quantize] group_size=48 is not supported" in run.stdout
    assert "ok: [interleave16] a has no data" in run.stdout
