"""The NEON kernels, tested on any machine: cross-compile tests/native/isa_check.cpp
with the core sources for aarch64 (static; native_build.py's AARCH64 flags)
and run it under qemu user-mode emulation. It compares the NEON kernels with
the scalar reference on random problems (every bit width, group size, mode,
transpose, M regime, a float16 case, 1-3 threads)."""
import platform
import shutil
import subprocess

import pytest

from native_build import AARCH64, AARCH64_CXX, CXX, core_sources, native

NATIVE_ARM64 = platform.machine().lower() in ("aarch64", "arm64")
QEMU = "qemu-aarch64-static"


def test_neon_matches_reference(native_builds):
    if NATIVE_ARM64:
        cxx, runner, static = shutil.which(CXX), [], []
    else:
        cxx, runner, static = shutil.which(AARCH64_CXX), [shutil.which(QEMU)], ["-static"]
        if cxx is None or runner[0] is None:
            pytest.skip(f"needs {AARCH64_CXX} (apt: g++-aarch64-linux-gnu) and {QEMU} (apt: qemu-user-static)")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    jobs = [(src, AARCH64) for src in [native("isa_check.cpp"), *core_sources()]]
    exe = native_builds.program("isa_check_aarch64", cxx, jobs, [*static, "-pthread"])
    run = subprocess.run(runner + [exe], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok:"), run.stdout
