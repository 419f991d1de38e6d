# Type stubs for the compiled binding (pyonebit/_core.pyx).
from typing import Any

import numpy as np
import numpy.typing as npt

def quantize(
    w: npt.ArrayLike, group_size: int = ..., bits: int = ..., mode: str = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
def dequantize(
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    dtype: npt.DTypeLike | None = ...,
) -> np.ndarray: ...
def quantized_matmul(
    x: npt.ArrayLike,
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    transpose: bool = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    backend: str | None = ...,
    out: np.ndarray | None = ...,
) -> np.ndarray: ...
def backends() -> list[str]: ...
def supported_bits() -> list[int]: ...
def supported_group_sizes() -> list[int]: ...
def metal_stats() -> dict[str, Any]: ...
def cpu_kernels() -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
