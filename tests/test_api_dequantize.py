"""dequantize(dtype=wider than the scales) gives the exact weights the kernels
multiply by; the default (and narrower dtypes) keep MLX's rounding."""
import numpy as np
import pytest

import pyonebit
from pyonebit import _core
from conftest import BF16, dtype_id, random_weights, w_hat64

HALF = [np.dtype(np.float16), BF16]
MODES = [(bits, "affine") for bits in pyonebit.supported_bits()] + [(1, "symmetric")]


def layer_for(rng, dtype, bits, mode, shape=(40, 256)):
    return pyonebit.QuantizedLinear.from_float(random_weights(rng, shape, dtype), bits=bits,
                                               mode=mode)


@pytest.mark.parametrize("bits,mode", MODES, ids=str)
@pytest.mark.parametrize("dtype", HALF, ids=dtype_id)
def test_wider_dtype_is_the_exact_weight(rng, dtype, bits, mode):
    layer = layer_for(rng, dtype, bits, mode)
    exact = w_hat64(layer.wq, layer.scales, layer.biases, bits, 128, mode)
    args = (layer.wq, layer.scales, layer.biases, 128, bits, mode)
    # float64 holds scale * q + bias of half-precision values exactly; float32
    # rounds it once.
    np.testing.assert_array_equal(pyonebit.dequantize(*args, dtype=np.float64), exact)
    np.testing.assert_array_equal(pyonebit.dequantize(*args, dtype=np.float32),
                                  exact.astype(np.float32))
    np.testing.assert_array_equal(layer.dequantize(np.float32), exact.astype(np.float32))
    np.testing.assert_array_equal(layer.take([3, 39], dtype=np.float32),
                                  exact[[3, 39]].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.dtype(np.float32)] + HALF, ids=dtype_id)
def test_default_and_same_dtype_keep_mlx_rounding(rng, dtype):
    """The core's result (bit-equal to mlx.core.dequantize, test_mlx_compat)."""
    layer = layer_for(rng, dtype, 4, "affine")
    args = (layer.wq, layer.scales, layer.biases, 128, 4)
    mlx_rounded = _core.dequantize(*args)
    for got in (pyonebit.dequantize(*args), pyonebit.dequantize(*args, dtype=dtype),
                layer.dequantize()):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, mlx_rounded)
    np.testing.assert_array_equal(pyonebit.dequantize(*args, dtype=np.float16),
                                  _core.dequantize(*args, dtype=np.float16))


def test_float64_from_float32_scales(rng):
    layer = layer_for(rng, np.float32, 1, "symmetric")
    exact = w_hat64(layer.wq, layer.scales, None, 1, 128, "symmetric")
    np.testing.assert_array_equal(layer.dequantize(np.float64), exact)


@pytest.mark.parametrize("dtype", HALF, ids=dtype_id)
def test_float32_weights_reproduce_the_kernel_product(rng, dtype):
    """A user's check of a float32 product: x @ dequantize(float32).T agrees
    with the kernel to float32 summation error, where MLX's rounded weights
    are off by 1e-5 or more."""
    layer = layer_for(rng, dtype, 4, "affine", (64, 512))
    x = random_weights(rng, (8, 512), np.float32)
    y = layer(x).astype(np.float64)
    mag = np.abs(x.astype(np.float64)) @ np.abs(layer.dequantize(np.float64)).T

    def worst(w):
        return np.max(np.abs(y - x.astype(np.float64) @ w.astype(np.float64).T) / mag)

    assert worst(layer.dequantize(np.float32)) < 1e-6
    assert worst(layer.dequantize().astype(np.float32)) > 1e-5  # what the user used to see


def test_bad_arguments_keep_the_core_messages():
    wq, s, b = pyonebit.quantize(np.ones((4, 128), np.float16))
    with pytest.raises(pyonebit.DTypeError, match=r"\[dequantize\] scales must be float32"):
        pyonebit.dequantize(wq, s.astype(np.int16), b, dtype=np.float64)
    with pytest.raises(pyonebit.DTypeError, match=r"biases dtype float32 does not match scales"):
        pyonebit.dequantize(wq, s, b.astype(np.float32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"biases has shape \(4, 2\) but scales has shape"):
        pyonebit.dequantize(wq, s, np.zeros((4, 2), np.float16), dtype=np.float64)
    with pytest.raises(ValueError, match=r"biases are required in affine mode"):
        pyonebit.dequantize(wq, s, None, dtype=np.float64)
    with pytest.raises(ValueError, match=r"biases must be None in symmetric mode"):
        pyonebit.dequantize(wq, s, b, mode="symmetric", dtype=np.float32)
    with pytest.raises(pyonebit.DTypeError, match=r"dtype must be float32, float16 or bfloat16, got int8"):
        pyonebit.dequantize(wq, s, b, dtype=np.int8)
