"""The AVX-512 kernels, tested on any x86-64 machine: build
tests/native/isa_check.cpp with the core sources, compiling avx512.cpp with
ONEBIT_AVX512_ON_SIMDE so that its intrinsics come from portable C
implementations (SIMDe, Debian's libsimde-dev, plus the few its release
lacks in tests/native/avx512_on_simde.h) instead of the CPU. The program
runs the AVX-512 kernels' code paths (mask adds, 16-entry lookups, 16 x 16
transposes, interleaved16 blocks) against the scalar reference over every
bit width, group size, mode, transpose, M regime, a float16 case and 1-3
threads, linked with test_sanitizers.py's sanitized objects; avx512.cpp is
instrumented too. It checks the kernels' logic, not their speed nor the
compiler's AVX-512 code generation. Where the CPU has AVX-512 it is skipped:
test_sanitizers.py's avx512 sweep runs the same program and cases on the
real instructions, sanitized, and test_cpu_kernels.py the optimized build."""
import platform

import pytest

import pyonebit
from native_build import CXX, has_simde, require, run_sanitized, sanitized_program

X86_64 = platform.machine().lower() in ("x86_64", "amd64")
NATIVE_AVX512 = "avx512" in pyonebit.cpu_kernels()["supported"]


@pytest.mark.skipif(not X86_64, reason="avx512.cpp compiles to nothing off x86-64")
@pytest.mark.skipif(NATIVE_AVX512, reason="this CPU runs avx512.cpp itself: test_sanitizers.py's "
                    "avx512 sweep runs the same cases on the real instructions, sanitized")
def test_avx512_kernels_match_reference_on_simde(native_builds):
    if not has_simde(require(CXX, "the C++ compiler")):
        pytest.skip("needs the SIMDe headers (apt: libsimde-dev)")
    exe = sanitized_program(native_builds, "isa_check.cpp", avx512_on_simde=True)
    out = run_sanitized([exe, "avx512"], timeout=1200)
    assert out.startswith("ok:"), out
