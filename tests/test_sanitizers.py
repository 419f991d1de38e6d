"""The C++ core under AddressSanitizer and UndefinedBehaviorSanitizer: the
standalone-core program and the CPU kernel sweep (tests/native/isa_check.cpp,
every tail and bit width against the scalar reference) for each SIMD variant
this CPU runs (AVX-512 on SIMDe, sanitized too: test_avx512_simde.py). Any
report fails the test: reads past the end of wq, scales, biases or x at any
tail size, use after free, signed overflow, misaligned loads. And the
emulated Metal kernels, every family, through the emulator built on ucontext
(AddressSanitizer follows swapcontext, not the emulator's own assembly
switch). The builds are native_build.py's SANITIZED ones, shared with the
other native tests."""
import pytest

import pyonebit
from native_build import CXX, require, run_sanitized, sanitized_program, shader_check_program

FAMILIES = ["qmv", "qvm", "qmm", "nax"]
SIMD = [name for name in pyonebit.cpu_kernels()["supported"] if name not in ("scalar", "neon")]


@pytest.fixture(scope="module")
def compiler():
    return require(CXX, "the C++ compiler")


def test_standalone_core(compiler, native_builds):
    assert "ok:" in run_sanitized([sanitized_program(native_builds, "standalone_core.cpp")])


@pytest.mark.parametrize("isa", SIMD)
def test_kernel_sweep(compiler, native_builds, isa):
    out = run_sanitized([sanitized_program(native_builds, "isa_check.cpp"), isa])
    assert out.strip().startswith("ok:"), out


@pytest.mark.skipif("metal-emulated" not in pyonebit.backends(), reason="real Metal build")
@pytest.mark.parametrize("family", FAMILIES)
def test_emulated_kernels(compiler, native_builds, family):
    out = run_sanitized([shader_check_program(native_builds), family])
    assert "all cases match" in out, out
