"""GGUF metadata values <-> Python and NumPy values, keeping GGUF's types.

GGUF stores every key with an explicit type, and readers such as llama.cpp
check it (a count must be UINT32, a hyperparameter FLOAT32), so a file that
is loaded and saved again must keep each key's type. The mapping:

* reading (:mod:`pyonebit.io._gguf_reader`): STRING -> ``str``, BOOL -> ``bool``, a number -> the NumPy scalar
  of its exact type (``np.uint32``, ``np.float32``, ...), an ARRAY of numbers
  -> a 1-D NumPy array of that dtype, an ARRAY of strings or bools -> a list;
* writing: NumPy scalars and 1-D arrays keep their dtype's type; plain Python
  values take GGUF's usual types: ``bool`` BOOL, ``str`` STRING, ``float``
  FLOAT32 (rounded to nearest, as gguf-py's writer does), ``int`` the
  narrowest of INT32, INT64, UINT64 that holds it; a list or tuple becomes an
  ARRAY whose items all map to one type (ints: the narrowest type holding
  every item).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from ._gguf_package import gguf  # noqa: F401 (first: names the extra when gguf is missing)
from gguf import GGUFValueType

_NUMPY_TYPES = {
    np.dtype(np.uint8): GGUFValueType.UINT8,
    np.dtype(np.int8): GGUFValueType.INT8,
    np.dtype(np.uint16): GGUFValueType.UINT16,
    np.dtype(np.int16): GGUFValueType.INT16,
    np.dtype(np.uint32): GGUFValueType.UINT32,
    np.dtype(np.int32): GGUFValueType.INT32,
    np.dtype(np.uint64): GGUFValueType.UINT64,
    np.dtype(np.int64): GGUFValueType.INT64,
    np.dtype(np.float32): GGUFValueType.FLOAT32,
    np.dtype(np.float64): GGUFValueType.FLOAT64,
    np.dtype(np.bool_): GGUFValueType.BOOL,
}
_NUMERIC_TYPES = {vtype for dtype, vtype in _NUMPY_TYPES.items() if dtype != np.bool_}

# Python ints: the first of these that holds the value (or every item of a list).
_INT_TYPES = (
    (GGUFValueType.INT32, -(2**31), 2**31 - 1),
    (GGUFValueType.INT64, -(2**63), 2**63 - 1),
    (GGUFValueType.UINT64, 0, 2**64 - 1),
)


def _int_type(key: str, values: list[int]) -> GGUFValueType:
    lo, hi = min(values), max(values)
    for vtype, tmin, tmax in _INT_TYPES:
        if tmin <= lo and hi <= tmax:
            return vtype
    raise ValueError(f"[save_gguf] metadata {key!r} holds an integer outside the range of INT64 and UINT64")


def _numpy_type(key: str, dtype: np.dtype, what: str) -> GGUFValueType:
    vtype = _NUMPY_TYPES.get(dtype)
    if vtype is None:
        raise TypeError(f"[save_gguf] metadata {key!r} is a NumPy {dtype} {what}, which GGUF cannot store")
    return vtype


def _scalar(key: str, value: Any) -> tuple[Any, GGUFValueType]:
    """(value as the writer wants it, its GGUF type) for one non-list value."""
    if isinstance(value, np.generic):
        return value.item(), _numpy_type(key, value.dtype, "scalar")
    if isinstance(value, bool):
        return value, GGUFValueType.BOOL
    if isinstance(value, str):
        return value, GGUFValueType.STRING
    if isinstance(value, int):
        return value, _int_type(key, [value])
    if isinstance(value, float):
        return value, GGUFValueType.FLOAT32
    raise TypeError(
        f"[save_gguf] metadata {key!r} is a {type(value).__name__}; GGUF stores bool, int, float, str, "
        "NumPy scalars, 1-D NumPy arrays and lists of one of these"
    )


def gguf_value(key: str, value: Any) -> tuple[Any, GGUFValueType, GGUFValueType | None]:
    """``(value, type, item type or None)`` to pass to ``GGUFWriter.add_key_value``."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError(f"[save_gguf] metadata {key!r} is a {value.ndim}-D array; GGUF arrays are 1-D")
        item_type: GGUFValueType | None = _numpy_type(key, value.dtype, "array")
        values = value.tolist()  # the writer packs a Python sequence
    elif isinstance(value, (list, tuple)):
        if any(isinstance(item, (list, tuple, np.ndarray)) for item in value):
            raise TypeError(f"[save_gguf] metadata {key!r} is a nested list; only flat lists are supported")
        items = [_scalar(key, item) for item in value]
        values = [v for v, _ in items]
        item_types = {t for _, t in items}
        if value and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            item_types = {_int_type(key, values)}
        if len(item_types) > 1:
            names = sorted(t.name for t in item_types)
            raise TypeError(f"[save_gguf] metadata {key!r} mixes item types {names}; a GGUF array has one item type")
        item_type = item_types.pop() if item_types else None
    else:
        return (*_scalar(key, value), None)
    if not values:
        raise ValueError(f"[save_gguf] metadata {key!r} is empty; gguf-py's writer cannot store empty arrays")
    return values, GGUFValueType.ARRAY, item_type
