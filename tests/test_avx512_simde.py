"""The AVX-512 kernels, tested on x86-64 machines without AVX-512: build
tests/native/isa_check.cpp with the core sources, compiling avx512.cpp with
ONEBIT_AVX512_ON_SIMDE so that its intrinsics come from portable C
implementations (SIMDe, Debian's libsimde-dev, plus the few its release
lacks in tests/native/avx512_on_simde.h) instead of the CPU. The program
runs the AVX-512 kernels' code paths (mask adds, 16-entry lookups, 16 x 16
transposes, interleaved16 blocks) against the scalar reference over every
bit width, group size, mode, transpose, M regime, a float16 case and 1-3
threads. It checks the kernels' logic, not their speed nor the compiler's
AVX-512 code generation: on a CPU with AVX-512, test_cpu_kernels.py runs
the real thing."""
import os
import platform
import shutil
import subprocess

import pytest

from native_build import AVX512_ON_SIMDE, INCLUDE, NATIVE, core_sources, has_simde

CXX = os.environ.get("CXX", "g++")
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.skipif(not X86_64, reason="avx512.cpp compiles to nothing off x86-64")
def test_avx512_kernels_match_reference_on_simde(tmp_path):
    cxx = shutil.which(CXX)
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    if not has_simde(cxx):
        pytest.skip("needs the SIMDe headers (apt: libsimde-dev)")
    exe = tmp_path / "isa_check"
    cmd = [cxx, "-std=c++17", "-O2", "-ffp-contract=off", *AVX512_ON_SIMDE, "-I", INCLUDE,
           os.path.join(NATIVE, "isa_check.cpp"), *core_sources(), "-o", str(exe), "-pthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), "avx512"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok:"), run.stdout
