"""Viewing another framework's CPU tensor as a NumPy array through DLPack,
with a fallback for bfloat16, which NumPy's DLPack importer refuses
("Unsupported dtype in DLTensor") although JAX and others hand NumPy the
same memory as an ``ml_dtypes.bfloat16`` array through ``__array__``."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _bfloat16

_NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


def view(obj: Any, name: str, op: str) -> np.ndarray:
    """``obj`` (which has ``__dlpack__``) as an array sharing its memory."""
    try:
        return np.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        refused = e
    a = _bfloat16_without_copy(obj)
    if a is not None:
        return a
    raise TypeError(f"[{op}] {name} could not be viewed through __dlpack__ (NumPy takes CPU tensors "
                    f"of its own dtypes; bfloat16 ones where __array__ gives them without a copy): "
                    f"{refused}") from None


def _bfloat16_without_copy(obj: Any) -> np.ndarray | None:
    """``np.asarray(obj, copy=False)`` if it is bfloat16, else None. NumPy 2's
    copy=False raises rather than copy; an ``__array__`` that cannot promise
    that (no ``copy`` argument: NumPy warns) or NumPy 1 (no such promise) is
    not used."""
    if not _NUMPY_2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            a = np.asarray(obj, copy=False)
        except (ValueError, TypeError, DeprecationWarning, BufferError, RuntimeError):
            return None
    return a if _bfloat16.is_bfloat16(a.dtype) else None
