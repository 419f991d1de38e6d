"""Loading MLX quantized checkpoints (as written by mlx-lm or
``mlx.core.save_safetensors``) into pyonebit layers, without MLX.

The config's "quantization" section (mlx-lm also writes a copy named
"quantization_config") holds the global "group_size", "bits" and optional
"mode" (default "affine"), and per-layer entries keyed by the layer's path:
a dict of those keys, or false for a layer left in floating point. As in
mlx-lm, a layer without an entry is quantized exactly when ``<p>.scales``
exists, and a dict entry that omits a key gets MLX's default for its mode
(group size 64 and 4 bits for "affine"), not the global value.

A quantized layer ``<p>`` is ``<p>.weight`` (uint32), ``<p>.scales``, and
``<p>.biases`` in affine mode, plus an optional floating ``<p>.bias``.
"""
from __future__ import annotations

import os
from typing import Any, NoReturn
from dataclasses import dataclass, field

import numpy as np

from .._core import supported_bits, supported_group_sizes
from ._checkpoint_dir import read_config, require_dir, safetensors_files, tensor_table
from ._safetensors import TensorInfo, read_tensor
from .._linear import QuantizedLinear

_FLOAT_DTYPES = ("F32", "F16", "BF16")
# Group size and bits a per-layer dict falls back to, per mode: MLX's own
# defaults (mlx.nn.QuantizedLinear) for "affine"; pyonebit's for "symmetric".
_MODE_DEFAULTS = {"affine": (64, 4), "symmetric": (128, 1)}


@dataclass(frozen=True)
class LayerQuantization:
    group_size: int
    bits: int
    mode: str

    def __str__(self):
        return f"bits={self.bits}, group_size={self.group_size}, mode={self.mode!r}"


@dataclass
class MLXCheckpoint:
    """A loaded checkpoint: ``layers`` (layer path -> QuantizedLinear; quantized
    embeddings are here too, as the matrix they are), ``tensors`` (every other
    tensor by name, e.g. norms and unquantized weights) and ``config`` (the
    parsed config.json)."""

    layers: dict[str, QuantizedLinear] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def __repr__(self):
        return (f"MLXCheckpoint({len(self.layers)} quantized layers, "
                f"{len(self.tensors)} other tensors)")


def load_mlx(path: str | os.PathLike, *, backend: str | None = None) -> MLXCheckpoint:
    """Load the MLX quantized checkpoint in directory ``path`` (config.json and
    one or more *.safetensors). ``backend`` is passed to every layer.

    Raises FileNotFoundError (with the path) for a missing directory, config
    or weights, and ValueError naming the tensor when a layer is not
    quantized as the config claims. The directory is untrusted: config
    values, the shard index and every file are checked before anything is
    read or allocated from them (:mod:`pyonebit.io._checkpoint_dir`, SECURITY.md),
    and a bad one is a ValueError naming the file or field.
    """
    directory = require_dir(path, "load_mlx")
    config = read_config(directory, "load_mlx")
    section = quantization_section(config)
    table = tensor_table(*safetensors_files(directory, "load_mlx"), "load_mlx")
    specs = {p: layer_quantization(section, p) for p in _claimed_layers(section, table)}
    # Every claim is checked against the tensor headers before any tensor is read.
    parts, quantized = {}, {}
    for p, spec in specs.items():
        if spec is not None:
            quantized[p] = spec
            parts[p] = _check_layer(p, spec, table)
        elif f"{p}.scales" in table:
            raise ValueError(f"[load_mlx] {p}.scales exists but config.json marks layer "
                             f"{p!r} as not quantized (false)")
    _check_in_features(config, quantized, parts)
    checkpoint = MLXCheckpoint(config=config)
    for p, layer_parts in parts.items():
        spec = quantized[p]
        arrays = {k: read_tensor(info) for k, info in layer_parts.items()}
        try:
            checkpoint.layers[p] = QuantizedLinear(
                arrays["weight"], arrays["scales"], arrays.get("biases"), arrays.get("bias"),
                group_size=spec.group_size, bits=spec.bits, mode=spec.mode, backend=backend)
        except (ValueError, TypeError) as e:
            raise type(e)(f"[load_mlx] layer {p!r} ({spec}): {e}") from None
        for info in layer_parts.values():
            del table[info.name]
    for name, info in table.items():
        checkpoint.tensors[name] = read_tensor(info)
    return checkpoint


