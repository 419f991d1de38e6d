"""convert IN OUT.gguf: a float safetensors checkpoint into a GGUF file whose
quantized tensors are llama.cpp's Q1_0 (symmetric 1-bit, group size 128).

The tensors chosen for quantization are those ``convert`` quantizes for an
MLX directory (2-D ``*.weight`` whose width is a multiple of 128); each
becomes the Q1_0 tensor ``<p>.weight`` (its scales rounded to float16, as
Q1_0 stores them), with ``<p>.bias``, if IN has one, as its F32 bias. Every
other tensor is stored as it is (float32, float16, bfloat16, float64 or
integer). IN's config.json, if any, is kept as the metadata string
``pyonebit.config``. Tensor names are IN's, not llama.cpp's: the file is for
:func:`pyonebit.load_gguf` and GGUF tools, not a llama.cpp model.

Unlike the MLX conversion, which streams, the layers and tensors are held in
memory until the file is written (about the size of the output).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._checkpoint_dir import tensor_table
from .._linear import QuantizedLinear
from ._safetensors import read_tensor

GGUF_SPEC = {"bits": 1, "group_size": 128, "mode": "symmetric"}  # Q1_0


def convert_to_gguf(src: Path, dst: Path, config: dict, files: list, weight_map: dict | None,
                    should_quantize, *, bits: int, group_size: int, mode: str):
    """Quantize and write; returns (bytes before, bytes after, quantized, kept).
    ``should_quantize(info)`` is convert's rule."""
    if {"bits": bits, "group_size": group_size, "mode": mode} != GGUF_SPEC:
        raise ValueError(f"[convert] a .gguf OUT stores Q1_0 (bits=1, group_size=128, "
                         f"mode='symmetric'), got bits={bits}, group_size={group_size}, mode={mode!r}")
    if dst.exists():
        raise ValueError(f"[convert] {dst} exists; convert writes a new file")
    from .gguf_file import save_gguf  # needs the gguf package

    table = tensor_table(files, weight_map, "convert")
    before = sum(info.nbytes for info in table.values())
    quantized = {name[: -len(".weight")] for name, info in table.items() if should_quantize(info)}
    if not quantized:
        raise ValueError(f"[convert] {src}: nothing to quantize: no 2-D *.weight tensor has a last "
                         f"dimension that is a multiple of group_size={group_size}")
    layers = {}
    for p in sorted(quantized):
        w = read_tensor(table.pop(f"{p}.weight"))
        bias_info = table.pop(f"{p}.bias", None)
        bias = read_tensor(bias_info) if bias_info is not None else None
        try:
            layers[p] = QuantizedLinear.from_float(w, bias, bits=1, group_size=128, mode="symmetric")
        except ValueError as e:
            raise ValueError(f"[convert] layer {p!r}: {e}") from None
    tensors = {name: read_tensor(info) for name, info in table.items()}
    metadata = {"pyonebit.config": json.dumps(config)} if config else None
    save_gguf(dst, layers, tensors, metadata)
    return before, dst.stat().st_size, len(layers), len(tensors)
