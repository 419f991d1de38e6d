"""load_gguf / save_gguf: GGUF files whose Q1_0 tensors are pyonebit layers.

A Q1_0 tensor named ``<name>.weight`` is the layer ``<name>``: a
:class:`pyonebit.QuantizedLinear` in symmetric 1-bit mode, group size 128,
float16 scales, holding the file's bits and scales unchanged. An F32 tensor
``<name>.bias`` next to it is that layer's bias. Every other tensor is a NumPy
array. Reading goes through pyonebit's own defensive parser
(:mod:`pyonebit.io._gguf_reader`: files are untrusted), writing through the
``gguf`` package (gguf-py, from llama.cpp); the Q1_0 blocks themselves are
converted by :mod:`pyonebit.io.gguf_q1`. save_gguf replaces a file atomically.

GGUF lists dimensions innermost first (``ne[0]`` is contiguous); the reader
and gguf-py's writer reverse them into NumPy order, so a Q1_0 tensor with
``ne = [K, N]`` is a layer with ``N`` outputs and ``K`` inputs computing
``x @ W.T`` for ``W`` of shape ``(N, K)``, as llama.cpp's ``mul_mat`` does.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import ml_dtypes
import numpy as np

from ._gguf_package import gguf  # first: names the extra to install when gguf is missing
from gguf import GGMLQuantizationType, GGUFWriter

from ._atomic import replacing_file
from ._gguf_reader import BigEndianFile, GGUFHeader, TensorEntry, open_regular_file, read_bytes, read_header
from .._linear import QuantizedLinear
from .gguf_metadata import gguf_value
from .gguf_q1 import Q1_0_BLOCK_WEIGHTS, packed_from_q1_0, q1_0_blocks

Q1_0 = GGMLQuantizationType.Q1_0
BF16 = np.dtype(ml_dtypes.bfloat16)

# Types whose bytes are the elements of a NumPy dtype (little-endian).
_TYPED = {
    GGMLQuantizationType.F32: np.dtype("<f4"),
    GGMLQuantizationType.F16: np.dtype("<f2"),
    GGMLQuantizationType.F64: np.dtype("<f8"),
    GGMLQuantizationType.I8: np.dtype("i1"),
    GGMLQuantizationType.I16: np.dtype("<i2"),
    GGMLQuantizationType.I32: np.dtype("<i4"),
    GGMLQuantizationType.I64: np.dtype("<i8"),
    GGMLQuantizationType.BF16: BF16,
}
# dtypes save_gguf writes as plain tensors (bfloat16 as raw BF16 bytes).
_WRITABLE_DTYPES = [np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64)]
_MAX_DIMS = 4  # GGML_MAX_DIMS
_WEIGHT_SUFFIX = ".weight"
_BIAS_SUFFIX = ".bias"
_ARCH_KEY = "general.architecture"  # written by GGUFWriter itself
_ALIGNMENT_KEY = "general.alignment"  # must match the writer's padding


@dataclass
class GGUFContents:
    """What :func:`load_gguf` read: ``layers`` (layer name -> QuantizedLinear,
    one per Q1_0 tensor), ``tensors`` (tensor name -> NumPy array, every
    other tensor) and ``metadata`` (key -> Python value)."""

    layers: dict[str, QuantizedLinear]
    tensors: dict[str, np.ndarray]
    metadata: dict[str, Any]

    def __repr__(self) -> str:
        return (
            f"GGUFContents({len(self.layers)} Q1_0 layers, {len(self.tensors)} other tensors, "
            f"{len(self.metadata)} metadata keys)"
        )


def load_gguf(path: str | os.PathLike[str], *, backend: str | None = None) -> GGUFContents:
    """Read a GGUF file: Q1_0 tensors become symmetric 1-bit
    :class:`QuantizedLinear` layers (on ``backend``), named without their
    ``.weight`` suffix and given their ``<name>.bias`` tensor as bias; F32,
    F16 and BF16 tensors (and F64, I8-I64) are returned as arrays of their
    own dtype; other quantized types as :class:`GGUFQuantized` arrays (float32
    values from ``gguf.quants.dequantize``, with the stored bytes kept for
    :func:`save_gguf`). Every array is a copy: nothing keeps the file open.

    The file is untrusted: a malformed header or tensor table raises
    ValueError naming the file, the field and its byte offset
    (:mod:`pyonebit.io._gguf_reader` lists the checks)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"[load_gguf] no file at {path!r}")
    with _open(path) as f:
        try:
            header = read_header(f)
        except BigEndianFile:
            raise ValueError(
                f"[load_gguf] {path!r} is a big-endian GGUF file; only little-endian files are supported"
            ) from None
        except ValueError as exc:
            raise ValueError(f"[load_gguf] {path!r} is not a readable GGUF file: {exc}") from None
        try:
            return _contents(f, header, backend)
        except ValueError as exc:  # a well-formed file whose tensors are not what pyonebit loads
            raise ValueError(f"[load_gguf] {path!r}: {str(exc).removeprefix('[load_gguf] ')}") from None


