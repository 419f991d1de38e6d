"""Build of the pyonebit extension: the C++ core (include/, src/) plus the
Cython binding. The sources come from build_tools/sources.py (globbed there,
shared with the tests' native builds), so this file never lists them."""
import glob
import itertools
import os
import platform
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, "build_tools")
import cuda_build  # noqa: E402
import sources as source_lists  # noqa: E402

# The Metal planner is pure C++ and part of every build; the emulated_*
# sources are the "metal-emulated" backend, added below to builds without Metal.
CORE_SOURCES = source_lists.core_sources()

# -ffp-contract=off: the reference kernels and the quantizer define results bit
# for bit; an implicit multiply-add fusion would change them. -g0 overrides
# the -g of Python's own CFLAGS: debug info was ~40% of the compile time and
# 27 of the module's 30 MB (PYONEBIT_DEBUG_INFO=1 keeps it, for a debugger).
compile_args = ["-std=c++17", "-O3", "-ffp-contract=off", "-fvisibility=hidden"]
if os.environ.get("PYONEBIT_DEBUG_INFO") != "1":
    compile_args.append("-g0")
if sys.platform == "darwin":
    compile_args += ["-mmacosx-version-min=11.0"]

# ---------------------------------------------------------------- Metal
# macOS on Apple silicon only; other builds are unchanged. The host code uses
# metal-cpp (METAL_CPP_DIR, else fetched into a user cache; never vendored).
# The kernels are embedded in a generated header, plus a metallib when the
# `xcrun metal` toolchain works (src/metal/host/embed_kernels.py).
metal_sources, metal_include_dirs, metal_macros, metal_link_args = [], [], [], []
if sys.platform == "darwin" and platform.machine() == "arm64":
    sys.path.insert(0, os.path.join("src", "metal", "host"))
    import embed_kernels
    import fetch_metal_cpp

    generated = os.path.join("build", "generated")
    kernels = embed_kernels.kernel_sources(os.path.join("src", "metal", "kernels"), ["src", "include"], ".")
    embed_kernels.write_header(os.path.join(generated, "onebit_metal_sources.h"), kernels,
                               embed_kernels.build_metallib(kernels))
    metal_sources = source_lists.metal_host_sources()  # the planner is core (every platform)
    metal_include_dirs = [fetch_metal_cpp.metal_cpp_dir(), generated]
    metal_macros = [("ONEBIT_WITH_METAL", "1")]
    metal_link_args = ["-framework", "Metal", "-framework", "Foundation", "-framework", "QuartzCore"]

# ---------------------------------------------------------------- Metal emulator
# Elsewhere: the "metal-emulated" backend runs the same kernel sources on the
# CPU (src/metal/emulator), so the shaders are tested without a GPU. Its
# include directory provides <metal_stdlib>; the kernels carry MSL attributes
# ([[kernel]], [[buffer(0)]]) that GCC warns about.
if not metal_sources:
    metal_sources = source_lists.emulator_sources()
    metal_include_dirs = ["src/metal/emulator/include"]
    metal_macros = [("ONEBIT_WITH_METAL_EMULATOR", "1")]
    compile_args += ["-Wno-attributes"]

# The emulated kernels include the Metal 4 tensor ops, whose descriptor is a
# class-type template argument: those files are C++20 (GCC >= 10, clang >= 12).
CXX20_SOURCES = set(source_lists.emulated_kernel_sources())


# -fno-tree-ter (GCC only): else GCC spills the lookup kernel's accumulators (docs/performance.md, build flags).
def gcc_only_args(compiler):
    name = os.path.basename(compiler.compiler_so[0])
    return [] if sys.platform == "darwin" or "clang" in name else ["-fno-tree-ter"]


def compile_jobs(parallel):
    """Sources compiled at once: build_ext's -j N, else PYONEBIT_BUILD_JOBS, else every core."""
    if parallel:
        return int(parallel)
    return int(os.environ.get("PYONEBIT_BUILD_JOBS", 0)) or os.cpu_count() or 1


def compile_in_parallel(compiler, jobs):
    """distutils compiles an extension's sources one by one (build_ext -j only
    builds whole extensions side by side); this compiles them on ``jobs``
    threads, each running its own compiler process, and prints each one done."""
    def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                extra_preargs=None, extra_postargs=None, depends=None):
        macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)
        todo = [(obj, *build[obj]) for obj in objects if obj in build]
        # The C++20 sources (the emulated kernels) take longest: started first, not last with a core idle.
        todo.sort(key=lambda job: os.path.normpath(job[1]) not in CXX20_SOURCES)
        done = itertools.count(1)
        lock = threading.Lock()

        def one(job):
            obj, src, ext = job
            compiler._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)
            with lock:
                print(f"pyonebit: compiled [{next(done)}/{len(todo)}] {src}", flush=True)

        with ThreadPoolExecutor(max(1, min(jobs, len(todo)))) as pool:
            list(pool.map(one, todo))  # list(): re-raises the first compile error
        return objects

    compiler.compile = compile


class BuildExt(build_ext):
    def build_extensions(self):
        for ext in self.extensions:
            ext.extra_compile_args = ext.extra_compile_args + gcc_only_args(self.compiler)
        compile_one = self.compiler._compile

        def compile_with_std(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if os.path.normpath(src) in CXX20_SOURCES:
                # The emulated Metal kernels (a checking tool, never a fast path) at -O1: at -O3
                # they were half the extension's compile; -O1 takes a third of that, and their
                # tests run ~10% longer (docs/testing.md).
                extra_postargs = [a for a in extra_postargs if not a.startswith("-std=")]
                extra_postargs += ["-std=c++20", "-Wno-volatile", "-O1"]
            compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = compile_with_std
        if self.compiler.compiler_type == "unix":  # MSVC's compile() has no per-source _compile
            jobs = compile_jobs(self.parallel)
            print(f"pyonebit: compiling the extension's sources on {jobs} threads", flush=True)
            compile_in_parallel(self.compiler, jobs)
            self.parallel = None  # the sources, not the extensions, run side by side
        super().build_extensions()


# Where the toolchain links libstdc++ statically (the CUDA machines' GCC 13), its symbols
# stay inside the module: exported, std::ostream crashed in the plan (docs/cuda.md).
link_args = ["-Wl,--exclude-libs,ALL"] if sys.platform.startswith("linux") else []

# Headers the sources include (the kernel templates live in headers): a change
# to one rebuilds the extension.
HEADERS = sorted(glob.glob("include/**/*.h", recursive=True) + glob.glob("src/**/*.h", recursive=True)
                 + glob.glob("src/**/*.metal", recursive=True)
                 + glob.glob("pyonebit/*.h") + glob.glob("pyonebit/*.pxd"))

extension = Extension(
    "pyonebit._core",
    sources=["pyonebit/_core.pyx"] + CORE_SOURCES + metal_sources,
    depends=HEADERS,
    include_dirs=["include", "src", "pyonebit", np.get_include()] + metal_include_dirs,
    language="c++",
    extra_compile_args=compile_args,
    extra_link_args=metal_link_args + link_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")] + metal_macros,
)

# ---------------------------------------------------------------- CUDA
# A separate module, pyonebit._cuda, only where nvcc exists (build_tools/cuda_build.py).
setup(ext_modules=cythonize([extension] + cuda_build.extensions(), language_level=3),
      cmdclass={"build_ext": cuda_build.with_cuda(BuildExt)})
