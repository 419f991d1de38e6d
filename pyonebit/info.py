"""python -m pyonebit info [CHECKPOINT]: what this installation can run here,
and with a checkpoint directory, what load_mlx makes of it."""
from __future__ import annotations

import platform

import pyonebit


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


def lines() -> list[str]:
    cpu = pyonebit.cpu_kernels()
    return [
        f"pyonebit {pyonebit.__version__}",
        f"backends: {', '.join(pyonebit.backends())} (best first)",
        f"CPU: {platform.machine()}; kernel variants it can run: {', '.join(cpu['supported'])}",
        f"CPU kernels: compiled {', '.join(cpu['compiled'])}; active: {cpu['active']} "
        f"(1-bit layers stored in the {pyonebit.cpu_preferred_layout(1)} layout)",
        f"threads: {pyonebit.get_num_threads()}",
        f"Metal: {metal_status()}",
        f"bits: {', '.join(map(str, pyonebit.supported_bits()))}; group sizes: "
        f"{', '.join(map(str, pyonebit.supported_group_sizes()))}",
    ]


def checkpoint_lines(path) -> list[str]:
    ckpt = pyonebit.load_mlx(path)
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


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="an MLX quantized checkpoint directory to describe (load_mlx)")


def run(args) -> int:
    # The checkpoint is loaded first: a bad one prints only the error.
    described = checkpoint_lines(args.checkpoint) if args.checkpoint else []
    print("\n".join(lines() + described))
    return 0
