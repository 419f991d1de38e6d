"""DLPack inputs: bfloat16 tensors NumPy's DLPack importer refuses are taken
through __array__ when that is a view (as JAX's is), never through a copy."""
import numpy as np
import pytest

import pyonebit
from pyonebit import _core
from conftest import BF16, random_weights


class Exporter:
    """A CPU tensor as frameworks export one: __dlpack__ refuses bfloat16 as
    NumPy's importer does, __array__ honours NumPy 2's copy argument."""

    def __init__(self, array, copies=False):
        self.array, self.copies = array, copies

    def __dlpack__(self, **kwargs):
        if self.array.dtype == BF16:
            raise BufferError("Unsupported dtype in DLTensor.")
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        if self.copies and copy is False:
            raise ValueError("a copy is needed")  # as NumPy 2 asks of __array__
        return self.array.copy() if self.copies else self.array


class LegacyExporter(Exporter):
    def __array__(self, dtype=None):  # no copy argument: cannot promise a view
        return self.array


def weights(rng):
    w = random_weights(rng, (24, 128), BF16)
    return pyonebit.quantize(w)


def test_bfloat16_through_array_is_a_view(rng):
    x = random_weights(rng, (3, 128), BF16)
    a = _core._as_array(Exporter(x), "x", "quantized_matmul")
    assert a.dtype == BF16 and np.shares_memory(a, x)


def test_bfloat16_exporters_give_the_array_product(rng):
    wq, s, b = weights(rng)
    x = random_weights(rng, (3, 128), BF16)
    expected = pyonebit.quantized_matmul(x, wq, s, b)
    got = pyonebit.quantized_matmul(Exporter(x), Exporter(wq), Exporter(s), Exporter(b))
    assert got.dtype == BF16
    np.testing.assert_array_equal(got, expected)
    layer = pyonebit.QuantizedLinear(wq, Exporter(s), Exporter(b))
    np.testing.assert_array_equal(layer(Exporter(x)), expected)


@pytest.mark.parametrize("exporter", [lambda a: Exporter(a, copies=True), LegacyExporter],
                         ids=["would copy", "no copy argument"])
def test_bfloat16_that_needs_a_copy_is_refused(rng, exporter):
    x = random_weights(rng, (3, 128), BF16)
    wq, s, b = weights(rng)
    with pytest.raises(TypeError, match=r"\[quantized_matmul\] x could not be viewed through "
                                        r"__dlpack__ .*Unsupported dtype in DLTensor"):
        pyonebit.quantized_matmul(exporter(x), wq, s, b)


def test_other_dtypes_still_go_through_dlpack(rng):
    x = random_weights(rng, (3, 128), np.float32)
    a = _core._as_array(Exporter(x, copies=True), "x", "quantized_matmul")  # __array__ unused
    assert np.shares_memory(a, x)


def test_jax_bfloat16():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    wq, s, b = weights(rng)
    x = random_weights(rng, (3, 128), BF16)
    got = pyonebit.quantized_matmul(jnp.asarray(x), jnp.asarray(wq), jnp.asarray(s), jnp.asarray(b))
    np.testing.assert_array_equal(got, pyonebit.quantized_matmul(x, wq, s, b))
