"""python -m pyonebit convert IN OUT: quantize a float safetensors checkpoint
into an MLX-format quantized checkpoint (or, for an OUT ending in .gguf, a
GGUF file of Q1_0 tensors: :mod:`pyonebit.io.convert_gguf`).

IN is a directory (config.json and *.safetensors, sharded or not) or a single
.safetensors file; tensors may be float32, float16 or bfloat16.

What is quantized: every 2-D tensor named ``*.weight`` whose last dimension is
a multiple of the group size (the rule mlx-lm applies to the layers it
quantizes; embeddings included). Everything else (1-D norms and biases,
convolutions, other names, weights whose width is not a multiple of the group
size) is copied byte for byte. A quantized ``<p>.weight`` of shape (N, K)
becomes ``<p>.weight`` uint32 (N, K*bits/32) and ``<p>.scales`` and
``<p>.biases`` (N, K/group_size) in the weight's dtype, exactly as
``mlx.core.quantize`` makes them. ``--mode symmetric`` is pyonebit's own 1-bit
format (no biases): ``pyonebit.load_mlx`` reads it, MLX cannot.

OUT gets one weight file per input file, named as mlx-lm names them
(model.safetensors, or model-0000i-of-0000n.safetensors and an index), and
config.json: IN's config plus "quantization" and its copy
"quantization_config" = {"group_size", "bits"} (and "mode" when symmetric).
Everything is written into a new directory beside OUT and renamed to OUT at
the end, so OUT appears complete or not at all; a failed or interrupted run
(an error, SIGINT, SIGTERM) removes what it wrote, including the parents of
OUT it created. The other files at the top of IN (tokenizer.json,
generation_config.json, ...) are copied as they are, so OUT runs like IN;
subdirectories are not copied, nor are symlinks whose target lies outside IN
(their contents were never part of the checkpoint; the command names them).

Memory: tensors are read, quantized and written one at a time. The output
file's header is computed first from the input's shapes and dtypes, so a
streaming writer puts each tensor at its final place as soon as it exists;
peak memory is about one input tensor plus its quantized form.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

import pyonebit

from ._atomic import staging_dir
from ._checkpoint_dir import INDEX_NAME, read_config, safetensors_files, tensor_table
from .convert_gguf import convert_to_gguf
from .mlx_save import WEIGHTS_NAME, check_new_directory, quantization_entry, write_config
from ._safetensors import DTYPES, StreamingWriter, TensorInfo, read_tensor

QUANTIZABLE_DTYPES = ("F32", "F16", "BF16")


@dataclass
class ConvertSummary:
    bytes_before: int
    bytes_after: int
    quantized: int  # tensors quantized
    kept: int  # tensors copied unchanged
    files: list[str]  # written, relative to OUT
    skipped: list[str] = field(default_factory=list)  # IN's symlinks to files outside IN, not copied

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else float("inf")


def default_mode(dst) -> str:
    """The mode when none is given: symmetric for a .gguf OUT (Q1_0), else MLX's affine."""
    return "symmetric" if _is_gguf(dst) else "affine"


def _is_gguf(dst) -> bool:
    return Path(dst).suffix.lower() == ".gguf"


def convert_checkpoint(src, dst, *, bits: int = 1, group_size: int = 128, mode: str | None = None,
                       progress: bool = False) -> ConvertSummary:
    """Quantize checkpoint ``src`` into the new directory ``dst``, or the new
    GGUF file ``dst`` when it ends in ``.gguf`` (:mod:`pyonebit.io.convert_gguf`;
    see the module docstrings for the rules). ``mode`` defaults to
    :func:`default_mode`. Returns what was done."""
    mode = default_mode(dst) if mode is None else mode
    config, files, weight_map = _read_input(Path(src))
    if "quantization" in config or "quantization_config" in config:
        raise ValueError(f"[convert] {src}: config.json already has a quantization section "
                         f"(convert reads float checkpoints)")
    # A one-group call runs the library's own checks of bits, group_size and mode.
    pyonebit.quantize(np.zeros((1, group_size), np.float32), group_size, bits, mode)
    if _is_gguf(dst):
        before, after, quantized, kept = convert_to_gguf(
            Path(src), Path(dst), config, files, weight_map,
            lambda info: _should_quantize(info, group_size), bits=bits, group_size=group_size,
            mode=mode)
        return ConvertSummary(before, after, quantized, kept, [Path(dst).name])
    table = tensor_table(files, weight_map, "convert")
    plan = {name: _should_quantize(info, group_size) for name, info in table.items()}
    if not any(plan.values()):
        raise ValueError(f"[convert] {src}: nothing to quantize: no 2-D *.weight tensor has a last "
                         f"dimension that is a multiple of group_size={group_size}")
    by_file = [[i for i in table.values() if i.path == os.fspath(f)] for f in files]
    specs_by_file = [_file_specs(infos, plan, table, bits, group_size, mode) for infos in by_file]
    dst = Path(dst)
    check_new_directory(dst, "convert")
    with staging_dir(dst) as tmp:
        summary = _write_weights(tmp, by_file, specs_by_file, plan, bits, group_size, mode,
                                 progress)
        copied, summary.skipped = _copy_other_files(Path(src), tmp, summary.files)
        summary.files += copied
        write_config(tmp, config, quantization_entry(group_size, bits, mode))
        summary.files.append("config.json")
    return summary


