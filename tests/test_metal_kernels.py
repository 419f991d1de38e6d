"""The Metal kernels themselves, run by the emulator ("metal-emulated"):
each matmul kernel on the shapes that are known traps for it (checked to be
routed to that kernel), against the float64 model of the format; and the
quantize/dequantize kernels bit for bit against the CPU reference.

Every test runs under two emulator seeds (docs/metal.md): seed 1 (random
threadgroup memory, mode::multiply overwrites) and seed 2 (float32
subnormals flushed, NaN threadgroup memory, mode::multiply accumulates);
both shuffle thread, threadgroup and reduction orders and the cooperative
tensor layout."""
import numpy as np
import pytest

import pyonebit
from pyonebit._core import dequantize as core_dequantize
from pyonebit._testing import emulated_dequantize, emulated_quantize
from conftest import (
    BF16, BITS, FLOAT_DTYPES, GROUP_SIZES, assert_matmul_close, dtype_id, random_weights, w_hat64,
)

EMU = "metal-emulated"
# (bits, mode) pairs of the format: symmetric mode exists at 1 bit.
SPECS = [(bits, "affine") for bits in BITS] + [(1, "symmetric")]
SPEC_IDS = [f"{bits}-{mode}" for bits, mode in SPECS]
pytestmark = pytest.mark.skipif(EMU not in pyonebit.backends(),
                                reason="built without the Metal emulator")


@pytest.fixture(autouse=True, params=["1", "2"], ids=["seed1", "seed2"])
def emulator_seed(request, monkeypatch):
    monkeypatch.setenv("PYONEBIT_EMU_SEED", request.param)
    return request.param


def run_case(rng, kernel, M, N, K, transpose=True, bits=1, group_size=32, dtype=np.float32,
             mode="affine", x_batch=(), w_batch=()):
    """Runs x @ W on the emulator, checks the kernel that ran and the result."""
    rows, packed = (N, K) if transpose else (K, N)
    w = random_weights(rng, w_batch + (rows, packed), dtype)
    wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
    what = w_hat64(wq, s, b, bits, group_size, mode)
    x = random_weights(rng, x_batch + ((K,) if M is None else (M, K)), dtype)
    with pyonebit.trace() as t:
        out = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=group_size,
                                        bits=bits, mode=mode, backend=EMU)
    assert {k.split("_float")[0].split("_bfloat")[0] for k in t.kernels()} == {kernel}
    assert_matmul_close(out, x, what, transpose, np.dtype(dtype))


# ------------------------------------------------------------------ matmul traps

@pytest.mark.parametrize("bits,mode", SPECS, ids=SPEC_IDS)
def test_qmv_fast_values_per_lane_span_groups(rng, bits, mode):
    # 1 bit: a lane takes 64 values, two groups of 32 with their own scales.
    block = 2048 if bits == 1 else 1024
    for gs in GROUP_SIZES:
        run_case(rng, "qmv_fast", 1, 16, block, bits=bits, group_size=gs, mode=mode)
    run_case(rng, "qmv_fast", 1, 8, 2 * block, bits=bits, group_size=32, mode=mode)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_qmv_quad_small_k(rng, bits, dtype):
    # K = 64 with 1 bit: each lane's 16 codes are half a word.
    for K, gs in [(64, 32), (64, 64), (128, 32), (128, 64), (128, 128)]:
        run_case(rng, "qmv_quad", 1, 67, K, bits=bits, group_size=gs, dtype=dtype)
    run_case(rng, "qmv_quad", 1, 1, 64, bits=bits, group_size=64, dtype=dtype)  # N < a quad's rows


@pytest.mark.parametrize("bits", BITS)
def test_qmv_tails(rng, bits):
    # K not a multiple of the block (partial lanes, half a lane at 1 bit) and
    # N not a multiple of the 8 rows of a threadgroup.
    cases = [(8, 1056, 32), (8, 2112, 64), (9, 2048, 128), (3, 96, 32), (13, 4160, 64),
             (1, 32, 32)]
    if bits == 1:  # blocks of 2048: 1024 and 3072 end half-way through a lane's 64 values
        cases += [(8, 1024, 32), (8, 3072, 64)]
    for N, K, gs in cases:
        run_case(rng, "qmv", 1, N, K, bits=bits, group_size=gs)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_qvm_and_split_k(rng, bits, dtype):
    # N a multiple of 32 but not of a simdgroup's 128 columns; K free (odd, 1).
    for N, K in [(32, 1), (96, 67), (160, 5), (256, 1023)]:
        run_case(rng, "qvm", 1, N, K, transpose=False, bits=bits, dtype=dtype)
    # Split K: slices of unequal length, and more simdgroups than rows of work.
    for N, K in [(96, 1024), (32, 1500), (160, 4097)]:
        run_case(rng, "qvm_split_k", 1, N, K, transpose=False, bits=bits, dtype=dtype)


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("bits", BITS)
def test_qmm_small_m_and_edges(rng, bits, transpose):
    kernel = "qmm_t" if transpose else "qmm_n"
    for M in (2, 5, 32, 33):  # below, at and just past the 32-row tile
        free, packed = 67, 128
        N, K = (free, packed) if transpose else (packed, free)
        run_case(rng, kernel, M, N, K, transpose=transpose, bits=bits, group_size=64)


