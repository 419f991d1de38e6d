"""The C++ core builds and runs on its own, with no Python headers: compile a
small program against include/ and the core sources with the system C++
compiler and run it."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def core_sources():
    # The same globs setup.py uses.
    return sorted(glob.glob(os.path.join(ROOT, "src", "common", "*.cpp"))
                  + glob.glob(os.path.join(ROOT, "src", "cpu", "*.cpp")))


def test_core_builds_and_runs_without_python(tmp_path):
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    exe = tmp_path / "standalone_core"
    cmd = [cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-I", os.path.join(ROOT, "include"),
           os.path.join(ROOT, "tests", "native", "standalone_core.cpp"), *core_sources(),
           "-o", str(exe), "-pthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    # The core never includes Python.h: a build without Python's include path worked.
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: [quantize] group_size=48 is not supported" in run.stdout
