"""Build of the pyonebit extension: the C++ core (include/, src/) plus the
Cython binding. The core's sources are globbed so this file never lists them."""
import glob
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE_SOURCES = sorted(glob.glob("src/common/*.cpp") + glob.glob("src/cpu/*.cpp")
                      + glob.glob("src/metal/*.cpp"))

# The "metal-emulated" backend: the Metal kernels compiled as C++ and run by
# the lockstep emulator (src/metal/emulator), so the shaders are tested on
# machines without a GPU. Its include directory provides <metal_stdlib>.
EMULATOR_SOURCES = sorted(glob.glob("src/metal/emulator/*.cpp"))
EMULATOR_INCLUDE = "src/metal/emulator/include"

# -ffp-contract=off: the reference kernels and the quantizer define results bit
# for bit; an implicit multiply-add fusion would change them.
compile_args = ["-std=c++17", "-O3", "-ffp-contract=off", "-fvisibility=hidden",
                # MSL attributes ([[kernel]], [[buffer(0)]]) in the emulated kernels
                "-Wno-attributes"]
if sys.platform == "darwin":
    compile_args += ["-mmacosx-version-min=11.0"]

extension = Extension(
    "pyonebit._core",
    sources=["pyonebit/_core.pyx"] + CORE_SOURCES + EMULATOR_SOURCES,
    include_dirs=["include", "src", "pyonebit", EMULATOR_INCLUDE, np.get_include()],
    language="c++",
    extra_compile_args=compile_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
                   ("ONEBIT_WITH_METAL_EMULATOR", "1")],
)

setup(ext_modules=cythonize([extension], language_level=3))