def quantization_section(config: dict) -> dict:
    """config["quantization"], else config["quantization_config"], checked."""
    key = "quantization" if "quantization" in config else "quantization_config"
    section = config.get(key)
    if section is None:
        raise ValueError("[load_mlx] config.json has no 'quantization' (or 'quantization_config') "
                         "section: not an MLX quantized checkpoint")
    if not isinstance(section, dict):
        raise ValueError(f"[load_mlx] config.json {key!r} must be an object, got {section!r}")
    for k in ("group_size", "bits"):
        if not isinstance(section.get(k), int) or isinstance(section.get(k), bool):
            raise ValueError(f"[load_mlx] config.json {key!r} needs an integer {k!r}, "
                             f"got {section.get(k)!r}")
    return section


def layer_quantization(section: dict, path: str) -> LayerQuantization | None:
    """How layer ``path`` is quantized, or None when its entry is false;
    ValueError naming the field when a value is not one pyonebit supports."""
    entry = section.get(path, True)
    if entry is False:
        return None
    if entry is True:
        spec = LayerQuantization(section["group_size"], section["bits"],
                                 section.get("mode", "affine"))
    elif isinstance(entry, dict):
        mode = entry.get("mode", "affine")
        defaults: tuple[Any, Any] = _MODE_DEFAULTS.get(mode, (None, None)) if isinstance(mode, str) else (None, None)
        group_size, bits = defaults  # checked with the entry's own values by _check_spec
        spec = LayerQuantization(entry.get("group_size", group_size), entry.get("bits", bits), mode)
    else:
        raise ValueError(f"[load_mlx] config.json quantization entry for {path!r} must be an "
                         f"object or false, got {entry!r}")
    _check_spec(path, spec)
    return spec


def _check_spec(path: str, spec: LayerQuantization) -> None:
    # Before any arithmetic: a str "bits" times a huge group size is a
    # multi-gigabyte string, not an error.
    if not isinstance(spec.mode, str) or spec.mode not in _MODE_DEFAULTS:
        raise ValueError(f"[load_mlx] layer {path!r}: mode {spec.mode!r} is not supported "
                         f"(pyonebit reads {', '.join(map(repr, _MODE_DEFAULTS))})")
    for field, allowed in (("bits", supported_bits()), ("group_size", supported_group_sizes())):
        value = getattr(spec, field)
        if type(value) is not int or value not in allowed:
            raise ValueError(f"[load_mlx] config.json quantization {field!r} for layer {path!r} must be "
                             f"an integer in {allowed}, got {value!r}")


