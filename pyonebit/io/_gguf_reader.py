"""A defensive reader of the GGUF container (header, key-value pairs, tensor
table), written from the format's definition (ggml's docs/gguf.md and
ggml/src/gguf.cpp in llama.cpp) for files nobody vouches for.

Every count, length and dimension is checked against the bytes left in the
file before anything is allocated or looped over, so a hostile file costs at
most a small multiple of its own size in memory and time; every tensor must
lie, aligned and without overlapping another, inside the file's data region.
gguf-py's reader trusts the file (a 2**62-item array in a 64-byte file makes
it loop until memory runs out), so it is not used for reading.

Layout (little-endian): magic "GGUF", uint32 version (2 or 3), uint64 tensor
count, uint64 key-value count, the key-value pairs (string key, uint32 type,
value), the tensor infos (string name, uint32 n_dims, n_dims uint64 ne,
uint32 GGML type, uint64 offset), padding to ``general.alignment`` (default
32), then the data; each tensor offset is relative to the data's start. A
string is a uint64 length and that many UTF-8 bytes; an array is a uint32
item type, a uint64 count and the items.
"""
from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._gguf_package import gguf  # noqa: F401 (first: names the extra when gguf is missing)
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # 2 and 3 share the little-endian layout; 1 had 32-bit counts
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
ALIGNMENT_KEY = "general.alignment"

_NUMERIC: dict[GGUFValueType, np.dtype] = {
    GGUFValueType.UINT8: np.dtype("<u1"),
    GGUFValueType.INT8: np.dtype("<i1"),
    GGUFValueType.UINT16: np.dtype("<u2"),
    GGUFValueType.INT16: np.dtype("<i2"),
    GGUFValueType.UINT32: np.dtype("<u4"),
    GGUFValueType.INT32: np.dtype("<i4"),
    GGUFValueType.UINT64: np.dtype("<u8"),
    GGUFValueType.INT64: np.dtype("<i8"),
    GGUFValueType.FLOAT32: np.dtype("<f4"),
    GGUFValueType.FLOAT64: np.dtype("<f8"),
}
_STRING_MIN_BYTES = 8  # its length field
_KV_MIN_BYTES = _STRING_MIN_BYTES + 4 + 1  # key, type, the smallest value
_TENSOR_INFO_MIN_BYTES = _STRING_MIN_BYTES + 4 + 8 + 4 + 8  # name, n_dims, one ne, type, offset