def _open(path: str) -> Any:
    """The file, opened for reading if it is a regular file (never blocking on a FIFO)."""
    try:
        return open_regular_file(path)
    except ValueError as exc:
        raise ValueError(f"[load_gguf] {path!r} is not a readable GGUF file: {exc}") from None


def _contents(f: Any, header: GGUFHeader, backend: str | None) -> GGUFContents:
    weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    tensors: dict[str, np.ndarray] = {}
    for tensor in header.tensors:
        if tensor.ggml_type == Q1_0:
            if len(tensor.ne) != 2:
                raise ValueError(
                    f"[load_gguf] Q1_0 tensor {tensor.name!r} has {len(tensor.ne)} dimensions "
                    f"(ne = {list(tensor.ne)}); layers are 2-D, so only 2-D Q1_0 tensors can be loaded"
                )
            name = tensor.name.removesuffix(_WEIGHT_SUFFIX)
            if name in weights:
                raise ValueError(f"[load_gguf] two Q1_0 tensors map to the layer name {name!r}")
            weights[name] = packed_from_q1_0(read_bytes(f, tensor))
        else:
            tensors[tensor.name] = _plain_array(tensor, read_bytes(f, tensor))

    layers = {}
    for name, (wq, scales) in weights.items():
        bias = tensors.pop(name + _BIAS_SUFFIX, None)
        if bias is not None and bias.shape != (wq.shape[0],):
            raise ValueError(
                f"[load_gguf] tensor {name + _BIAS_SUFFIX!r} has shape {bias.shape}; as the bias of layer "
                f"{name!r} it must have shape ({wq.shape[0]},)"
            )
        layers[name] = QuantizedLinear(
            wq, scales, None, bias, group_size=Q1_0_BLOCK_WEIGHTS, bits=1, mode="symmetric", backend=backend
        )
    return GGUFContents(layers, tensors, header.metadata)


def _plain_array(tensor: TensorEntry, raw: np.ndarray) -> np.ndarray:
    qtype = tensor.ggml_type
    shape = tuple(reversed(tensor.ne))
    if qtype in _TYPED:
        return raw.view(_TYPED[qtype]).reshape(shape)
    try:
        values = gguf.quants.dequantize(raw, qtype)
    except NotImplementedError:
        raise ValueError(
            f"[load_gguf] tensor {tensor.name!r} has type {qtype.name}, which the gguf package cannot dequantize"
        ) from None
    return GGUFQuantized.wrap(values.astype(np.float32, copy=False), qtype, raw)


