"""Bit-for-bit compatibility with MLX 0.32.4 (the format's reference
implementation), over a randomized sweep. In CI these run, never skip."""
import numpy as np
import pytest

import pyonebit
from conftest import BF16, BITS, FLOAT_DTYPES, GROUP_SIZES, dtype_id, require_mlx

mx = require_mlx()
from mlx_peer import to_mx, to_np  # noqa: E402  (after the check that MLX is here)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and (a.view(np.uint8) == b.view(np.uint8)).all()


def sample_weights(rng, kind, shape, dtype):
    w = rng.standard_normal(shape).astype(np.float32) * rng.uniform(1e-3, 1e3)
    if kind == "zeros":
        w[:] = 0
    elif kind == "negative":
        w = -np.abs(w)
    elif kind == "constant":
        w[:] = np.float32(rng.standard_normal())
    elif kind == "ties":
        # Midpoints between two levels: rounding must be ties-to-even like MLX.
        w = rng.integers(-4, 5, size=shape).astype(np.float32) * 0.5
    return w.astype(dtype)


KINDS = ["random", "zeros", "negative", "constant", "ties"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_quantize_and_dequantize_bit_for_bit(rng, bits, group_size, dtype):
    for kind in KINDS:
        w = sample_weights(rng, kind, (3, 7, 2 * group_size), dtype)
        ours = pyonebit.quantize(w, group_size=group_size, bits=bits)
        theirs = [to_np(a) for a in mx.quantize(to_mx(w), group_size=group_size, bits=bits)]
        for name, a, b in zip(("wq", "scales", "biases"), ours, theirs):
            assert same_bits(a, b), f"{kind}: {name} differs from MLX"
        d_ours = pyonebit.dequantize(*ours, group_size=group_size, bits=bits)
        d_theirs = to_np(mx.dequantize(*[to_mx(a) for a in theirs], group_size=group_size, bits=bits))
        assert same_bits(d_ours, d_theirs), f"{kind}: dequantize differs from MLX"


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_quantized_matmul_matches_mlx(rng, bits, group_size, dtype, transpose):
    M, free, packed = 5, 37, 4 * group_size
    w = rng.standard_normal((2, free, packed)).astype(np.float32).astype(dtype)
    wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits)
    K = packed if transpose else free
    x = (rng.standard_normal((3, 1, M, K))).astype(np.float32).astype(dtype)
    ours = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=group_size,
                                     bits=bits)
    theirs = mx.quantized_matmul(to_mx(x), to_mx(wq), to_mx(s), to_mx(b), transpose=transpose,
                                 group_size=group_size, bits=bits)
    mx.eval(theirs)
    theirs = to_np(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    # MLX accumulates in the activation dtype on its CPU path; we accumulate in
    # float32 or wider. Compare at the precision of the dtype.
    scale = np.abs(x.astype(np.float64)).sum(-1, keepdims=True) * np.abs(w.astype(np.float64)).max()
    eps = 2.0**-7 if dtype == BF16 else float(np.finfo(dtype).eps)
    tol = (2 * eps if dtype != np.float32 else 1e-5) * scale
    err = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    assert (err <= tol).all(), f"max err {err.max():.3g}"