def _check_in_features(config: dict, specs: dict[str, LayerQuantization],
                       parts: dict[str, dict[str, TensorInfo]]) -> None:
    """Shapes fix only bits * group_size (``weight`` has K * bits / 32 columns,
    ``scales`` K / group_size), so a claim of 2 bits in groups of 64 fits
    arrays made at 1 bit in groups of 128 and would read every row at half its
    length. The model's declared width settles it: in a model some layer
    reads the hidden state (q_proj, gate_proj, lm_head, ...), so when no layer
    has in_features == hidden_size as claimed, but one would under another
    reading of the same arrays, the claim is refused. Without hidden_size in
    config.json the claim cannot be checked and is taken as it is."""
    hidden = {c["hidden_size"] for c in (config, config.get("text_config"))
              if isinstance(c, dict) and type(c.get("hidden_size")) is int}
    packed_bits = {p: layer["weight"].shape[1] * 32 for p, layer in parts.items()}
    if not hidden or any(packed_bits[p] // spec.bits in hidden for p, spec in specs.items()):
        return
    for p, spec in specs.items():
        for b in supported_bits():
            g = spec.bits * spec.group_size // b
            if (b * g == spec.bits * spec.group_size and g in supported_group_sizes()
                    and packed_bits[p] % b == 0 and packed_bits[p] // b in hidden):
                raise ValueError(
                    f"[load_mlx] config.json claims layer {p!r} is quantized with {spec}, but then no "
                    f"layer reads hidden_size={packed_bits[p] // b}; its arrays fit bits={b}, "
                    f"group_size={g} (in_features={packed_bits[p] // b}): not quantized as claimed")


def _claimed_layers(section: dict, table: dict[str, TensorInfo]) -> list[str]:
    """Layer paths that something says are quantized: a scales tensor, a
    uint32 weight, or a per-layer config entry."""
    paths = {n[: -len(".scales")] for n in table if n.endswith(".scales")}
    paths |= {n[: -len(".weight")] for n, i in table.items()
              if n.endswith(".weight") and i.dtype == "U32"}
    paths |= {k for k, v in section.items() if isinstance(v, dict) or v is False}
    return sorted(paths)


def _check_layer(p: str, spec: LayerQuantization, table: dict[str, TensorInfo]
                 ) -> dict[str, TensorInfo]:
    """The layer's tensors, after checking from their headers alone that
    they hold what ``spec`` claims."""
    def fail(what: str) -> NoReturn:
        raise ValueError(f"[load_mlx] {what}; config.json claims layer {p!r} is quantized "
                         f"with {spec}: not quantized as claimed")

    found = {k: table.get(f"{p}.{k}") for k in ("weight", "scales", "biases", "bias")}
    parts = {k: v for k, v in found.items() if v is not None}
    w, s, b = parts.get("weight"), parts.get("scales"), parts.get("biases")
    if w is None:
        fail(f"{p}.weight is missing")
    if s is None:
        fail(f"{p}.scales is missing (found {p}.weight {w.dtype} {w.shape})")
    if w.dtype != "U32":
        fail(f"{p}.weight has dtype {w.dtype}, expected U32")
    if s.dtype not in _FLOAT_DTYPES:
        fail(f"{p}.scales has dtype {s.dtype}, expected one of {', '.join(_FLOAT_DTYPES)}")
    if spec.mode == "affine":
        if b is None:
            fail(f"{p}.biases is missing (affine mode needs one bias per group)")
        if (b.dtype, b.shape) != (s.dtype, s.shape):
            fail(f"{p}.biases is {b.dtype} {b.shape} but {p}.scales is {s.dtype} {s.shape}")
    elif b is not None:
        fail(f"{p}.biases exists but mode {spec.mode!r} has no biases")
    if len(w.shape) != 2:
        raise ValueError(f"[load_mlx] {p}.weight has shape {w.shape}: pyonebit layers are 2-D "
                         f"matrices (stacked experts and other batched weights are not supported)")
    if len(s.shape) != 2 or s.shape[0] != w.shape[0]:
        fail(f"{p}.scales has shape {s.shape} but {p}.weight has shape {w.shape} "
             f"(expected {w.shape[0]} rows of groups)")
    if w.shape[1] * 32 != s.shape[1] * spec.group_size * spec.bits:
        fail(f"{p}.weight of shape {w.shape} packs {w.shape[1] * 32 / spec.bits:g} columns at "
             f"{spec.bits} bits, but {p}.scales of shape {s.shape} covers "
             f"{s.shape[1] * spec.group_size} columns in groups of {spec.group_size}")
    bias = parts.get("bias")
    if bias is not None and bias.dtype not in _FLOAT_DTYPES:
        fail(f"{p}.bias has dtype {bias.dtype}, expected one of {', '.join(_FLOAT_DTYPES)}")
    return parts
