"""The safetensors file format, the parts the safetensors package does not give
NumPy users: tensors of dtypes NumPy lacks (bfloat16, float8) and writing a
file one tensor at a time.

A file is an 8-byte little-endian header length, a JSON header (name ->
{"dtype", "shape", "data_offsets": [begin, end]} relative to the end of the
header, plus an optional "__metadata__" str -> str map), then the data.
Tensors are little-endian, C order, and tile the data region without gaps.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from math import prod

import ml_dtypes
import numpy as np
from safetensors import SafetensorError, safe_open

# safetensors dtype names <-> NumPy dtypes (little-endian).
DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
# ml_dtypes types are not NumPy's own: safetensors' NumPy API resolves them by
# name, which fails unless ml_dtypes happened to be imported first (and older
# safetensors releases reject BF16 outright). These are read from raw bytes.
_RAW_READ = {"BF16", "F8_E4M3", "F8_E5M2"}
_NAME_OF = {dt: name for name, dt in DTYPES.items()}


def dtype_name(dtype) -> str:
    """The safetensors name of a NumPy dtype (ValueError if it has none)."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    if dt not in _NAME_OF:
        raise ValueError(f"dtype {np.dtype(dtype)} has no safetensors equivalent")
    return _NAME_OF[dt]


@dataclass(frozen=True)
class TensorInfo:
    path: str
    name: str
    dtype: str  # safetensors name, e.g. "BF16"
    shape: tuple
    begin: int  # absolute byte offset of the data in the file
    nbytes: int


def read_header(path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """(tensors by name, metadata) of one file. The safetensors package
    validates the header (it refuses overlaps, gaps and bad lengths)."""
    path = os.fspath(path)
    try:
        with safe_open(path, framework="numpy"):
            pass
    except SafetensorError as e:
        raise ValueError(f"{path} is not a valid safetensors file: {e}") from None
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        tensors[name] = TensorInfo(path, name, entry["dtype"], tuple(entry["shape"]),
                                   data_start + begin, end - begin)
    return tensors, metadata


def read_tensor(info: TensorInfo) -> np.ndarray:
    """The tensor as a NumPy array of its own dtype (bfloat16 and float8 from
    ml_dtypes); reads only this tensor's bytes."""
    if info.dtype not in DTYPES:
        raise ValueError(f"tensor {info.name!r} in {info.path} has dtype {info.dtype}, "
                         f"which pyonebit cannot read (known: {', '.join(DTYPES)})")
    if info.dtype not in _RAW_READ:
        with safe_open(info.path, framework="numpy") as f:
            return f.get_tensor(info.name)
    dt = DTYPES[info.dtype]
    with open(info.path, "rb") as f:
        f.seek(info.begin)
        data = np.fromfile(f, dtype=dt, count=prod(info.shape))
    return data.reshape(info.shape)


class StreamingWriter:
    """Writes a safetensors file whose tensor table is known up front, so the
    header goes first and each tensor's data can be written, and then freed,
    as soon as it exists: memory holds one tensor at a time, never the file.

    ``specs`` maps name -> (dtype, shape). Tensors are laid out largest
    element first (then by name), so every tensor starts at a multiple of its
    element size, and ``write`` may come in any order. Used as a context
    manager; a file left incomplete (an exception, or a tensor never written)
    is deleted.
    """

    def __init__(self, path, specs: dict, metadata: dict[str, str] | None = None):
        self.path = os.fspath(path)
        order = sorted(specs, key=lambda n: (-np.dtype(specs[n][0]).itemsize, n))
        header: dict[str, dict] = {"__metadata__": dict(metadata)} if metadata else {}
        self._slots = {}
        offset = 0
        for name in order:
            dtype, shape = np.dtype(specs[name][0]), tuple(int(d) for d in specs[name][1])
            nbytes = prod(shape) * dtype.itemsize
            header[name] = {"dtype": dtype_name(dtype), "shape": list(shape),
                            "data_offsets": [offset, offset + nbytes]}
            self._slots[name] = (dtype, shape, offset)
            offset += nbytes
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the format allows space padding; keeps data 8-aligned
        self._data_start = 8 + len(text)
        self._written: set[str] = set()
        self._file = open(self.path, "wb")
        self._file.write(len(text).to_bytes(8, "little") + text)
        self._file.truncate(self._data_start + offset)

    def write(self, name: str, array: np.ndarray) -> None:
        if name not in self._slots:
            raise ValueError(f"tensor {name!r} is not in the header of {self.path}")
        if name in self._written:
            raise ValueError(f"tensor {name!r} was already written to {self.path}")
        dtype, shape, offset = self._slots[name]
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"tensor {name!r}: the header says {dtype} {shape}, "
                             f"got {array.dtype} {array.shape}")
        self._file.seek(self._data_start + offset)
        data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).reshape(-1)
        self._file.write(data.view(np.uint8).data)  # bytes: memoryview rejects bfloat16
        self._written.add(name)

    def close(self) -> None:
        self._file.close()
        missing = sorted(set(self._slots) - self._written)
        if missing:
            os.remove(self.path)
            raise ValueError(f"{self.path}: tensors never written: {', '.join(missing)}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._file.close()
            os.remove(self.path)
