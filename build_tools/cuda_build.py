"""Build of the optional CUDA extension pyonebit._cuda (src/cuda), used by setup.py.

Built only where a CUDA compiler is found (CUDA_HOME/bin/nvcc, else nvcc on
PATH), so CPU builds never need CUDA. PYONEBIT_CUDA=0 skips it, =1 makes a
missing compiler an error. PYONEBIT_CUDA_ARCHS lists the compute
capabilities to build machine code for (default "90": H100/H200), and PTX
for the last, so later GPUs compile it at load time.

PYONEBIT_CUDA_COMPILE_CHECK=1 is the compile check of machines without a GPU
(CI, .ci/run): nvcc's fastest device compile (--Ofast-compile=max, nvcc
12.8 or later: the optimizations of NVVM and ptxas that cost compile time off), no register
spill check. Every source and bit width still goes through nvcc's front end
(every kernel template instantiated), PTX generation and ptxas (inline PTX
assembled, shared memory sizes checked), so a compile error fails the build,
in a small fraction of the time (-Xcicc -O0 instead took 1.5x as long: ptxas
then assembles unoptimized PTX). Such a module loads, but its kernels are
unoptimized: never ship or time one.
"""
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension

CUDA_DIR = os.path.join("src", "cuda")
_nvcc_for = {}  # extension name -> the nvcc that compiles its .cu objects


def find_nvcc():
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
        return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def cuda_root(nvcc):
    """The toolkit directory (include/, lib64/) of nvcc, through wrapper scripts and links."""
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "empty.cu")
    out = subprocess.run([nvcc, "-dryrun", "-c", probe, "-o", os.devnull],
                         capture_output=True, text=True).stderr
    top = re.search(r"^#\$ _?TOP_?=(.*)$", out, re.M)  # nvcc's own view of its toolkit
    if top:
        return os.path.realpath(top.group(1).strip())
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))


def bit_widths():
    """The supported bit widths, from the format's one list (kernels.cu is compiled once per width)."""
    with open(os.path.join("src", "common", "format_values.h")) as f:
        text = f.read()
    body = re.search(r"#define ONEBIT_FOR_EACH_BITS\(X, \.\.\.\)(.*?)\n\n", text, re.S).group(1)
    return [int(b) for b in re.findall(r"X\(__VA_ARGS__, (\d+)\)", body)]


def compile_check_only():
    return os.environ.get("PYONEBIT_CUDA_COMPILE_CHECK") == "1"


def arch_flags():
    archs = [a.strip() for a in os.environ.get("PYONEBIT_CUDA_ARCHS", "90").split(";") if a.strip()]
    ptx = [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
    machine_code = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs] + ptx
    if compile_check_only():
        return machine_code + ["--Ofast-compile=max"]
    return machine_code + ["-Xptxas=-warn-spills"]


def extensions():
    """[Extension('pyonebit._cuda')] where nvcc exists (and PYONEBIT_CUDA is not 0), else []."""
    wanted = os.environ.get("PYONEBIT_CUDA", "auto")
    if wanted == "0":
        return []
    nvcc = find_nvcc()
    if nvcc is None:
        if wanted == "1":
            raise RuntimeError("PYONEBIT_CUDA=1 but no nvcc found (set CUDA_HOME or PATH)")
        return []
    root = cuda_root(nvcc)
    lib_dir = next((d for d in (os.path.join(root, "lib64"), os.path.join(root, "lib"))
                    if os.path.exists(os.path.join(d, "libcudart_static.a"))), None)
    if lib_dir is None:
        raise RuntimeError(f"nvcc found at {nvcc} but no libcudart_static.a under {root}")
    ext = Extension(
        "pyonebit._cuda",
        # The core's validation (src/common/plan.cpp) is compiled by compile_cuda_objects
        # into its own directory: _core's build writes the same source's object concurrently.
        sources=["pyonebit/_cuda.pyx"],
        depends=[os.path.join(CUDA_DIR, f) for f in os.listdir(CUDA_DIR)],
        include_dirs=["include", "src", "pyonebit", os.path.join(root, "include")],
        library_dirs=[lib_dir],
        # The static runtime: the module needs only the driver at run time.
        libraries=["cudart_static", "rt", "pthread", "dl"],
        language="c++",
        extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden"],
        # Where the toolchain links libstdc++ statically (the H100 machine's GCC 13), its
        # symbols stay inside the module: exported, the core's std::ostream crashed in the
        # plan (backtrace in docs/cuda.md); -Bsymbolic alone did not stop it.
        extra_link_args=["-Wl,-Bsymbolic", "-Wl,--exclude-libs,ALL"]
        if sys.platform.startswith("linux") else [],
    )
    _nvcc_for[ext.name] = nvcc  # cythonize() copies Extensions, so not an attribute
    return [ext]


def compile_cuda_objects(ext, build_temp, force=False):
    """Compiles src/cuda/*.cu (kernels.cu once per bit width, in parallel) and the
    core's plan.cpp with nvcc into build_temp, and adds the objects to ext's link line."""
    out_dir = os.path.join(build_temp, "cuda")
    os.makedirs(out_dir, exist_ok=True)
    flags = ["-std=c++17", "-O3", "-Xcompiler", "-fPIC,-fvisibility=hidden",
             "-Iinclude", "-Isrc", "-Werror=all-warnings"] + arch_flags()
    jobs = [(os.path.join(CUDA_DIR, "backend.cu"), os.path.join(out_dir, "backend.o"), []),
            (os.path.join("src", "common", "plan.cpp"), os.path.join(out_dir, "plan.o"), [])]
    jobs += [(os.path.join(CUDA_DIR, "kernels.cu"), os.path.join(out_dir, f"kernels_{b}bit.o"),
              [f"-DONEBIT_CUDA_BITS={b}"]) for b in bit_widths()]
    newest_input = max(os.path.getmtime(p) for p in ext.depends + [src for src, _, _ in jobs]
                       + [os.path.join("src", "common", "format_values.h")])

    def compile_one(job):
        src, obj, extra = job
        if force or not os.path.exists(obj) or os.path.getmtime(obj) < newest_input:
            cmd = [_nvcc_for[ext.name], *flags, *extra, "-c", src, "-o", obj]
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        return obj

    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        ext.extra_objects = list(pool.map(compile_one, jobs))


def with_cuda(build_ext_class):
    """build_ext_class, compiling the CUDA objects before it links pyonebit._cuda."""

    class BuildExtWithCuda(build_ext_class):
        def build_extension(self, ext):
            if ext.name in _nvcc_for:
                compile_cuda_objects(ext, self.build_temp, self.force)
            super().build_extension(ext)

    return BuildExtWithCuda
