"""Page-aligned NumPy arrays.

The Metal backend binds arrays without copying by wrapping the memory pages
that contain them. Any C-contiguous array works; an array from
:func:`aligned_empty` additionally starts on a page boundary and owns every
page it touches, so the GPU's view of it covers no neighbouring objects.
Plain NumPy, usable on every platform.
"""
from __future__ import annotations

import mmap
import operator

import numpy as np
import numpy.typing as npt

from . import _bfloat16


def aligned_empty(
    shape: int | tuple[int, ...], dtype: npt.DTypeLike = np.float32, alignment: int | None = None
) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts at a multiple of
    ``alignment`` bytes (default: the OS page size, 16 KiB on Apple silicon)
    and whose allocation is padded to a whole number of such blocks. (Empty
    arrays have no data to align; NumPy gives them a placeholder pointer.)"""
    dtype = _bfloat16.as_dtype(dtype)
    shape = (operator.index(shape),) if not isinstance(shape, tuple) else tuple(map(operator.index, shape))
    if any(d < 0 for d in shape):
        raise ValueError(f"[aligned_empty] negative dimensions are not allowed, got {shape}")
    align = mmap.PAGESIZE if alignment is None else operator.index(alignment)
    if align <= 0 or align & (align - 1):
        raise ValueError(f"[aligned_empty] alignment must be a power of two, got {align}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    padded = -(-nbytes // align) * align
    # Over-allocate by one block and slice at the first aligned address; the
    # slice keeps the raw buffer alive through its .base.
    raw = np.empty(padded + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)
