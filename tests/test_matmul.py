"""quantized_matmul against an independent float64 NumPy model of the format,
over bits x group sizes x dtypes x transposes x odd shapes, batches, 1-D x,
dtype promotion and empty shapes, on every backend of this machine."""
import numpy as np
import pytest

import pyonebit
from conftest import (
    BF16, BITS, FLOAT_DTYPES, GROUP_SIZES, assert_matmul_close, dtype_id, random_weights, w_hat64,
)

BACKENDS = pyonebit.backends()
ODD = (1, 3, 7, 33, 67)  # the free dimension: N when transposed, K otherwise
PACKED = (32, 64, 128, 192, 4096)  # the grouped dimension: K when transposed, N otherwise
MS = (1, 2, 5, 32)


def quantized(rng, shape, dtype, bits, group_size, mode="affine"):
    w = random_weights(rng, shape, dtype)
    wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
    return wq, s, b, w_hat64(wq, s, b, bits, group_size, mode)


def shapes(group_size):
    for free in ODD:
        for packed in PACKED:
            if packed % group_size:
                continue
            for M in MS:
                if packed == 4096 and (free > 7 or M > 5):
                    continue  # keep the float64 reference cheap
                yield free, packed, M


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_matches_float64_model(rng, bits, group_size, dtype, transpose, backend):
    for free, packed, M in shapes(group_size):
        # The packed (grouped) axis is always last: W is (N, K) or (K, N).
        K = packed if transpose else free
        wq, s, b, what = quantized(rng, (free, packed), dtype, bits, group_size)
        x = random_weights(rng, (M, K), dtype)
        out = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=group_size,
                                        bits=bits, backend=backend)
        assert_matmul_close(out, x, what, transpose, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_symmetric_mode(rng, group_size, transpose, backend):
    for dtype in FLOAT_DTYPES:
        wq, s, _, what = quantized(rng, (67, 256), dtype, 1, group_size, "symmetric")
        x = random_weights(rng, (5, 256 if transpose else 67), dtype)
        out = pyonebit.quantized_matmul(x, wq, s, None, transpose=transpose,
                                        group_size=group_size, mode="symmetric", backend=backend)
        assert_matmul_close(out, x, what, transpose, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "xshape, wbatch, outshape",
    [
        ((3, 1, 5, 128), (4,), (3, 4, 5, 33)),  # both broadcast
        ((2, 5, 128), (2,), (2, 5, 33)),  # matching batch
        ((5, 128), (3,), (3, 5, 33)),  # x shared by every W
        ((2, 1, 5, 128), (1, 3), (2, 3, 5, 33)),  # size-1 dims stretch on both sides
        ((128,), (), (33,)),  # 1-D x: one row, row axis dropped
        ((128,), (2,), (2, 33)),
    ],
)
def test_batch_broadcasting(rng, xshape, wbatch, outshape, backend):
    wq, s, b, what = quantized(rng, wbatch + (33, 128), np.float32, 1, 64)
    x = random_weights(rng, xshape, np.float32)
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend)
    assert out.shape == outshape
    assert_matmul_close(out, x, what, True, np.dtype(np.float32))


@pytest.mark.parametrize(
    "xdtype, sdtype, expected",
    [
        (np.float32, np.float16, np.float32),
        (np.float16, np.float32, np.float32),
        (np.float16, BF16, np.float32),
        (BF16, np.float16, np.float32),
        (np.float16, np.float16, np.float16),
        (BF16, BF16, BF16),
    ],
)
def test_output_dtype_promotion_as_mlx(rng, xdtype, sdtype, expected):
    wq, s, b, _ = quantized(rng, (8, 64), sdtype, 1, 32)
    x = random_weights(rng, (2, 64), xdtype)
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=32)
    assert out.dtype == np.dtype(expected)
    what = w_hat64(wq, s, b, 1, 32)
    assert_matmul_close(out, x, what, True, np.dtype(expected))


@pytest.mark.parametrize(
    "xshape, wshape, outshape",
    [
        ((0, 64), (8, 64), (0, 8)),  # M = 0
        ((2, 64), (0, 64), (2, 0)),  # N = 0
        ((0, 3, 64), (8, 64), (0, 3, 8)),  # empty batch
    ],
)
def test_empty_shapes_give_empty_results(xshape, wshape, outshape):
    wq, s, b = pyonebit.quantize(np.ones(wshape, np.float32), group_size=32)
    out = pyonebit.quantized_matmul(np.ones(xshape, np.float32), wq, s, b, group_size=32)
    assert out.shape == outshape and out.dtype == np.float32


def test_zero_length_k_gives_zeros():
    wq, s, b = pyonebit.quantize(np.ones((4, 0), np.float32), group_size=32)
    out = pyonebit.quantized_matmul(np.ones((3, 0), np.float32), wq, s, b, group_size=32)
    np.testing.assert_array_equal(out, np.zeros((3, 4), np.float32))


def test_views_and_strides_are_accepted(rng):
    wq, s, b, what = quantized(rng, (16, 128), np.float32, 1, 32)
    xbig = random_weights(rng, (6, 256), np.float32)
    x = xbig[::2, 64:192]  # a strided view
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=32)
    assert_matmul_close(out, np.ascontiguousarray(x), what, True, np.dtype(np.float32))
    out_t = pyonebit.quantized_matmul(x, wq.copy(order="F"), s[:, :], b.astype(">f4"), group_size=32)
    np.testing.assert_array_equal(out, out_t)


def test_default_backend_is_first_listed(rng):
    assert BACKENDS and BACKENDS[0] == "cpu"
    wq, s, b, _ = quantized(rng, (8, 128), np.float32, 1, 128)
    x = random_weights(rng, (2, 128), np.float32)
    np.testing.assert_array_equal(pyonebit.quantized_matmul(x, wq, s, b),
                                  pyonebit.quantized_matmul(x, wq, s, b, backend="cpu"))


def test_trace_records_every_backend(rng):
    wq, s, b, _ = quantized(rng, (40, 128), np.float32, 1, 64)
    x = random_weights(rng, (3, 128), np.float32)
    with pyonebit.trace() as t:
        for backend in BACKENDS:
            pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend)
    assert [d["backend"] for d in t.dispatches] == BACKENDS
    cpu = t.dispatches[0]
    # qmm_<isa>_<kernel>: the ISA and the kernel choose_cpu_kernel picked (test_cpu_routing.py).
    assert cpu["kernel"].startswith("qmm_" + pyonebit.cpu_kernels()["active"] + "_")
    assert cpu["grid"] == (40, 3, 1) and cpu["threadgroup"] == (pyonebit.get_num_threads(), 1, 1)
    with pyonebit.trace() as outside_calls_only:
        pass
    assert outside_calls_only.dispatches == []
