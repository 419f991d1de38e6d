"""DTypeError: every wrong-dtype argument raises it, and both MLX's habit
(except ValueError) and pyonebit's old one (except TypeError) catch it."""
import numpy as np
import pytest

import pyonebit

W = np.random.default_rng(0).standard_normal((8, 128)).astype(np.float32)
WQ, S, B = pyonebit.quantize(W, group_size=64)
X = np.ones((2, 128), np.float32)
LAYER = pyonebit.QuantizedLinear(WQ, S, B, group_size=64)

WRONG_DTYPES = {
    "w integer": lambda: pyonebit.quantize(W.astype(np.int32), 64),
    "x integer": lambda: pyonebit.quantized_matmul(X.astype(np.int32), WQ, S, B, group_size=64),
    "wq int32": lambda: pyonebit.quantized_matmul(X, WQ.view(np.int32), S, B, group_size=64),
    "scales integer": lambda: pyonebit.dequantize(WQ, S.astype(np.int16), B, 64),
    "biases other dtype": lambda: pyonebit.dequantize(WQ, S, B.astype(np.float16), 64),
    "dequantize dtype": lambda: pyonebit.dequantize(WQ, S, B, 64, dtype=np.int8),
    "out dtype": lambda: pyonebit.quantized_matmul(X, WQ, S, B, group_size=64,
                                                   out=np.empty((2, 8), np.float16)),
    "layer x integer": lambda: LAYER(X.astype(np.int64)),
    "layer bias float64": lambda: pyonebit.QuantizedLinear(WQ, S, B, np.zeros(8), group_size=64),
    "layer scales integer": lambda: pyonebit.QuantizedLinear(WQ, S.astype(np.int32), B,
                                                             group_size=64),
    "take ids float": lambda: LAYER.take(np.array([0.0])),
}


@pytest.mark.parametrize("call", WRONG_DTYPES.values(), ids=WRONG_DTYPES.keys())
@pytest.mark.parametrize("caught", [ValueError, TypeError, pyonebit.DTypeError], ids=lambda c: c.__name__)
def test_wrong_dtype_raises_dtype_error(call, caught):
    try:
        call()
    except caught as e:
        assert type(e) is pyonebit.DTypeError, type(e)
        assert str(e).startswith("[")  # names the operation
    else:
        pytest.fail("no exception")


def test_other_type_errors_stay_type_errors():
    with pytest.raises(TypeError) as info:
        pyonebit.quantize(W, bits=1.5)
    assert type(info.value) is TypeError


def test_dtype_error_is_documented_and_exported():
    assert issubclass(pyonebit.DTypeError, ValueError) and issubclass(pyonebit.DTypeError, TypeError)
    assert "DTypeError" in pyonebit.__all__
    assert "ValueError" in pyonebit.DTypeError.__doc__ and "MLX" in pyonebit.DTypeError.__doc__


# Ported from MLX's python/tests/test_quantized.py, which expects ValueError
# for non-floating inputs to the quantized ops (assertRaises(ValueError)).
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint32, np.bool_], ids=lambda d: np.dtype(d).name)
def test_mlx_style_value_error_for_non_float_inputs(dtype):
    with pytest.raises(ValueError):
        pyonebit.quantize(W.astype(dtype), 64, 4)
    with pytest.raises(ValueError):
        pyonebit.quantized_matmul(X.astype(dtype), WQ, S, B, True, 64)
    with pytest.raises(ValueError):
        pyonebit.quantized_matmul(X, WQ, S.astype(dtype), B, True, 64)
