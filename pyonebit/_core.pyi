# Type stubs for the compiled binding (pyonebit/_core.pyx): every name it
# defines, the private ones (leading underscore) included, since the package
# and its tests use them.
from typing import Any

import numpy as np
import numpy.typing as npt

def _as_array(obj: Any, name: str, op: str) -> np.ndarray: ...
def quantize(
    w: npt.ArrayLike, group_size: int = ..., bits: int = ..., mode: str = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
def _emulated_quantize(
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
def _emulated_dequantize(
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    dtype: npt.DTypeLike | None = ...,
) -> np.ndarray: ...
def _check_spec(group_size: int, bits: int, mode: str, op: str) -> None: ...
def _check_weight(
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None,
    group_size: int,
    bits: int,
    mode: str,
    op: str,
) -> None: ...
def _check_out(
    out: Any, shape: tuple[int, ...], dtype: np.dtype, inputs: list[Any], op: str
) -> None: ...
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
    layout: str = ...,
) -> np.ndarray: ...
def backends() -> list[str]: ...
def interleave16(a: npt.ArrayLike) -> np.ndarray: ...
def deinterleave16(a: npt.ArrayLike) -> np.ndarray: ...
def supported_bits() -> list[int]: ...
def supported_group_sizes() -> list[int]: ...
def _trace_start() -> int: ...
def _trace_stop(token: int) -> list[dict[str, Any]]: ...
def metal_stats() -> dict[str, Any]: ...
def _metal_load_library() -> bool: ...
def _metal_plan(
    x: npt.ArrayLike,
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    transpose: bool = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    caps: dict[str, Any] | None = ...,
) -> dict[str, Any]: ...
def _metal_plan_quantize(
    w: npt.ArrayLike,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    caps: dict[str, Any] | None = ...,
) -> dict[str, Any]: ...
def _metal_plan_dequantize(
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    caps: dict[str, Any] | None = ...,
) -> dict[str, Any]: ...
def cpu_kernels() -> dict[str, Any]: ...
def cpu_preferred_layout(bits: int = ..., group_size: int = ..., mode: str = ...) -> str: ...
def _cpu_kernel_plan(
    x: npt.ArrayLike,
    wq: npt.ArrayLike,
    scales: npt.ArrayLike,
    biases: npt.ArrayLike | None = ...,
    transpose: bool = ...,
    group_size: int = ...,
    bits: int = ...,
    mode: str = ...,
    layout: str = ...,
    isa: str = ...,
) -> dict[str, Any]: ...
def _set_cpu_isa(name: str) -> None: ...
def set_num_threads(n: int) -> None: ...
def _set_parallel_threshold(work: int) -> None: ...
def get_num_threads() -> int: ...
def _add_bias(y: np.ndarray, bias: np.ndarray) -> bool: ...
def _read_memory(a: np.ndarray) -> int: ...