class GGUFQuantized(np.ndarray):
    """A tensor of a quantized GGML type other than Q1_0 (Q8_0, Q4_K, ...) as
    :func:`load_gguf` returns it: a float32 array of its dequantized values,
    plus ``ggml_type`` and ``raw`` (the bytes stored in the file).

    :func:`save_gguf` writes ``raw`` back in ``ggml_type`` (it cannot
    re-quantize), after checking the values still are what ``raw`` decodes
    to. An array derived from this one (a slice, a sum, ...) has ``raw`` None
    and is written as F32; to store changed values, pass a plain array."""

    ggml_type: GGMLQuantizationType | None
    raw: np.ndarray | None

    @classmethod
    def wrap(cls, values: np.ndarray, ggml_type: GGMLQuantizationType, raw: np.ndarray) -> "GGUFQuantized":
        array = values.view(cls)
        array.ggml_type, array.raw = ggml_type, raw
        return array

    def __array_finalize__(self, obj: Any) -> None:
        # Views and results computed from a loaded tensor are no longer its bytes.
        self.ggml_type, self.raw = None, None


def save_gguf(
    path: str | os.PathLike[str],
    layers: Mapping[str, QuantizedLinear],
    tensors: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
    arch: str | None = None,
) -> None:
    """Write ``layers`` as Q1_0 tensors ``<name>.weight`` (plus an F32
    ``<name>.bias`` for a layer with a bias), ``tensors`` as plain tensors
    (float32, float16, bfloat16, float64, int8-int64; a :class:`GGUFQuantized`
    tensor of a loaded file as its own bytes in its own type) and
    ``metadata`` as key-value pairs (types: :mod:`pyonebit.io.gguf_metadata`).

    ``general.architecture`` is ``arch``, else the metadata's own, else
    ``"pyonebit"``; a ``general.alignment`` in the metadata (a power of two)
    sets the data alignment. So ``save_gguf(p, m.layers, m.tensors,
    m.metadata)`` rewrites a loaded file ``m`` with every key and type kept.

    Layers must be symmetric 1-bit with group size 128. Float16 scales are
    stored as they are; float32 and bfloat16 scales are rounded to the
    nearest float16 (ties to even, the rounding ggml's own Q1_0 quantizer
    applies to ``d``), so :func:`load_gguf` returns them in float16; a scale
    that overflows float16 is an error. Everything is checked before the file
    is created, and the file is written beside ``path`` and renamed over it:
    a failed or interrupted (SIGINT, SIGTERM) save leaves the old file as it
    was and no temporary file."""
    items = _tensor_items(layers, tensors or {})
    metadata = dict(metadata or {})
    arch = _architecture(arch, metadata.pop(_ARCH_KEY, None))
    alignment = metadata.pop(_ALIGNMENT_KEY, None)
    if alignment is not None:
        alignment = _alignment(alignment)
    kv = [(key, *gguf_value(key, value)) for key, value in metadata.items()]

    with replacing_file(path) as tmp:
        writer = GGUFWriter(tmp, arch)
        try:
            if alignment is not None:
                writer.add_custom_alignment(alignment)
            for key, value, vtype, sub_type in kv:
                writer.add_key_value(key, value, vtype, sub_type=sub_type)
            for name, array, raw_dtype in items:
                writer.add_tensor(name, array, raw_dtype=raw_dtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()


def _stored_bytes(name: str, array: GGUFQuantized, raw: np.ndarray, ggml_type: GGMLQuantizationType) -> np.ndarray:
    """A loaded quantized tensor's own bytes, if its values are still theirs:
    writing stale bytes would silently drop the caller's changes."""
    decoded = gguf.quants.dequantize(raw, ggml_type).astype(np.float32, copy=False)
    if decoded.shape != array.shape or decoded.tobytes() != np.asarray(array).tobytes():
        raise ValueError(
            f"[save_gguf] tensors[{name!r}] was loaded as {ggml_type.name} and its values changed since; "
            f"pyonebit cannot re-quantize {ggml_type.name}: pass np.asarray(tensor) to store it as F32"
        )
    return raw


def _architecture(arch: str | None, from_metadata: Any) -> str:
    if arch is not None and from_metadata is not None and from_metadata != arch:
        raise ValueError(f"[save_gguf] arch={arch!r} disagrees with metadata[{_ARCH_KEY!r}]={from_metadata!r}")
    chosen = arch if arch is not None else from_metadata if from_metadata is not None else "pyonebit"
    if not isinstance(chosen, str):
        raise TypeError(f"[save_gguf] the architecture must be a str, got {type(chosen).__name__}")
    return chosen


def _alignment(value: Any) -> int:
    """general.alignment must be a power of two; readers require it as UINT32."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not (
        0 < value < 2**32 and value & (value - 1) == 0
    ):
        raise ValueError(f"[save_gguf] metadata[{_ALIGNMENT_KEY!r}] must be a power of two below 2**32, got {value!r}")
    return int(value)


def _tensor_items(
    layers: Mapping[str, QuantizedLinear], tensors: Mapping[str, np.ndarray]
) -> list[tuple[str, np.ndarray, GGMLQuantizationType | None]]:
    """(name, array, raw GGML type or None) for every tensor to write, checked."""
    items: list[tuple[str, np.ndarray, GGMLQuantizationType | None]] = []
    for name, layer in layers.items():
        wq, scales = _q1_0_parts(name, layer)
        items.append((name + _WEIGHT_SUFFIX, q1_0_blocks(wq, scales), Q1_0))
        if layer.bias is not None:
            items.append((name + _BIAS_SUFFIX, np.asarray(layer.bias, dtype=np.float32), None))
    for name, array in tensors.items():
        items.append((name, *_plain_tensor(name, array)))
    seen = set()
    for name, _, _ in items:
        if name in seen:
            raise ValueError(f"[save_gguf] two tensors would be named {name!r}")
        seen.add(name)
    return items


def _q1_0_parts(name: str, layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """The layer's bits and float16 scales, after checking it fits Q1_0."""
    if not isinstance(layer, QuantizedLinear):
        raise TypeError(f"[save_gguf] layers[{name!r}] is a {type(layer).__name__}, not a pyonebit.QuantizedLinear")
    if layer.mode != "symmetric":
        raise ValueError(
            f"[save_gguf] layer {name!r} has mode={layer.mode!r}; Q1_0 stores only symmetric layers "
            "(affine layers cannot be stored as Q1_0)"
        )
    if layer.bits != 1:
        raise ValueError(f"[save_gguf] layer {name!r} has bits={layer.bits}; Q1_0 stores 1 bit per weight")
    if layer.group_size != Q1_0_BLOCK_WEIGHTS:
        raise ValueError(
            f"[save_gguf] layer {name!r} has group_size={layer.group_size}; "
            f"Q1_0 blocks hold {Q1_0_BLOCK_WEIGHTS} weights"
        )
    scales = layer.scales
    if scales.dtype != np.float16:
        # float32 first: exact for bfloat16, then one round-to-nearest-even step.
        wide = scales.astype(np.float32)
        with np.errstate(over="ignore"):
            scales = wide.astype(np.float16)
        unstorable = ~np.isfinite(scales)
        if unstorable.any():
            raise ValueError(
                f"[save_gguf] layer {name!r} has the scale {wide[unstorable].flat[0]:g}, which float16 cannot "
                "hold (Q1_0 stores each scale as float16)"
            )
    return layer.wq, scales


def _plain_tensor(name: str, array: Any) -> tuple[np.ndarray, GGMLQuantizationType | None]:
    if isinstance(array, GGUFQuantized) and array.raw is not None and array.ggml_type is not None:
        return _stored_bytes(name, array, array.raw, array.ggml_type), array.ggml_type
    array = np.asarray(array)
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise ValueError(
            f"[save_gguf] tensors[{name!r}] has {array.ndim} dimensions; GGUF tensors have 1 to {_MAX_DIMS}"
        )
    array = np.ascontiguousarray(array)
    if array.dtype == BF16:
        return array.view(np.uint8), GGMLQuantizationType.BF16
    if array.dtype not in _WRITABLE_DTYPES:
        raise TypeError(
            f"[save_gguf] tensors[{name!r}] has dtype {array.dtype}; GGUF plain tensors are "
            "float32, float16, bfloat16, float64, int8, int16, int32 or int64"
        )
    return array, None
