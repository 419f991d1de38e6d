"""python -m pyonebit info [CHECKPOINT]: what this installation can run here,
and with a checkpoint, what pyonebit makes of it: an MLX directory (what
load_mlx loads; a float one, what convert would quantize) or a GGUF file
(what load_gguf loads)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import pyonebit
from pyonebit import _core

from ..io._checkpoint_dir import read_config, safetensors_files, tensor_table
from .machine import cpu_model, numpy_line
from .gguf_info import gguf_lines, is_gguf


def metal_status() -> str:
    """One line on the Metal backend: usable, or why not."""
    backends = pyonebit.backends()
    emulated = ("; the same Metal kernels run on the CPU emulator as backend 'metal-emulated' "
                "(a correctness check, slow)" if "metal-emulated" in backends else "")
    if "metal" in backends:
        return "available (backend 'metal')"
    if pyonebit.metal_stats()["built"]:
        return "built, but no Metal device was found" + emulated
    return ("not built: Metal needs macOS on Apple silicon (this is "
            f"{platform.system()} {platform.machine()})" + emulated)


def metal_library_lines() -> list[str]:
    """What the Metal kernel library holds, one line per .metal family (loaded
    from a prebuilt metallib, compiled at run time, skipped, or failed, with
    Metal's language version and error); empty where Metal is not built."""
    if not pyonebit.metal_stats()["built"]:
        return []
    if "metal" in pyonebit.backends():
        _core._metal_load_library()  # loads (or compiles) it now, once per process
    lib = pyonebit.metal_stats()["library"]
    if not lib["loaded"]:
        return ["  kernels: not loaded (no usable Metal device)"]
    bfloat = "yes" if lib["bfloat_kernels"] else "no (needs macOS 14, Metal 3.1)"
    nax = "yes" if lib["nax_kernels"] else "no (needs macOS 26, Metal 4)"
    out = [f"  kernels on macOS {lib['os']}: bfloat16 {bfloat}; NAX (qmm_t_nax) {nax}"]
    if lib["metallib_error"]:
        out.append(f"  prebuilt metallib not used: {lib['metallib_error']}")
    for f in lib["families"]:
        if f["ok"]:
            how = "prebuilt metallib" if f["origin"] == "metallib" else "compiled"
            out.append(f"  {f['source']}: {how}, Metal {f['language']}")
        elif f["origin"] == "skipped":
            out.append(f"  {f['source']}: skipped: {f['error']}")
        else:
            error = " ".join(f["error"].split())  # Metal's text spans lines
            out.append(f"  {f['source']}: FAILED at Metal {f['language']} (its kernels are unavailable): "
                       f"{error}")
    return out


def lines() -> list[str]:
    cpu = pyonebit.cpu_kernels()
    return [
        f"pyonebit {pyonebit.__version__}",
        f"backends: {', '.join(pyonebit.backends())} (best first)",
        f"CPU: {cpu_model()} ({platform.machine()}); kernel variants it can run: "
        f"{', '.join(cpu['supported'])}",
        f"CPU kernels: compiled {', '.join(cpu['compiled'])}; active: {cpu['active']} "
        f"(1-bit layers stored in the {pyonebit.cpu_preferred_layout(1)} layout)",
        f"threads: {pyonebit.get_num_threads()}",
        f"Metal: {metal_status()}",
        *metal_library_lines(),
        f"bits: {', '.join(map(str, pyonebit.supported_bits()))}; group sizes: "
        f"{', '.join(map(str, pyonebit.supported_group_sizes()))}",
        numpy_line(),
    ]


def checkpoint_lines(path) -> list[str]:
    if is_gguf(path):
        return gguf_lines(path)
    if os.path.isdir(path) and not _claims_quantization(Path(path)):
        return float_checkpoint_lines(Path(path), *safetensors_files(Path(path), "info"),
                                      "not quantized (config.json has no 'quantization' section)")
    if _lone_safetensors_file(Path(path)):
        return float_checkpoint_lines(Path(path), [Path(path)], None,
                                      "a safetensors file without config.json beside it")
    ckpt = pyonebit.load_mlx(path)  # a file that is not GGUF gets load_mlx's "wants a directory"
    layer_bytes = sum(layer.nbytes for layer in ckpt.layers.values())
    other_bytes = sum(t.nbytes for t in ckpt.tensors.values())
    out = [f"checkpoint {path}: {len(ckpt.layers)} quantized layers "
           f"({layer_bytes / 2**20:.2f} MiB), {len(ckpt.tensors)} other tensors "
           f"({other_bytes / 2**20:.2f} MiB)"]
    for name, layer in ckpt.layers.items():
        out.append(f"  {name}: {layer.out_features}x{layer.in_features}, {layer.bits}-bit, group "
                   f"{layer.group_size}, {layer.mode}, {layer.scales.dtype} scales"
                   + (", bias" if layer.bias is not None else ""))
    return out


def _claims_quantization(directory: Path) -> bool:
    config = read_config(directory, "load_mlx")  # its errors are load_mlx's, as before
    return "quantization" in config or "quantization_config" in config


def _lone_safetensors_file(path: Path) -> bool:
    """A .safetensors file that is not part of a checkpoint directory (for one
    that is, load_mlx says to pass the directory)."""
    return (path.is_file() and path.suffix == ".safetensors"
            and not (path.parent / "config.json").exists())


def float_checkpoint_lines(source: Path, files, weight_map, what: str) -> list[str]:
    """What convert would take: the tensors, read from the headers, and the
    command that quantizes them."""
    table = tensor_table(files, weight_map, "info")
    dtypes = sorted({t.dtype for t in table.values()})
    total = sum(t.nbytes for t in table.values())
    return [f"checkpoint {source}: {what}: {len(table)} tensors ({total / 2**20:.2f} MiB), "
            f"{', '.join(dtypes)}",
            f"  to quantize it: python -m pyonebit convert {source} OUT "
            "(an MLX directory, or OUT.gguf for GGUF Q1_0; see python -m pyonebit convert --help)"]


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="describe a checkpoint: an MLX directory (quantized: what load_mlx "
                             "loads; float: what convert would quantize) or a GGUF file (what "
                             "load_gguf loads, from the header alone)")


def run(args) -> int:
    # The checkpoint is loaded first: a bad one prints only the error.
    described = checkpoint_lines(args.checkpoint) if args.checkpoint else []
    print("\n".join(lines() + described))
    return 0