def _write_weights(dst, by_file, specs_by_file, plan, bits, group_size, mode, progress
                   ) -> ConvertSummary:
    out_names = _output_names(len(by_file))
    summary = ConvertSummary(0, 0, 0, 0, [])
    out_map = {}
    bar = tqdm(total=sum(i.nbytes for infos in by_file for i in infos), desc="convert", unit="B",
               unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=not progress)
    with bar:
        for infos, specs, out_name in zip(by_file, specs_by_file, out_names):
            with StreamingWriter(dst / out_name, specs, {"format": "mlx"}) as writer:
                for info in infos:
                    summary.bytes_after += _convert_tensor(writer, info, plan[info.name], bits,
                                                           group_size, mode)
                    summary.bytes_before += info.nbytes
                    summary.quantized += plan[info.name]
                    summary.kept += not plan[info.name]
                    bar.update(info.nbytes)
            out_map.update(dict.fromkeys(specs, out_name))
            summary.files.append(out_name)
    if len(out_names) > 1:
        index = {"metadata": {"total_size": summary.bytes_after},
                 "weight_map": dict(sorted(out_map.items()))}
        (dst / INDEX_NAME).write_text(json.dumps(index, indent=2))
        summary.files.append(INDEX_NAME)
    return summary


def _read_input(src: Path) -> tuple[dict, list[Path], dict | None]:
    if src.exists() and not (src.is_file() or src.is_dir()):  # a FIFO would block the read
        raise ValueError(f"[convert] {src} is not a regular file or a directory")
    if src.is_file():
        if src.suffix != ".safetensors":
            raise ValueError(f"[convert] {src}: expected a directory or a .safetensors file")
        return {}, [src], None
    if not src.is_dir():
        raise FileNotFoundError(f"[convert] {src}: no such file or directory")
    return (read_config(src, "convert"), *safetensors_files(src, "convert"))


def _copy_other_files(src: Path, dst: Path, written: list[str]) -> tuple[list[str], list[str]]:
    """Copy IN's top-level files that are not weights or config (the
    tokenizer and friends). A symlink whose target lies outside IN is
    skipped, not copied: OUT is often shared, and the link's target (say
    ~/.netrc) was never part of the checkpoint. Returns (copied, skipped)."""
    if not src.is_dir():
        return [], []
    skip = {"config.json", INDEX_NAME, *written}
    root = src.resolve()
    copied, skipped = [], []
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.suffix == ".safetensors" or f.name in skip:
            continue
        if f.is_symlink() and not f.resolve().is_relative_to(root):
            skipped.append(f.name)
            continue
        shutil.copyfile(f, dst / f.name)
        copied.append(f.name)
    return copied, skipped


def _output_names(n_files: int) -> list[str]:
    if n_files == 1:
        return [WEIGHTS_NAME]
    return [f"model-{i:05d}-of-{n_files:05d}.safetensors" for i in range(1, n_files + 1)]


def _should_quantize(info: TensorInfo, group_size: int) -> bool:
    if not (info.name.endswith(".weight") and len(info.shape) == 2
            and info.shape[1] % group_size == 0):
        return False
    if info.dtype not in QUANTIZABLE_DTYPES:
        raise ValueError(f"[convert] tensor {info.name!r} in {info.path} has dtype {info.dtype}; "
                         f"weights to quantize must be {', '.join(QUANTIZABLE_DTYPES)}")
    return True


def _prefix(name: str) -> str:
    return name[: -len(".weight")]


def _file_specs(infos, plan, table, bits, group_size, mode) -> dict:
    """name -> (dtype, shape) of everything written for one input file."""
    specs: dict = {}
    for info in infos:
        new = _output_specs(info, plan[info.name], bits, group_size, mode)
        for name in new.keys() & (specs.keys() | table.keys() - {info.name}):
            raise ValueError(f"[convert] quantizing {info.name!r} would write {name!r}, "
                             f"which the checkpoint already has")
        specs.update(new)
    return specs


def _output_specs(info: TensorInfo, quantize: bool, bits: int, group_size: int, mode: str) -> dict:
    dtype = DTYPES.get(info.dtype)
    if dtype is None:
        raise ValueError(f"[convert] tensor {info.name!r} in {info.path} has dtype {info.dtype}, "
                         f"which pyonebit cannot read")
    if not quantize:
        return {info.name: (dtype, info.shape)}
    n, k = info.shape
    p = _prefix(info.name)
    specs = {f"{p}.weight": (np.uint32, (n, k * bits // 32)),
             f"{p}.scales": (dtype, (n, k // group_size))}
    if mode == "affine":
        specs[f"{p}.biases"] = (dtype, (n, k // group_size))
    return specs


def _convert_tensor(writer, info: TensorInfo, quantize: bool, bits: int, group_size: int,
                    mode: str) -> int:
    """Reads one input tensor and writes what it becomes; returns the bytes
    written. Its arrays die on return, before the next tensor is read."""
    w = read_tensor(info)
    if not quantize:
        writer.write(info.name, w)
        return w.nbytes
    try:
        wq, scales, biases = pyonebit.quantize(w, group_size, bits, mode)
    except ValueError as e:
        raise ValueError(f"[convert] tensor {info.name!r}: {e}") from None
    p = _prefix(info.name)
    writer.write(f"{p}.weight", wq)
    writer.write(f"{p}.scales", scales)
    if biases is not None:
        writer.write(f"{p}.biases", biases)
    return wq.nbytes + scales.nbytes + (biases.nbytes if biases is not None else 0)
