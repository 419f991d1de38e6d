"""``python -m pyonebit info FILE.gguf``: what load_gguf would make of a GGUF
file (layers, arrays, tensors it cannot load), read from the header alone,
through pyonebit's defensive reader, so a multi-gigabyte file is described
in milliseconds and a hostile one fails with a ValueError."""
from __future__ import annotations

import os

MAGIC = b"GGUF"


def is_gguf(path) -> bool:
    """A regular file named *.gguf or starting with the GGUF magic."""
    if not os.path.isfile(path):
        return False
    if os.fspath(path).lower().endswith(".gguf"):
        return True
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def gguf_lines(path) -> list[str]:
    # gguf_file imports the gguf package (about 80 ms), needed only here.
    from ..io._gguf_reader import read_header
    from ..io.gguf_file import _BIAS_SUFFIX, _WEIGHT_SUFFIX, Q1_0, _open

    path = os.fspath(path)
    with _open(path) as f:
        try:
            header = read_header(f)
        except ValueError as e:
            raise ValueError(f"[info] {path!r} is not a readable GGUF file: {e}") from None
    by_name = {t.name: t for t in header.tensors}
    layers = {t.name.removesuffix(_WEIGHT_SUFFIX): t for t in header.tensors if t.ggml_type == Q1_0}
    biases = {by_name[n + _BIAS_SUFFIX].name: (n, t) for n, t in layers.items()
              if n + _BIAS_SUFFIX in by_name and by_name[n + _BIAS_SUFFIX].ggml_type != Q1_0}
    described = [_describe(t, biases) for t in header.tensors]
    refused = [text for text, kind in described if kind == "refused"]
    total = sum(t.nbytes for t in header.tensors)
    arch = header.metadata.get("general.architecture", "not named")
    out = [f"GGUF file {path}: version {header.version}, architecture {arch}, "
           f"{len(header.tensors)} tensors ({total / 2**20:.2f} MiB), "
           f"{len(header.metadata)} metadata keys"]
    if refused:
        out.append(f"load_gguf refuses this file: {len(refused)} tensors it cannot load (below)")
    else:
        count = {k: sum(kind == k for _, kind in described) for k in ("layer", "array")}
        out.append(f"load_gguf makes {count['layer']} 1-bit layers (the Q1_0 tensors) and "
                   f"{count['array']} arrays of it:")
    out += [f"  {text}" for text, _ in described]
    return out


def _describe(t, biases) -> tuple[str, str]:
    """One line on tensor ``t`` and what load_gguf makes of it: "layer",
    "bias" (of a layer), "array" or "refused"."""
    from ..io.gguf_file import _TYPED, _WEIGHT_SUFFIX, Q1_0

    kind = t.ggml_type.name
    shape = "x".join(map(str, reversed(t.ne)))  # NumPy order, outermost first
    if t.ggml_type == Q1_0:
        if len(t.ne) != 2:
            return (f"{t.name}: {kind} {shape}: cannot load (a layer is 2-D, this has "
                    f"{len(t.ne)} dimensions)"), "refused"
        name = t.name.removesuffix(_WEIGHT_SUFFIX)
        has_bias = any(layer == name for layer, _ in biases.values())
        return (f"{name}: layer {shape}, {kind} = 1-bit symmetric, group 128, float16 scales"
                + (", bias" if has_bias else "")), "layer"
    if t.name in biases:
        layer, weight = biases[t.name]
        if tuple(reversed(t.ne)) != (weight.ne[1],):
            return (f"{t.name}: {kind} {shape}: cannot load (as the bias of layer {layer!r} it "
                    f"must have shape ({weight.ne[1]},))"), "refused"
        return f"{t.name}: {kind} {shape}, the bias of layer {layer!r}", "bias"
    if t.ggml_type in _TYPED:
        return f"{t.name}: {kind} {shape}, an array of {_TYPED[t.ggml_type].name}", "array"
    if _dequantizable(t.ggml_type):
        return (f"{t.name}: {kind} {shape}, dequantized to a float32 array (GGUFQuantized, "
                "which keeps the stored bytes)"), "array"
    return (f"{t.name}: {kind} {shape}: cannot load (the gguf package cannot dequantize "
            "this type)"), "refused"


def _dequantizable(ggml_type) -> bool:
    from ..io._gguf_package import gguf

    traits = getattr(gguf.quants, "_type_traits", None)  # gguf-py's registry of its codecs
    return traits is None or ggml_type in traits
