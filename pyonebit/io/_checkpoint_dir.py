"""A checkpoint directory as Hugging Face and mlx-lm lay it out: config.json
and the weights in one *.safetensors file, or in shards listed by
model.safetensors.index.json ({"weight_map": {tensor: file}}).

The directory is untrusted: JSON files are size-capped and parsed with
nesting errors turned into ValueError, the weight map is type-checked and
may only name files inside the directory (checked before any is opened), and
every file must be a regular file before it is opened (a FIFO would block
the open, a directory fail with an unhelpful OSError)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ._safetensors import TensorInfo, read_header

INDEX_NAME = "model.safetensors.index.json"
# config.json and the index are kilobytes to a few megabytes; a larger one is
# not a checkpoint's, and json would hold it in memory several times over.
MAX_JSON_BYTES = 64 * 2**20


def require_dir(path, op: str) -> Path:
    path = Path(path)
    if path.is_file():  # a common slip: the weights file instead of the folder that holds it
        hint = ("; a GGUF file loads with load_gguf" if path.suffix.lower() == ".gguf" else
                f"; pass the directory that holds it: {path.parent}")
        raise NotADirectoryError(f"[{op}] {path} is a file, not a checkpoint directory (config.json "
                                 f"and *.safetensors){hint}")
    if not path.is_dir():
        raise FileNotFoundError(f"[{op}] {path}: no such directory")
    return path


def require_regular_file(path: Path, op: str, missing: str = "no such file") -> os.stat_result:
    """stat of ``path`` (following symlinks), which must be a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"[{op}] {path}: {missing}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"[{op}] {path} is not a regular file")
    return st


def read_json(path: Path, op: str, missing: str = "no such file"):
    """The parsed JSON of a small regular file; ValueError for anything else."""
    require_regular_file(path, op, missing)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never block on a swapped-in FIFO
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"[{op}] {path} is not a regular file")
        if st.st_size > MAX_JSON_BYTES:
            raise ValueError(f"[{op}] {path} is larger than {MAX_JSON_BYTES} bytes: not a checkpoint's JSON file")
        data = f.read(st.st_size + 1)  # a file that grew since is cut short and fails to parse
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        what = "is nested too deeply" if isinstance(e, RecursionError) else f"is not valid JSON: {e}"
        raise ValueError(f"[{op}] {path} {what}") from None


def read_config(directory: Path, op: str) -> dict:
    path = directory / "config.json"
    config = read_json(path, op, "no such file (a checkpoint directory needs config.json)")
    if not isinstance(config, dict):
        raise ValueError(f"[{op}] {path} must hold a JSON object, got {type(config).__name__}")
    return config


def safetensors_files(directory: Path, op: str) -> tuple[list[Path], dict[str, str] | None]:
    """The weight files, and the index's weight_map when the checkpoint is sharded."""
    index_path = directory / INDEX_NAME
    if not os.path.lexists(index_path):
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"[{op}] {directory}: no *.safetensors file")
        for f in files:
            require_regular_file(f, op)
        return files, None
    weight_map = _weight_map(index_path, op)
    files = [directory / name for name in sorted(set(weight_map.values()))]
    for f in files:
        require_regular_file(f, op, f"no such file (listed in {index_path})")
    return files, weight_map


def _weight_map(index_path: Path, op: str) -> dict[str, str]:
    """The index's weight_map, checked: tensor name -> the name of a file in
    the checkpoint directory itself (checked on the text alone, before any
    file is opened: no '..', no absolute path, no subdirectory; a symlink
    there, as in the Hugging Face cache, is the user's own)."""
    index = read_json(index_path, op)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise ValueError(f"[{op}] {index_path}: 'weight_map' must be an object of tensor name -> file name, "
                         f"got {type(weight_map).__name__}")
    for name, file in weight_map.items():
        if not isinstance(file, str):
            raise ValueError(f"[{op}] {index_path}: weight_map[{name!r}] must be a file name, got {file!r}")
        if file in ("", ".", "..") or any(c in file for c in "/\\\0"):
            raise ValueError(f"[{op}] {index_path}: weight_map[{name!r}] = {file!r} is not the name of a file in the checkpoint directory")
    return weight_map


def tensor_table(files: list[Path], weight_map: dict[str, str] | None, op: str
                 ) -> dict[str, TensorInfo]:
    """Every tensor of the checkpoint by name, in file order then data order."""
    table: dict[str, TensorInfo] = {}
    for f in files:
        try:
            infos, _ = read_header(f)
        except ValueError as e:
            raise ValueError(f"[{op}] {e}") from None
        for name, info in sorted(infos.items(), key=lambda kv: kv[1].begin):
            if name in table:
                raise ValueError(f"[{op}] tensor {name!r} is in both {table[name].path} and {f}")
            if weight_map is not None and weight_map.get(name) != f.name:
                raise ValueError(f"[{op}] tensor {name!r} is in {f} but {INDEX_NAME} maps it to "
                                 f"{weight_map.get(name)!r}")
            table[name] = info
    if weight_map is not None:
        missing = sorted(set(weight_map) - set(table))
        if missing:
            raise ValueError(f"[{op}] {INDEX_NAME} lists tensors no file holds: "
                             f"{', '.join(missing[:5])}")
    return table
