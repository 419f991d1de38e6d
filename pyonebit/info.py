"""python -m pyonebit info: what this installation can run here."""
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
        f"CPU kernels: compiled {', '.join(cpu['compiled'])}; active: {cpu['active']}",
        f"threads: {pyonebit.get_num_threads()}",
        f"Metal: {metal_status()}",
        f"bits: {', '.join(map(str, pyonebit.supported_bits()))}; group sizes: "
        f"{', '.join(map(str, pyonebit.supported_group_sizes()))}",
    ]


def run(args) -> int:
    print("\n".join(lines()))
    return 0
