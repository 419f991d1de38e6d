"""The CPU kernel choice (src/cpu/kernel_choice.cpp, choose_cpu_kernel) on any
machine: which kernel each shape, bit width, transpose and layout routes to
on every ISA's tuning row (the rows exist in every build, so the table is
checked for NEON on x86 too), when a call stays on one thread, and that the
trace names the kernel that really ran."""
import numpy as np
import pytest

import pyonebit
from pyonebit._testing import cpu_kernel_plan, set_cpu_isa, set_parallel_threshold

RUNNABLE = pyonebit.cpu_kernels()["supported"]


def choice(M, N=64, K=256, bits=1, transpose=True, layout="mlx", isa="avx512", group_size=32):
    rows, packed = (N, K) if transpose else (K, N)
    wq = np.zeros((rows, packed * bits // 32), np.uint32)
    s = np.zeros((rows, packed // group_size), np.float32)
    x = np.zeros((M, K), np.float32)
    return cpu_kernel_plan(x, wq, s, s.copy(), transpose=transpose, group_size=group_size,
                            bits=bits, layout=layout, isa=isa)


# (isa, bits, transpose, M, kernel): the edges of every rule.
ROUTES = [
    # The lookup kernel: 1 bit at any M, 2 bits up to lut_max_m_2bit (AVX-512 2, AVX2 1).
    ("avx512", 1, True, 1, "lut"), ("avx512", 1, True, 4096, "lut"),
    ("avx512", 2, True, 2, "lut"), ("avx512", 2, True, 3, "rows"),
    ("avx2", 1, True, 1, "lut"), ("avx2", 1, True, 4096, "lut"),
    ("avx2", 2, True, 1, "lut"), ("avx2", 2, True, 2, "rows"),
    # The row kernel: transpose, M <= 32 for 2/4/8 bits (and 1 bit without lookups: M <= 64).
    ("avx512", 2, True, 32, "rows"), ("avx512", 2, True, 33, "panel"),
    ("avx512", 4, True, 1, "rows"), ("avx512", 4, True, 32, "rows"), ("avx512", 4, True, 33, "panel"),
    ("avx2", 8, True, 32, "rows"), ("avx2", 8, True, 33, "panel"),
    ("neon", 1, True, 1, "rows"), ("neon", 1, True, 64, "rows"), ("neon", 1, True, 65, "panel"),
    ("neon", 2, True, 1, "rows"), ("neon", 2, True, 32, "rows"), ("neon", 2, True, 33, "panel"),
    # The column kernel: no transpose, M <= 32 at 1 bit, M <= 8 at 2/4/8 bits.
    ("avx512", 1, False, 32, "cols"), ("avx512", 1, False, 33, "panel"),
    ("avx2", 4, False, 8, "cols"), ("avx2", 4, False, 9, "panel"),
    ("neon", 8, False, 1, "cols"), ("neon", 1, False, 33, "panel"),
    # No vector decoder for 3, 5 and 6 bits: the panel kernel at any M, either transpose.
    ("avx512", 3, True, 1, "panel"), ("avx2", 5, False, 1, "panel"), ("neon", 6, True, 1, "panel"),
    # The scalar ISA is the reference, whatever the shape.
    ("scalar", 1, True, 1, "reference"), ("scalar", 4, False, 512, "reference"),
]


@pytest.mark.parametrize("isa, bits, transpose, M, kernel", ROUTES)
def test_route(isa, bits, transpose, M, kernel):
    d = choice(M, bits=bits, transpose=transpose, isa=isa)
    assert d["kernel"] == kernel, d
    assert not d["slabs"] and d["why"]


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
def test_interleaved16_is_read_in_place_only_by_the_lookup_kernel(isa):
    assert choice(1, bits=1, layout="interleaved16", isa=isa) == choice(1, bits=1, isa=isa)
    assert not choice(4096, bits=1, layout="interleaved16", isa=isa)["slabs"]
    d = choice(3, bits=2, layout="interleaved16", isa=isa)  # past the 2-bit lookup rows
    assert d["kernel"] == "rows" and d["slabs"], d
    d = choice(33, bits=2, layout="interleaved16", isa=isa)
    assert d["kernel"] == "panel" and d["slabs"], d


def test_neon_reads_interleaved16_through_slabs():
    d = choice(1, bits=1, layout="interleaved16", isa="neon")
    assert d["kernel"] == "rows" and d["slabs"], d


def test_empty_sum():
    d = choice(4, K=0, isa="avx2")
    assert d["kernel"] == "zero", d


def test_small_calls_stay_on_one_thread():
    # M*N*K*bits below 2^20: waking the pool costs more than it saves.
    assert choice(1, N=1024, K=512, isa="avx512")["serial"]
    assert choice(1, N=1000, K=1024, isa="avx2")["serial"]
    assert not choice(1, N=1024, K=1024, isa="avx512")["serial"]
    assert not choice(1, N=512, K=512, bits=4, isa="avx2")["serial"]
    set_parallel_threshold(0)  # the tests' override: split everything
    try:
        assert not choice(1, N=64, K=256, isa="avx512")["serial"]
    finally:
        set_parallel_threshold(-1)
    assert choice(1, N=64, K=256, isa="avx512")["serial"]


def test_unknown_isa_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[cpu_kernel\] isa must be 'avx512', 'avx2', 'neon' or 'scalar'"):
        choice(1, isa="avx9000")


def test_active_isa_by_default():
    assert choice(3, bits=2, isa="") == choice(3, bits=2, isa=pyonebit.cpu_kernels()["active"])


# Shapes that reach every kernel on the SIMD ISAs, run for real.
TRACED = [(1, 1, True, "mlx"), (4, 2, True, "mlx"), (2, 4, True, "mlx"), (40, 4, True, "mlx"),
          (3, 3, True, "mlx"), (5, 1, False, "mlx"), (20, 2, False, "mlx"),
          (1, 1, True, "interleaved16"), (3, 2, True, "interleaved16")]


@pytest.mark.parametrize("isa", RUNNABLE)
def test_trace_names_the_kernel_that_ran(isa, rng, cpu_settings_restored):
    """The trace's kernel is the choice, for every runnable ISA; and the
    result matches the reference, so the named kernel did the work."""
    for M, bits, transpose, layout in TRACED:
        N, K, gs = 64, 128, 32
        w = rng.standard_normal((N, K) if transpose else (K, N)).astype(np.float32)
        wq, s, b = pyonebit.quantize(w, group_size=gs, bits=bits)
        if layout == "interleaved16":
            wq, s, b = pyonebit.interleave16(wq), pyonebit.interleave16(s), pyonebit.interleave16(b)
        x = rng.standard_normal((M, K)).astype(np.float32)
        set_cpu_isa(isa)
        d = cpu_kernel_plan(x, wq, s, b, transpose=transpose, group_size=gs, bits=bits, layout=layout)
        with pyonebit.trace() as t:
            got = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=gs, bits=bits,
                                            layout=layout)
        assert t.kernels() == [f"qmm_{isa}_{d['kernel']}" + ("_slabs" if d["slabs"] else "")], (M, bits, d)
        set_cpu_isa("scalar")
        want = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=gs, bits=bits,
                                         layout=layout)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
