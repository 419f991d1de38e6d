"""save_mlx: pyonebit layers and arrays into an MLX quantized checkpoint
directory, the format :func:`pyonebit.load_mlx` (and mlx-lm, for affine
layers) reads; and the pieces ``python -m pyonebit convert`` shares with it.

A layer ``<p>`` becomes ``<p>.weight`` (uint32), ``<p>.scales``,
``<p>.biases`` (affine) and ``<p>.bias`` (if it has one); config.json gets a
"quantization" section (and mlx-lm's copy "quantization_config"): the
``group_size`` and ``bits`` (and ``mode`` when not affine) most layers use,
and an entry for each layer quantized otherwise.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._atomic import staging_dir
from .._linear import QuantizedLinear
from ._safetensors import StreamingWriter, dtype_name

WEIGHTS_NAME = "model.safetensors"


def check_new_directory(dst: Path, op: str) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ValueError(f"[{op}] {dst} exists and is not an empty directory")


def quantization_entry(group_size: int, bits: int, mode: str) -> dict[str, Any]:
    """A quantization section's keys for one spec ("mode" only when not affine, as mlx-lm)."""
    entry: dict[str, Any] = {"group_size": group_size, "bits": bits}
    if mode != "affine":
        entry["mode"] = mode
    return entry


def write_config(directory: Path, config: Mapping[str, Any], quantization: dict[str, Any]) -> None:
    """config.json: ``config`` with ``quantization`` as "quantization" and its copy
    "quantization_config" (replacing what ``config`` had there)."""
    config = dict(config, quantization=quantization, quantization_config=dict(quantization))
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def save_mlx(
    path: str | os.PathLike[str],
    layers: Mapping[str, QuantizedLinear],
    tensors: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Write ``layers`` (path -> QuantizedLinear), ``tensors`` (name -> array:
    norms, unquantized weights ...) and ``config`` (config.json's other keys,
    e.g. a loaded checkpoint's; its quantization section is replaced by one
    describing ``layers``) into the new directory ``path`` as one
    model.safetensors and config.json. ``save_mlx(p, c.layers, c.tensors,
    c.config)`` rewrites a checkpoint ``c`` that :func:`pyonebit.load_mlx`
    returned.

    ``path`` must not exist or be an empty directory. Everything is checked
    first, then written beside ``path`` and renamed onto it: a failed or
    interrupted (SIGINT, SIGTERM) save leaves nothing behind."""
    op = "save_mlx"
    if not isinstance(config, Mapping) and config is not None:
        raise TypeError(f"[{op}] config must be a dict or None, got {type(config).__name__}")
    arrays = _arrays(layers, tensors or {}, op)
    dst = Path(path)
    check_new_directory(dst, op)
    specs = {name: (a.dtype, a.shape) for name, a in arrays.items()}
    with staging_dir(dst) as tmp:
        with StreamingWriter(tmp / WEIGHTS_NAME, specs, {"format": "mlx"}) as writer:
            for name, a in arrays.items():
                writer.write(name, a)
        write_config(tmp, config or {}, _quantization(layers))


def _arrays(layers: Mapping[str, QuantizedLinear], tensors: Mapping[str, Any], op: str
            ) -> dict[str, np.ndarray]:
    """Every tensor to write by name, checked: no name twice, none that
    load_mlx would take for part of a quantized layer, every dtype storable."""
    arrays: dict[str, np.ndarray] = {}
    for p, layer in layers.items():
        if not isinstance(layer, QuantizedLinear):
            raise TypeError(f"[{op}] layers[{p!r}] is a {type(layer).__name__}, not a pyonebit.QuantizedLinear")
        parts = {"weight": layer.wq, "scales": layer.scales, "biases": layer.biases, "bias": layer.bias}
        arrays.update({f"{p}.{k}": a for k, a in parts.items() if a is not None})
    for name, t in tensors.items():
        a = np.ascontiguousarray(t)
        if name in arrays:
            raise ValueError(f"[{op}] tensors[{name!r}] has the name of a layer's array")
        if name.endswith(".scales") or (name.endswith(".weight") and a.dtype == np.uint32):
            raise ValueError(f"[{op}] tensors[{name!r}] would load as part of a quantized layer "
                             f"(a *.scales or uint32 *.weight tensor); pass the layer in layers")
        try:
            dtype_name(a.dtype)
        except ValueError:
            raise TypeError(f"[{op}] tensors[{name!r}] has dtype {a.dtype}, which safetensors "
                            f"cannot store") from None
        arrays[name] = a
    return arrays


def _quantization(layers: Mapping[str, QuantizedLinear]) -> dict[str, Any]:
    """The most common spec as the section's own keys, an entry for every other layer
    (no layers: MLX's defaults)."""
    specs = {p: (layer.group_size, layer.bits, layer.mode) for p, layer in layers.items()}
    counts = Counter(specs.values())
    # Ties go to the smallest spec, so the section does not depend on the layers' order.
    group_size, bits, mode = max(sorted(counts), key=counts.__getitem__) if counts else (64, 4, "affine")
    section = quantization_entry(group_size, bits, mode)
    for p, spec in specs.items():
        if spec != (group_size, bits, mode):
            section[p] = dict(quantization_entry(*spec), mode=spec[2])  # every key: MLX's defaults differ
    return section
