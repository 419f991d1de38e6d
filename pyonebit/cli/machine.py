"""Which machine a timing came from: the CPU model and the BLAS that NumPy's
dense baseline ran on, printed with every demo and bench table (a speed-up
means little without them)."""
from __future__ import annotations

import os
import platform
import subprocess

import numpy as np


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture;
    on x86 Linux with its family and model, since a VM's name is often just
    "AMD EPYC" (family 25 model 17 is Zen 4, model 1 Zen 3)."""
    try:
        with open("/proc/cpuinfo") as f:
            fields: dict[str, str] = {}
            for line in f:
                if not line.strip():
                    break  # the first CPU's block
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        fields = {}
    name = fields.get("model name") or fields.get("Model") or fields.get("Hardware")
    if name:
        if "cpu family" in fields and "model" in fields:
            name += f", family {fields['cpu family']} model {fields['model']}"
        return name
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.machine()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    return f"machine: {cpu_model()} ({platform.machine()}, {os.cpu_count()} logical CPUs)"


def numpy_blas() -> str:
    """NumPy's BLAS as loaded now (threadpoolctl: library, version, the kernel
    it picked for this CPU, threads), else as NumPy was built with it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        found = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if found:
            p = found[0]
            return (f"{p.get('internal_api')} {p.get('version')}, {p.get('architecture')} kernels, "
                    f"{p.get('num_threads')} threads ({p.get('threading_layer')})")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        built = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # NumPy < 1.25 has no dicts mode; its layout is not an API
        built = "unknown"
    return f"{built} (as built; pip install threadpoolctl to see the kernel and threads in use)"


def numpy_line() -> str:
    return f"NumPy {np.__version__}, BLAS: {numpy_blas()}"
