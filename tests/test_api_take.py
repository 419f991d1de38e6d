"""QuantizedLinear.take: the embedding lookup equals dequantize()[ids] in both
stored layouts, for ids of any shape, and refuses bad ids by name."""
import numpy as np
import pytest

import pyonebit
from conftest import BF16, FLOAT_DTYPES, dtype_id, random_weights, w_hat64

# 37 rows: two full interleaved blocks of 16 and a last block of 5.
N, K = 37, 256
MODES = [(1, "affine"), (4, "affine"), (1, "symmetric")]


def layer_for(rng, dtype, bits, mode, backend):
    w = random_weights(rng, (N, K), dtype)
    return pyonebit.QuantizedLinear.from_float(w, bits=bits, mode=mode, backend=backend)


@pytest.mark.parametrize("backend", pyonebit.backends())
@pytest.mark.parametrize("bits,mode", MODES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_take_equals_dequantized_rows(rng, dtype, bits, mode, backend):
    layer = layer_for(rng, dtype, bits, mode, backend)
    full = layer.dequantize()
    ids = np.array([[36, 0, 15], [16, 31, 32], [5, 36, 36]], np.int32)  # block edges, repeats
    for shaped in [ids, ids.ravel(), ids[:, :, None], np.int64(33), [1, 2], np.zeros(0, np.uint8)]:
        got = layer.take(shaped)
        expected = full[np.asarray(shaped, np.int64)]
        assert got.dtype == dtype and got.shape == np.shape(shaped) + (K,)
        np.testing.assert_array_equal(got, expected)


def test_take_is_the_float64_model_of_the_rows(rng):
    """Independent of dequantize: the rows against the NumPy model of the format."""
    layer = layer_for(rng, np.float32, 1, "affine", "cpu")
    ids = np.arange(N)[::-1]
    model = w_hat64(layer.wq, layer.scales, layer.biases, 1, 128)[ids]
    np.testing.assert_array_equal(layer.take(ids), model.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16], ids=dtype_id)
def test_take_dtype_argument(rng, dtype):
    layer = layer_for(rng, np.float16, 1, "affine", "cpu")
    ids = np.array([3, 20])
    got = layer.take(ids, dtype=dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, layer.dequantize(dtype)[ids])


@pytest.mark.parametrize("ids,error,match", [
    (np.array([1.0, 2.0]), TypeError, r"\[QuantizedLinear.take\] ids must be integers, got dtype float64"),
    (np.array([True]), TypeError, r"ids must be integers, got dtype bool"),
    (np.array([0, N]), ValueError, rf"ids must be in \[0, {N}\) \(out_features\), got {N}"),
    (np.array([[-1]]), ValueError, r"ids must be in \[0, 37\) \(out_features\), got -1"),
    ("3", TypeError, r"ids must be integers"),
])
def test_take_refuses_bad_ids(rng, ids, error, match):
    layer = layer_for(rng, np.float32, 1, "affine", "cpu")
    with pytest.raises(error, match=match):
        layer.take(ids)
