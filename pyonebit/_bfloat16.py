"""bfloat16 without importing ml_dtypes before it is needed: the import takes ~0.6 s
(most of ``import pyonebit`` on a 2-vCPU Zen 4), and no array has ml_dtypes'
bfloat16 dtype until something has imported it."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

_dtype: np.dtype | None = None


def dtype() -> np.dtype:
    """NumPy's dtype for ``ml_dtypes.bfloat16`` (imports ml_dtypes on first use)."""
    global _dtype
    if _dtype is None:
        import ml_dtypes

        _dtype = np.dtype(ml_dtypes.bfloat16)
    return _dtype


def is_bfloat16(dt: np.dtype) -> bool:
    """Whether ``dt`` is bfloat16; never imports ml_dtypes (without it nothing is)."""
    return dt.name == "bfloat16" and "ml_dtypes" in sys.modules and dt == dtype()


def as_dtype(d: Any) -> np.dtype:
    """``np.dtype(d)``, where the name ``"bfloat16"`` also works before ml_dtypes is imported."""
    return dtype() if isinstance(d, str) and d == "bfloat16" else np.dtype(d)
