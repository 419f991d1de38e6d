"""Build of the pyonebit extension: the C++ core (include/, src/) plus the
Cython binding. The core's sources are globbed so this file never lists them."""
import glob
import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The "metal-emulated" backend: the Metal kernels compiled as C++ and run by
# the lockstep emulator (src/metal/emulator), so the shaders are tested on
# machines without a GPU. Its include directory provides <metal_stdlib>.
EMULATOR_SOURCES = sorted(glob.glob("src/metal/emulator/*.cpp") + glob.glob("src/metal/emulated_*.cpp"))
EMULATOR_INCLUDE = "src/metal/emulator/include"

# The planner (src/metal/*.cpp) is pure C++ and builds everywhere.
CORE_SOURCES = sorted(set(glob.glob("src/common/*.cpp") + glob.glob("src/cpu/*.cpp")
                          + glob.glob("src/metal/*.cpp")) - set(EMULATOR_SOURCES))

# -ffp-contract=off: the reference kernels and the quantizer define results bit
# for bit; an implicit multiply-add fusion would change them.
compile_args = ["-std=c++17", "-O3", "-ffp-contract=off", "-fvisibility=hidden",
                # MSL attributes ([[kernel]], [[buffer(0)]]) in the emulated kernels
                "-Wno-attributes"]
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
    metal_sources = sorted(glob.glob("src/metal/host/*.cpp"))  # the planner is core (every platform)
    metal_include_dirs = [fetch_metal_cpp.metal_cpp_dir(), generated]
    metal_macros = [("ONEBIT_WITH_METAL", "1")]
    metal_link_args = ["-framework", "Metal", "-framework", "Foundation", "-framework", "QuartzCore"]

# Where real Metal is built the emulator is not (it exists to stand in for
# Metal); everywhere else the "metal-emulated" backend runs the shaders.
if metal_sources:
    backend_sources, backend_include_dirs, backend_macros = metal_sources, metal_include_dirs, metal_macros
else:
    backend_sources = EMULATOR_SOURCES
    backend_include_dirs = [EMULATOR_INCLUDE]
    backend_macros = [("ONEBIT_WITH_METAL_EMULATOR", "1")]

# The emulated kernels include the Metal 4 tensor ops, whose descriptor is a
# class-type template argument: that one file is C++20 (GCC >= 10, clang >= 12).
CXX20_SOURCES = {os.path.normpath("src/metal/emulated_kernels.cpp")}


class BuildExt(build_ext):
    def build_extensions(self):
        compile_one = self.compiler._compile

        def compile_with_std(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if os.path.normpath(src) in CXX20_SOURCES:
                extra_postargs = [a for a in extra_postargs if not a.startswith("-std=")]
                extra_postargs += ["-std=c++20", "-Wno-volatile"]
            compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts)

        self.compiler._compile = compile_with_std
        super().build_extensions()


extension = Extension(
    "pyonebit._core",
    sources=["pyonebit/_core.pyx"] + CORE_SOURCES + backend_sources,
    include_dirs=["include", "src", "pyonebit", np.get_include()] + backend_include_dirs,
    language="c++",
    extra_compile_args=compile_args,
    extra_link_args=metal_link_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")] + backend_macros,
)

setup(ext_modules=cythonize([extension], language_level=3), cmdclass={"build_ext": BuildExt})
