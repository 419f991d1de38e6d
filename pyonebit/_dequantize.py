"""dequantize: MLX's result in the scales' dtype, or the exact weights in a
wider dtype."""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _bfloat16, _core


def _is_wider(out: np.dtype, scales: np.dtype) -> bool:
    """Whether ``out`` holds ``scale * q + bias`` more exactly than ``scales``."""
    half = scales == np.float16 or _bfloat16.is_bfloat16(scales)
    if scales.kind != "f" and not half:
        return False  # not a float: the core names the error
    return out == np.float64 or (out == np.float32 and half)


def dequantize(
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = None,
    group_size: int = 128,
    bits: int = 1,
    mode: str = "affine",
    dtype: npt.DTypeLike | None = None,
) -> np.ndarray:
    """Expand packed weights back to floats, ``scale * q + bias`` (affine) or
    ``+/-scale`` (symmetric).

    ``dtype`` defaults to that of ``scales``; then (and for any ``dtype`` no
    wider than the scales') the result equals ``mlx.core.dequantize`` bit for
    bit: ``scale * q`` and ``+ bias`` each rounded to the scales' dtype.
    A wider ``dtype`` (``float32`` from float16 or bfloat16 scales,
    ``float64`` from any) gives the exact weights the matmul kernels use,
    computed in that dtype from the stored scales and biases (float32: one
    rounding, of the sum; float64: exact for half-precision scales), not the
    half-precision rounded values MLX returns."""
    if dtype is None:
        return _core.dequantize(wq, scales, biases, group_size, bits, mode)
    out_dtype = _bfloat16.as_dtype(dtype)
    s = _core._as_array(scales, "scales", "dequantize")
    if not _is_wider(out_dtype, s.dtype):
        # float64 is wider than every float: these scales are not, and the core names them.
        core_dtype = None if out_dtype == np.float64 else out_dtype
        return _core.dequantize(wq, s, biases, group_size, bits, mode, core_dtype)
    b = _core._as_array(biases, "biases", "dequantize") if biases is not None else None
    # The codes (affine) or signs (symmetric): unit scales and zero biases of
    # the same dtypes and shapes, so the core checks every argument but the
    # values; q <= 255 is exact in every float dtype.
    codes = _core.dequantize(wq, np.ones_like(s), None if b is None else np.zeros_like(b),
                             group_size, bits, mode, np.float32)
    w = codes.astype(out_dtype, copy=False).reshape(s.shape + (-1,))
    np.multiply(w, s.astype(out_dtype)[..., None], out=w)
    if b is not None:
        np.add(w, b.astype(out_dtype)[..., None], out=w)
    return w.reshape(codes.shape)
