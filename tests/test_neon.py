"""The NEON kernels, tested on any machine: cross-compile tests/native/isa_check.cpp
with the core sources for aarch64 (static) and run it under qemu user-mode
emulation. It compares the NEON kernels with the scalar reference on random
problems (every bit width, group size, mode, transpose, M regime, a float16
case, 1-3 threads)."""
import os
import platform
import shutil
import subprocess

import pytest

from native_build import INCLUDE, NATIVE, core_sources

NATIVE_ARM64 = platform.machine().lower() in ("aarch64", "arm64")
CXX = os.environ.get("ONEBIT_AARCH64_CXX", "aarch64-linux-gnu-g++")
QEMU = "qemu-aarch64-static"


def test_neon_matches_reference(tmp_path):
    if NATIVE_ARM64:
        cxx, runner, static = shutil.which(os.environ.get("CXX", "g++")), [], []
    else:
        cxx, runner, static = shutil.which(CXX), [shutil.which(QEMU)], ["-static"]
        if cxx is None or runner[0] is None:
            pytest.skip(f"needs {CXX} (apt: g++-aarch64-linux-gnu) and {QEMU} (apt: qemu-user-static)")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    exe = tmp_path / "isa_check"
    cmd = [cxx, "-std=c++17", "-O2", "-ffp-contract=off", *static, "-I", INCLUDE,
           os.path.join(NATIVE, "isa_check.cpp"), *core_sources(),
           "-o", str(exe), "-pthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(runner + [str(exe)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok:"), run.stdout
