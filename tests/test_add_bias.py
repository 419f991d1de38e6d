"""QuantizedLinear's bias add (pyonebit._core._add_bias, the active ISA's conversions):
the same values as np.add(y, bias, out=y, casting="unsafe"), for every pair of float
dtypes, over values that round, tie, overflow, underflow and are not finite."""
import numpy as np
import pytest

from pyonebit import _core
from conftest import FLOAT_DTYPES, dtype_id


def edge_values(rng, n, dtype):
    """n values of dtype: random magnitudes over its range, plus its edges."""
    info = np.finfo(np.float32 if dtype == np.float32 else dtype)
    v = rng.standard_normal(n) * np.exp2(rng.integers(-30, 30, n))
    edges = [0.0, -0.0, float(info.max), -float(info.max), float(info.tiny), float(info.tiny) / 4,
             np.inf, -np.inf, np.nan, 1.0, 2.0 ** -11, 65504.0, 65520.0, 3.0e38]
    k = min(n, len(edges))
    v[:k] = edges[:k]
    with np.errstate(over="ignore"):
        return v.astype(np.float32).astype(dtype)


@pytest.mark.parametrize("y_dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("bias_dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", [(1,), (37,), (3, 17), (2, 3, 600), (4, 1100)])
def test_bias_add_equals_numpys(rng, y_dtype, bias_dtype, shape):
    y = edge_values(rng, int(np.prod(shape)), y_dtype).reshape(shape)
    bias = edge_values(rng, shape[-1], bias_dtype)[::-1].copy()  # the edges meet other values
    expected = y.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        np.add(expected, bias, out=expected, casting="unsafe")
    assert _core._add_bias(y, bias) is True
    np.testing.assert_array_equal(y.astype(np.float64), expected.astype(np.float64))


def test_bias_add_leaves_other_arrays_to_numpy():
    y = np.zeros((2, 4), np.float32)
    assert _core._add_bias(y[:, ::2], np.ones(2, np.float32)) is False  # strided
    assert _core._add_bias(y, np.ones(3, np.float32)) is False  # bias of another length
    assert _core._add_bias(y.astype(np.float64), np.ones(4, np.float32)) is False
    assert _core._add_bias(y, np.ones(4, ">f4")) is False  # byte-swapped
    assert not y.any()
