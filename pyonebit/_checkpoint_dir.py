"""A checkpoint directory as Hugging Face and mlx-lm lay it out: config.json
and the weights in one *.safetensors file, or in shards listed by
model.safetensors.index.json ({"weight_map": {tensor: file}})."""
from __future__ import annotations

import json
from pathlib import Path

from ._safetensors import TensorInfo, read_header

INDEX_NAME = "model.safetensors.index.json"


def require_dir(path, op: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"[{op}] {path}: no such directory")
    return path


def read_config(directory: Path, op: str) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"[{op}] {path}: no such file "
                                f"(a checkpoint directory needs config.json)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"[{op}] {path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"[{op}] {path} must hold a JSON object, got {type(config).__name__}")
    return config


def safetensors_files(directory: Path, op: str) -> tuple[list[Path], dict[str, str] | None]:
    """The weight files, and the index's weight_map when the checkpoint is sharded."""
    index_path = directory / INDEX_NAME
    if not index_path.is_file():
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"[{op}] {directory}: no *.safetensors file")
        return files, None
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"[{op}] {index_path} has no readable weight_map: {e!r}") from None
    files = [directory / name for name in sorted(set(weight_map.values()))]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"[{op}] {f}: no such file (listed in {index_path})")
    return files, weight_map


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
