"""pyonebit.aligned_empty: page-aligned NumPy arrays (any platform)."""
import mmap

import ml_dtypes
import numpy as np
import pytest

import pyonebit


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.uint32])
@pytest.mark.parametrize("shape", [(3, 5), (1,), (2, 3, 4096), 7, (0, 4), ()])
def test_aligned_c_contiguous_and_writable(shape, dtype):
    a = pyonebit.aligned_empty(shape, dtype)
    expected_shape = (shape,) if isinstance(shape, int) else shape
    assert a.shape == expected_shape and a.dtype == np.dtype(dtype)
    # NumPy gives empty arrays a placeholder pointer; there is nothing to align.
    assert a.size == 0 or a.ctypes.data % mmap.PAGESIZE == 0
    assert a.flags.c_contiguous and a.flags.writeable
    a[...] = 1
    assert (a == 1).all()


def test_owns_whole_pages():
    # The allocation behind the array covers every page the array touches.
    a = pyonebit.aligned_empty((mmap.PAGESIZE // 4 + 1,), np.float32)
    raw = a.base
    while raw.base is not None and isinstance(raw.base, np.ndarray):
        raw = raw.base
    end = a.ctypes.data + a.nbytes
    page_end = -(-end // mmap.PAGESIZE) * mmap.PAGESIZE
    assert raw.ctypes.data <= a.ctypes.data and page_end <= raw.ctypes.data + raw.nbytes


def test_custom_alignment_and_errors():
    assert pyonebit.aligned_empty((10,), np.float16, alignment=64).ctypes.data % 64 == 0
    with pytest.raises(ValueError, match="power of two"):
        pyonebit.aligned_empty((4,), alignment=48)
    with pytest.raises(ValueError, match="negative"):
        pyonebit.aligned_empty((-1, 2))


def test_works_as_matmul_input_and_survives_its_source():
    x = pyonebit.aligned_empty((2, 64), np.float32)
    x[...] = np.arange(128, dtype=np.float32).reshape(2, 64) / 64
    wq, s, b = pyonebit.quantize(np.ones((4, 64), np.float32), group_size=64)
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64)
    np.testing.assert_allclose(out, np.repeat(x.sum(1, keepdims=True), 4, axis=1), rtol=1e-6)