@pytest.mark.parametrize("kernel,M,N,K,transpose", [
    ("qmv_fast", 1, 8, 2048, True), ("qmv", 1, 9, 96, True), ("qmv_quad", 1, 5, 64, True),
    ("qvm", 1, 64, 7, False), ("qvm_split_k", 1, 64, 1024, False),
    ("qmm_t", 3, 9, 64, True), ("qmm_n", 3, 64, 9, False),
])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_every_kernel_symmetric_and_batched(rng, kernel, M, N, K, transpose, dtype):
    run_case(rng, kernel, M, N, K, transpose=transpose, mode="symmetric", dtype=dtype)
    # M = 1 per batch with broadcast batches: x (3, 1, K) against W (2, 1, N, K).
    run_case(rng, kernel, M, N, K, transpose=transpose, dtype=dtype, x_batch=(3,),
             w_batch=(2, 1))


def test_emulator_seed_is_read_at_each_launch(rng, monkeypatch):
    monkeypatch.setenv("PYONEBIT_EMU_SEED", "-3")
    with pytest.raises(RuntimeError, match="PYONEBIT_EMU_SEED='-3' is not an unsigned 32-bit integer"):
        run_case(rng, "qmv_fast", 1, 8, 2048)


def test_one_dimensional_x(rng):
    run_case(rng, "qmv_fast", None, 8, 2048)
    run_case(rng, "qvm", None, 64, 9, transpose=False)


# ------------------------------------------------------------------ quantize / dequantize

def assert_same_bits(a, b, flushed=False):
    """a and b bit for bit; with `flushed` (a GPU that flushes float32
    subnormals, seed 2), float values may also differ where both are zeros
    or float32 subnormals."""
    assert (a is None) == (b is None)
    if a is not None:
        assert a.dtype == b.dtype and a.shape == b.shape
        same = a.view(np.uint8).reshape(a.size, -1) == b.view(np.uint8).reshape(b.size, -1)
        same = same.all(axis=1)
        if flushed and a.dtype != np.uint32:
            tiny = np.finfo(np.float32).tiny
            both_flushable = ((np.abs(a.astype(np.float32)) < tiny)
                              & (np.abs(b.astype(np.float32)) < tiny)).reshape(-1)
            same |= both_flushable
        assert same.all(), f"{np.count_nonzero(~same)} of {a.size} values differ"


def special_weights(rng, shape, dtype, bits):
    """Random weights with groups that stress the rules: constant groups (the
    scale floor), zeros, -0.0, exact ties of the rounding, the extreme of
    larger magnitude on either side, tiny (float16 subnormal) values and
    float32 subnormals (which seed 2 flushes, as a GPU may)."""
    w = random_weights(rng, shape, np.float32).reshape(-1, 32)
    w[0] = 0.0
    w[1] = 1.5
    w[2] = -0.0
    w[3] = np.linspace(-1, 1, 32)
    w[4] = np.linspace(-3, 1, 32)
    levels = (1 << bits) - 1
    w[5] = (np.arange(32) % (2 * levels + 1)) / 2.0  # multiples of scale/2: ties
    w[6] = rng.standard_normal(32) * 1e-6
    w[7] = rng.standard_normal(32) * 1e-39  # float32 (and bfloat16) subnormals
    return w.reshape(shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits,mode", SPECS, ids=SPEC_IDS)
def test_quantize_kernel_matches_reference(rng, bits, mode, group_size, dtype, emulator_seed):
    for shape in [(2, 3, 384), (9, group_size)]:
        w = special_weights(rng, shape, dtype, bits)
        ref = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
        got = emulated_quantize(w, group_size=group_size, bits=bits, mode=mode)
        for a, b in zip(got, ref):
            assert_same_bits(a, b, flushed=int(emulator_seed) % 2 == 0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits,mode", SPECS, ids=SPEC_IDS)
def test_dequantize_kernel_matches_reference(rng, bits, mode, group_size, dtype, emulator_seed):
    w = special_weights(rng, (3, 2, 384), dtype, bits)
    wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
    for out_dtype in [None] + FLOAT_DTYPES:
        # The core's CPU dequantize (MLX's rounding for every dtype; the public
        # one is exact for wider dtypes, which the Metal kernel is not).
        ref = core_dequantize(wq, s, b, group_size=group_size, bits=bits, mode=mode,
                              dtype=out_dtype)
        got = emulated_dequantize(wq, s, b, group_size=group_size, bits=bits, mode=mode,
                                   dtype=out_dtype)
        assert_same_bits(got, ref, flushed=int(emulator_seed) % 2 == 0)


def test_quantize_kernel_rejects_non_finite():
    w = np.ones((2, 64), np.float32)
    w[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"\[quantize\] w contains NaN or Inf \(at flat index 69\)"):
        emulated_quantize(w, group_size=64)


def test_quantize_kernels_on_empty_arrays():
    wq, s, b = emulated_quantize(np.zeros((0, 64), np.float16), group_size=64)
    assert wq.shape == (0, 2) and s.shape == (0, 1)
    assert emulated_dequantize(wq, s, b, group_size=64).shape == (0, 64)
