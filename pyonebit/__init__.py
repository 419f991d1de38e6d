"""pyonebit: 1-bit (and low-bit) quantized matrix multiply for NumPy.

Weights are stored in MLX's affine format (``w_hat = scale * q + bias`` per
group of ``group_size`` elements along the last axis, codes packed into
uint32), or in a symmetric 1-bit mode (``+d``/``-d`` per group, no bias).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

try:  # the compiled extension, absent from an unbuilt source checkout
    from ._core import backends as _core_backends
    from ._core import cpu_kernels, cpu_preferred_layout, get_num_threads, metal_stats
except ModuleNotFoundError as _e:
    if _e.name != f"{__name__}._core":
        raise
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    raise ImportError(
        f"pyonebit's compiled extension (pyonebit._core) is missing from {_here}: this is a source "
        f"checkout not built for Python {_sys.version_info[0]}.{_sys.version_info[1]}. Build it in "
        f"{_os.path.dirname(_here)} with `pip install -e .` (or `python setup.py build_ext --inplace`), "
        "or, to use an installed pyonebit, run Python from another directory.") from None

from ._core import deinterleave16, interleave16, quantize, set_num_threads
from ._core import quantized_matmul as _quantized_matmul
from ._core import supported_bits, supported_group_sizes
from ._dequantize import dequantize
from ._dtype_error import DTypeError
from . import cuda_backend as _cuda_backend
from ._linear import QuantizedLinear
from ._memory import aligned_empty
from ._trace import Trace, trace

if TYPE_CHECKING:  # loaded lazily by __getattr__ below
    from .io.gguf_file import GGUFContents, load_gguf, save_gguf
    from .io.mlx_checkpoint import MLXCheckpoint, load_mlx
    from .io.mlx_save import save_mlx

__version__ = "0.1.0"

__all__ = [
    "quantize",
    "dequantize",
    "quantized_matmul",
    "QuantizedLinear",
    "DTypeError",
    "load_mlx",
    "save_mlx",
    "MLXCheckpoint",
    "backends",
    "supported_bits",
    "supported_group_sizes",
    "trace",
    "Trace",
    "metal_stats",
    "aligned_empty",
    "cpu_kernels",
    "cpu_preferred_layout",
    "interleave16",
    "deinterleave16",
    "set_num_threads",
    "get_num_threads",
    "load_gguf",
    "save_gguf",
    "GGUFContents",
    "__version__",
]

# Checkpoint support imports the gguf package (about 80 ms) or safetensors, so
# it loads on first use.
_LAZY_ATTRIBUTES = {"load_gguf": "io.gguf_file", "save_gguf": "io.gguf_file",
                    "GGUFContents": "io.gguf_file", "load_mlx": "io.mlx_checkpoint",
                    "MLXCheckpoint": "io.mlx_checkpoint", "save_mlx": "io.mlx_save"}


def __getattr__(name: str):
    module = _LAZY_ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module 'pyonebit' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRIBUTES))


def backends() -> list[str]:
    """Backends usable here, the default (for NumPy data) first; ``"cuda"``
    last, where the CUDA module was built and a device is usable."""
    return _core_backends() + (["cuda"] if _cuda_backend.available() else [])


def quantized_matmul(
    x: npt.ArrayLike,
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = None,
    transpose: bool = True,
    group_size: int = 128,
    bits: int = 1,
    mode: str = "affine",
    backend: str | None = None,
    out: np.ndarray | None = None,
    layout: str = "mlx",
) -> np.ndarray:
    # Device arrays (or backend="cuda") go to the CUDA module, everything else to the core.
    if backend == "cuda" or (backend is None and _cuda_backend.is_device_array(x)):
        return _cuda_backend.quantized_matmul(x, wq, scales, biases, transpose, group_size, bits,
                                              mode, out, layout)
    return _quantized_matmul(x, wq, scales, biases, transpose, group_size, bits, mode, backend,
                             out, layout)


quantized_matmul.__doc__ = _quantized_matmul.__doc__  # written once, in _core.pyx