@dataclass(frozen=True)
class TensorEntry:
    name: str
    ggml_type: GGMLQuantizationType
    ne: tuple[int, ...]  # GGUF order: ne[0] is contiguous
    start: int  # absolute byte offset of the data in the file
    nbytes: int

    def byte_shape(self) -> tuple[int, ...]:
        """NumPy shape of the stored bytes: rows of ``ne[0]`` elements as bytes."""
        block, type_size = GGML_QUANT_SIZES[self.ggml_type]
        return (*reversed(self.ne[1:]), self.ne[0] // block * type_size)


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # key -> value (types: pyonebit.io.gguf_metadata)
    tensors: list[TensorEntry]  # in file order
    alignment: int


class _Cursor:
    """Reads fields off a buffer; every read is checked against its end."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def left(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int, what: str) -> int:
        """Claims the next ``n`` bytes and returns where they start."""
        if n > self.left():
            raise ValueError(f"{what} at byte {self.pos} needs {n} bytes but only {self.left()} are left in the file")
        start = self.pos
        self.pos += n
        return start

    def numbers(self, dtype: np.dtype, count: int, what: str) -> np.ndarray:
        start = self.take(count * dtype.itemsize, what)
        return np.frombuffer(self.buf, dtype, count, start).astype(dtype.newbyteorder("="))

    def uint(self, fmt: str, what: str) -> int:
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.uint("<Q", f"the length of {what}")
        start = self.take(n, f"{what} ({n} bytes)")
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{what} at byte {start} is not UTF-8: {e.reason}") from None

    def require_room(self, count: int, min_bytes: int, what: str) -> None:
        """A ``count`` of items of at least ``min_bytes`` each must fit in
        what is left: the check that bounds every loop over a count."""
        if count * min_bytes > self.left():
            raise ValueError(
                f"{what} = {count} at byte {self.pos} cannot fit: it needs at least {count * min_bytes} bytes "
                f"but only {self.left()} are left in the file"
            )


def open_regular_file(path: str):
    """Opens ``path`` for reading after checking it is a regular file: a FIFO
    would block the open itself, a device or directory read forever or fail
    with an unhelpful OSError. O_NONBLOCK covers a swap between the check and
    the open; fstat rechecks what was opened."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path!r} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_header(f) -> GGUFHeader:
    """The header of the open GGUF file ``f``; ValueError naming the field
    and byte offset when it is malformed."""
    size = os.fstat(f.fileno()).st_size
    if size < len(MAGIC) or f.read(len(MAGIC)) != MAGIC:
        raise ValueError("GGUF magic invalid")
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        cur.take(len(MAGIC), "magic")
        header = _parse(cur, size)
        del cur  # no view of the mapping may outlive it
    return header


def _parse(cur: _Cursor, size: int) -> GGUFHeader:
    version = cur.uint("<I", "the version")
    if version & 0xFFFF == 0 and version:
        # A big-endian file's version reads as (v << 24) here.
        raise BigEndianFile("a big-endian GGUF file")
    if version not in VERSIONS:
        raise ValueError(f"GGUF version {version} is not supported (pyonebit reads versions 2 and 3)")
    n_tensors = cur.uint("<Q", "the tensor count")
    n_kv = cur.uint("<Q", "the key-value count")
    cur.require_room(n_kv, _KV_MIN_BYTES, "the key-value count")
    metadata = {}
    for _ in range(n_kv):
        at = cur.pos
        key = cur.string("a key")
        if key in metadata:
            raise ValueError(f"key {key!r} at byte {at} appears twice")
        metadata[key] = _value(cur, key)
    alignment = _alignment(metadata)
    cur.require_room(n_tensors, _TENSOR_INFO_MIN_BYTES, "the tensor count")
    infos = [_tensor_info(cur) for _ in range(n_tensors)]
    data_start = -(-cur.pos // alignment) * alignment
    tensors = [_place(info, data_start, alignment, size) for info in infos]
    _check_unique_and_disjoint(tensors)
    return GGUFHeader(version, metadata, tensors, alignment)


class BigEndianFile(ValueError):
    """The file is GGUF, but big-endian."""


def _value(cur: _Cursor, key: str) -> Any:
    vtype = _value_type(cur.uint("<I", f"the type of key {key!r}"), key)
    what = f"the value of key {key!r}"
    if vtype == GGUFValueType.STRING:
        return cur.string(what)
    if vtype == GGUFValueType.BOOL:
        return _bools(cur, 1, what)[0]
    if vtype in _NUMERIC:
        return cur.numbers(_NUMERIC[vtype], 1, what)[0]
    return _array(cur, key)


def _array(cur: _Cursor, key: str) -> Any:
    item_type = _value_type(cur.uint("<I", f"the item type of array {key!r}"), key)
    if item_type == GGUFValueType.ARRAY:
        # llama.cpp refuses arrays of arrays too; refusing them also bounds the nesting.
        raise ValueError(f"key {key!r} is an array of arrays, which GGUF readers do not support")
    count = cur.uint("<Q", f"the length of array {key!r}")
    what = f"the items of array {key!r}"
    if item_type in _NUMERIC:
        cur.require_room(count, _NUMERIC[item_type].itemsize, f"the length of array {key!r}")
        return cur.numbers(_NUMERIC[item_type], count, what)
    if item_type == GGUFValueType.BOOL:
        cur.require_room(count, 1, f"the length of array {key!r}")
        return _bools(cur, count, what)
    cur.require_room(count, _STRING_MIN_BYTES, f"the length of array {key!r}")
    return [cur.string(f"item {i} of array {key!r}") for i in range(count)]


def _value_type(raw: int, key: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise ValueError(f"key {key!r} has the unknown value type {raw}") from None


def _bools(cur: _Cursor, count: int, what: str) -> list[bool]:
    raw = cur.numbers(np.dtype("u1"), count, what)
    if (raw > 1).any():
        raise ValueError(f"{what} holds a bool byte other than 0 or 1")
    return raw.astype(bool).tolist()


def _alignment(metadata: dict[str, Any]) -> int:
    value = metadata.get(ALIGNMENT_KEY)
    if value is None:
        return DEFAULT_ALIGNMENT
    if not isinstance(value, np.uint32) or value == 0 or value & (value - 1):
        raise ValueError(f"{ALIGNMENT_KEY} must be a UINT32 power of two, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _Info:
    name: str
    at: int
    ne: tuple[int, ...]
    ggml_type: GGMLQuantizationType
    offset: int


def _tensor_info(cur: _Cursor) -> _Info:
    at = cur.pos
    name = cur.string("a tensor name")
    n_dims = cur.uint("<I", f"the dimension count of tensor {name!r}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise ValueError(f"tensor {name!r} at byte {at} has {n_dims} dimensions; GGUF allows 1 to {MAX_DIMS}")
    ne = tuple(int(n) for n in cur.numbers(np.dtype("<u8"), n_dims, f"the dimensions of tensor {name!r}"))
    if any(n >= 2**63 for n in ne):
        raise ValueError(f"tensor {name!r} at byte {at} has a dimension beyond INT64_MAX: ne = {list(ne)}")
    raw_type = cur.uint("<I", f"the type of tensor {name!r}")
    try:
        ggml_type = GGMLQuantizationType(raw_type)
        GGML_QUANT_SIZES[ggml_type]
    except (ValueError, KeyError):
        raise ValueError(f"tensor {name!r} at byte {at} has the unknown GGML type {raw_type}") from None
    offset = cur.uint("<Q", f"the offset of tensor {name!r}")
    return _Info(name, at, ne, ggml_type, offset)


def _place(info: _Info, data_start: int, alignment: int, size: int) -> TensorEntry:
    """The tensor's extent in the file, checked: Python ints cannot wrap, so an
    offset near 2**64 is simply past the end."""
    block, type_size = GGML_QUANT_SIZES[info.ggml_type]
    where = f"tensor {info.name!r} ({info.ggml_type.name}, ne = {list(info.ne)})"
    if info.ne[0] % block:
        raise ValueError(f"{where}: ne[0] is not a multiple of the type's block of {block}")
    n_elements = int(np.prod(info.ne, dtype=object))
    nbytes = n_elements // block * type_size
    if info.offset % alignment:
        raise ValueError(f"{where} has the offset {info.offset}, not a multiple of the alignment {alignment}")
    start = data_start + info.offset
    if start + nbytes > size:
        raise ValueError(
            f"{where} needs {nbytes} bytes at offset {info.offset} of the data (byte {start}), "
            f"past the end of the {size}-byte file"
        )
    return TensorEntry(info.name, info.ggml_type, info.ne, start, nbytes)


def _check_unique_and_disjoint(tensors: list[TensorEntry]) -> None:
    names = set()
    for t in tensors:
        if t.name in names:
            raise ValueError(f"tensor name {t.name!r} appears twice")
        names.add(t.name)
    placed = sorted((t for t in tensors if t.nbytes), key=lambda t: t.start)
    for a, b in zip(placed, placed[1:]):
        if b.start < a.start + a.nbytes:
            raise ValueError(f"tensors {a.name!r} and {b.name!r} overlap in the file")


def read_bytes(f, tensor: TensorEntry) -> np.ndarray:
    """The tensor's stored bytes (a copy), shaped as :meth:`TensorEntry.byte_shape`."""
    f.seek(tensor.start)
    data = np.fromfile(f, np.uint8, tensor.nbytes)
    if data.size != tensor.nbytes:  # the file shrank since its header was read
        raise ValueError(f"tensor {tensor.name!r}: the file ended {tensor.nbytes - data.size} bytes early")
    return data.reshape(tensor.byte_shape())
