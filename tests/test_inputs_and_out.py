"""Inputs from other producers (buffer protocol, __array_interface__,
__dlpack__) are read without a copy, and out= receives results in place."""
import array

import numpy as np
import pytest

import pyonebit
from conftest import random_weights


@pytest.fixture
def packed(rng):
    w = random_weights(rng, (16, 128), np.float32)
    return pyonebit.quantize(w)


class ArrayInterfaceOnly:
    """A foreign CPU array exposing only __array_interface__."""

    def __init__(self, a):
        self._a = a
        self.__array_interface__ = a.__array_interface__


class DLPackOnly:
    """A foreign CPU tensor exposing only the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class ForeignDevice(DLPackOnly):
    """A tensor on an accelerator (DLPack device type 2 = CUDA)."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kwargs):
        raise BufferError("the tensor lives on cuda:0")


@pytest.mark.parametrize("wrap", [memoryview, ArrayInterfaceOnly, DLPackOnly],
                         ids=["buffer", "array_interface", "dlpack"])
def test_foreign_inputs_match_numpy_inputs(rng, packed, wrap):
    wq, scales, biases = packed
    x = random_weights(rng, (3, 128), np.float32)
    expected = pyonebit.quantized_matmul(x, wq, scales, biases)
    got = pyonebit.quantized_matmul(wrap(x), wrap(wq), wrap(scales), wrap(biases))
    np.testing.assert_array_equal(got, expected)


def test_array_module_buffer_is_one_row(packed, rng):
    wq, scales, biases = packed
    x = random_weights(rng, (128,), np.float32)
    got = pyonebit.quantized_matmul(array.array("f", x.tolist()), wq, scales, biases)
    np.testing.assert_array_equal(got, pyonebit.quantized_matmul(x, wq, scales, biases))


def test_dlpack_input_is_not_copied(packed, rng):
    # A DLPack view shares memory: changing the producer's data after wrapping
    # changes the result, which a copy made at wrap time would not.
    wq, scales, biases = packed
    x = random_weights(rng, (2, 128), np.float32)
    wrapped = DLPackOnly(x)
    before = pyonebit.quantized_matmul(wrapped, wq, scales, biases)
    x *= 2
    after = pyonebit.quantized_matmul(wrapped, wq, scales, biases)
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6, atol=1e-5)


def test_device_tensors_are_refused_with_the_reason(packed):
    wq, scales, biases = packed
    with pytest.raises(TypeError, match=r"^\[quantized_matmul\] x could not be viewed through "
                                        r"__dlpack__ \(NumPy takes CPU tensors of its own dtypes; "
                                        r".*the tensor lives on cuda:0"):
        pyonebit.quantized_matmul(ForeignDevice(np.ones((1, 128), np.float32)), wq, scales, biases)


@pytest.mark.parametrize("backend", pyonebit.backends())
def test_out_receives_the_result_on_every_backend(rng, packed, backend):
    wq, scales, biases = packed
    x = random_weights(rng, (2, 3, 128), np.float32)
    out = np.full((2, 3, 16), np.nan, np.float32)
    got = pyonebit.quantized_matmul(x, wq, scales, biases, backend=backend, out=out)
    assert got is out
    np.testing.assert_array_equal(out, pyonebit.quantized_matmul(x, wq, scales, biases,
                                                                 backend=backend))


def test_out_may_be_a_contiguous_view_of_a_larger_buffer(rng, packed):
    wq, scales, biases = packed
    x = random_weights(rng, (4, 128), np.float32)
    buffer = np.zeros((10, 16), np.float32)
    pyonebit.quantized_matmul(x, wq, scales, biases, out=buffer[3:7])
    np.testing.assert_array_equal(buffer[3:7], pyonebit.quantized_matmul(x, wq, scales, biases))
    assert not buffer[:3].any() and not buffer[7:].any()


def bad_outs():
    # Zeros, not np.empty: the test ids show the arrays, and pytest-xdist's workers must collect the same ids.
    x = np.ones((4, 128), np.float32)
    return [
        (x, [1.0] * 64, TypeError, "[quantized_matmul] out must be a numpy.ndarray, got list"),
        (x, np.zeros((4, 16), np.float16), TypeError,
         "[quantized_matmul] out must have dtype float32 (the result dtype), got float16"),
        (x, np.zeros((4, 17), np.float32), ValueError,
         "[quantized_matmul] out must have shape (4, 16), got (4, 17)"),
        (x, np.zeros((16, 4), np.float32).T, ValueError,
         "[quantized_matmul] out must be C-contiguous, aligned and native byte order"),
        (x, np.zeros((4, 16), ">f4"), TypeError,
         "[quantized_matmul] out must have dtype float32 (the result dtype), got >f4"),
        (x, readonly(np.zeros((4, 16), np.float32)), ValueError,
         "[quantized_matmul] out must be writeable"),
    ]


def readonly(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("x,out,error,message", bad_outs(), ids=lambda v: str(v)[:30])
def test_bad_out_is_rejected_with_the_rule(packed, x, out, error, message):
    wq, scales, biases = packed
    with pytest.raises(error) as info:
        pyonebit.quantized_matmul(x, wq, scales, biases, out=out)
    assert str(info.value) == message


def test_out_overlapping_an_input_is_rejected(packed):
    wq, scales, biases = packed
    # x and out are views of one buffer that overlap by 12 elements: the
    # kernel would overwrite x while reading it.
    shared = np.ones(4 * 128 + 4 * 16, np.float32)
    x, out = shared[:512].reshape(4, 128), shared[500:564].reshape(4, 16)
    with pytest.raises(ValueError, match=r"^\[quantized_matmul\] out must not overlap an input"):
        pyonebit.quantized_matmul(x, wq, scales, biases, out=out)


@pytest.mark.parametrize("out_start,overlaps", [(511, True), (512, False), (-63, True), (-64, False)])
def test_out_touching_an_input_is_rejected_only_when_they_share_an_element(packed, out_start, overlaps):
    # x is elements 64 .. 575 of one buffer; out (64 elements) starts out_start after x's
    # first: one element shared, or none at either end.
    wq, scales, biases = packed
    shared = np.ones(64 + 512 + 64 + 1, np.float32)
    x = shared[64:576].reshape(4, 128)
    out = shared[64 + out_start:64 + out_start + 64].reshape(4, 16)
    if overlaps:
        with pytest.raises(ValueError, match=r"^\[quantized_matmul\] out must not overlap an input"):
            pyonebit.quantized_matmul(x, wq, scales, biases, out=out)
    else:
        expected = pyonebit.quantized_matmul(x.copy(), wq, scales, biases)
        assert pyonebit.quantized_matmul(x, wq, scales, biases, out=out) is out
        np.testing.assert_array_equal(out, expected)


def test_an_empty_out_inside_an_input_is_accepted(packed):
    # x has no rows, so out is empty; its address lies inside wq's bytes, but an empty array
    # shares no element (np.may_share_memory's rule).
    wq, scales, biases = packed
    x = np.ones((0, 128), np.float32)
    out = np.ndarray((0, 16), np.float32, buffer=wq, offset=20)
    assert pyonebit.quantized_matmul(x, wq, scales, biases, out=out) is out
