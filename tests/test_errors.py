"""Every invalid call raises ValueError or TypeError (a wrong dtype: DTypeError,
which is both) naming the argument and the
rule, in the form "[op] message"; nothing crashes."""
import re

import numpy as np
import pytest

import pyonebit

W = np.random.default_rng(0).standard_normal((8, 128)).astype(np.float32)
WQ, S, B = pyonebit.quantize(W, group_size=64, bits=1)
X = np.ones((2, 128), np.float32)


def qmm(x=X, wq=WQ, s=S, b=B, **kw):
    kw.setdefault("group_size", 64)
    return pyonebit.quantized_matmul(x, wq, s, b, **kw)


def raises(exc, pattern):
    return pytest.raises(exc, match=re.escape(pattern))


CASES = [
    # (callable, exception, message fragment)
    ("bits unsupported", lambda: pyonebit.quantize(W, bits=7), ValueError,
     "[quantize] bits=7 is not supported; use one of 1, 2, 3, 4, 5, 6, 8"),
    ("group_size unsupported", lambda: pyonebit.quantize(W, group_size=16), ValueError,
     "[quantize] group_size=16 is not supported; use one of 32, 64, 128"),
    ("mode unsupported", lambda: pyonebit.quantize(W, mode="mxfp4"), ValueError,
     "[quantize] mode='mxfp4' is not supported; use 'affine' or 'symmetric'"),
    ("symmetric needs 1 bit", lambda: pyonebit.quantize(W, bits=4, mode="symmetric"), ValueError,
     "[quantize] mode='symmetric' requires bits=1, got bits=4"),
    ("bits not int", lambda: pyonebit.quantize(W, bits=1.5), TypeError,
     "[quantize] bits must be an int, got float"),
    ("mode not str", lambda: pyonebit.quantize(W, mode=1), TypeError,
     "[quantize] mode must be a str, got int"),
    ("w integer", lambda: pyonebit.quantize(W.astype(np.int64)), pyonebit.DTypeError,
     "[quantize] w must be float32, float16 or bfloat16, got int64"),
    ("w float64", lambda: pyonebit.quantize(W.astype(np.float64)), pyonebit.DTypeError,
     "[quantize] w must be float32, float16 or bfloat16, got float64"),
    ("w 1-D", lambda: pyonebit.quantize(W[0]), ValueError,
     "[quantize] w must have at least 2 dimensions, got shape (128,)"),
    ("w K not multiple", lambda: pyonebit.quantize(W[:, :100], group_size=32), ValueError,
     "[quantize] the last dimension of w (K=100) must be a multiple of group_size=32"),
    ("w NaN", lambda: pyonebit.quantize(np.where(np.arange(128) == 70, np.nan, W).astype(np.float32)),
     ValueError, "[quantize] w contains NaN or Inf (at flat index 70)"),
    ("w Inf", lambda: pyonebit.quantize(np.full((1, 128), np.inf, np.float32)), ValueError,
     "[quantize] w contains NaN or Inf"),
    ("w None", lambda: pyonebit.quantize(None), TypeError, "[quantize] w must be an array, got None"),
    ("wq not uint32", lambda: qmm(wq=WQ.astype(np.int32)), pyonebit.DTypeError,
     "[quantized_matmul] wq must be uint32, got int32"),
    ("wq 1-D", lambda: qmm(wq=WQ[0]), ValueError,
     "[quantized_matmul] wq must have at least 2 dimensions, got shape (4,)"),
    ("x integer", lambda: qmm(x=X.astype(np.int32)), pyonebit.DTypeError,
     "[quantized_matmul] x must be float32, float16 or bfloat16, got int32"),
    ("x scalar", lambda: qmm(x=np.float32(1)), ValueError,
     "[quantized_matmul] x must have at least 1 dimension, got a scalar"),
    ("x wrong K", lambda: qmm(x=np.ones((2, 96), np.float32)), ValueError,
     "[quantized_matmul] x has K=96 in its last dimension but wq of shape (8, 4) with "
     "transpose=True expects K=128"),
    ("x wrong K transposed", lambda: qmm(x=np.ones((2, 128), np.float32), transpose=False),
     ValueError, "[quantized_matmul] x has K=128 in its last dimension but wq of shape (8, 4) "
     "with transpose=False expects K=8"),
    ("scales shape", lambda: qmm(s=S[:, :1]), ValueError,
     "[quantized_matmul] scales has shape (8, 1) but wq of shape (8, 4) with group_size=64 "
     "needs (8, 2)"),
    ("group_size inconsistent", lambda: qmm(group_size=32), ValueError,
     "[quantized_matmul] scales has shape (8, 2) but wq of shape (8, 4) with group_size=32 "
     "needs (8, 4)"),
    ("K from wq not multiple", lambda: qmm(wq=WQ[:, :3], s=S, b=B, group_size=128), ValueError,
     "[quantized_matmul] K=96 (from wq) is not a multiple of group_size=128"),
    ("biases shape", lambda: qmm(b=B[:4]), ValueError,
     "[quantized_matmul] biases has shape (4, 2) but scales has shape (8, 2)"),
    ("scales integer", lambda: qmm(s=S.astype(np.int16)), pyonebit.DTypeError,
     "[quantized_matmul] scales must be float32, float16 or bfloat16, got int16"),
    ("scales/biases dtypes", lambda: qmm(b=B.astype(np.float16)), pyonebit.DTypeError,
     "[quantized_matmul] biases dtype float16 does not match scales dtype float32"),
    ("biases missing", lambda: qmm(b=None), ValueError,
     "[quantized_matmul] biases are required in affine mode"),
    ("biases in symmetric", lambda: qmm(mode="symmetric"), ValueError,
     "[quantized_matmul] biases must be None in symmetric mode"),
    ("symmetric bits", lambda: qmm(b=None, mode="symmetric", bits=2), ValueError,
     "[quantized_matmul] mode='symmetric' requires bits=1, got bits=2"),
    ("batch not broadcastable",
     lambda: qmm(x=np.ones((2, 5, 128), np.float32), wq=np.stack([WQ] * 3), s=np.stack([S] * 3),
                 b=np.stack([B] * 3)),
     ValueError, "[quantized_matmul] batch dimensions of x (2,) and wq (3,) cannot be broadcast"),
    ("3-bit words", lambda: pyonebit.dequantize(WQ[:, :2], S[:, :1], B[:, :1], bits=3,
                                                group_size=32),
     ValueError, "[dequantize] wq's packed dimension of 2 words does not hold a whole number of "
     "3-bit elements"),
    ("backend unknown", lambda: qmm(backend="tpu"), ValueError,
     "[quantized_matmul] backend 'tpu' is not available; available: 'cpu'"),
    ("backend type", lambda: qmm(backend=3), TypeError,
     "[quantized_matmul] backend must be a str or None, got int"),
    ("dequantize dtype", lambda: pyonebit.dequantize(WQ, S, B, group_size=64, dtype=np.int32),
     pyonebit.DTypeError, "[dequantize] dtype must be float32, float16 or bfloat16, got int32"),
    ("dequantize biases missing", lambda: pyonebit.dequantize(WQ, S, None, group_size=64),
     ValueError, "[dequantize] biases are required in affine mode"),
    ("dequantize biases in symmetric",
     lambda: pyonebit.dequantize(WQ, S, B, group_size=64, mode="symmetric"), ValueError,
     "[dequantize] biases must be None in symmetric mode"),
    ("dequantize scales shape", lambda: pyonebit.dequantize(WQ, S.T, B.T, group_size=64), ValueError,
     "[dequantize] scales has shape (2, 8) but wq of shape (8, 4) with group_size=64 needs (8, 2)"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error(call, exc, message):
    with raises(exc, message):
        call()
