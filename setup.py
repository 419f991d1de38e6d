"""Build of the pyonebit extension: the C++ core (include/, src/) plus the
Cython binding. The core's sources are globbed so this file never lists them."""
import glob
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE_SOURCES = sorted(glob.glob("src/common/*.cpp") + glob.glob("src/cpu/*.cpp")
                      + glob.glob("src/metal/*.cpp"))

# -ffp-contract=off: the reference kernels and the quantizer define results bit
# for bit; an implicit multiply-add fusion would change them.
compile_args = ["-std=c++17", "-O3", "-ffp-contract=off", "-fvisibility=hidden"]
if sys.platform == "darwin":
    compile_args += ["-mmacosx-version-min=11.0"]

extension = Extension(
    "pyonebit._core",
    sources=["pyonebit/_core.pyx"] + CORE_SOURCES,
    include_dirs=["include", "src", "pyonebit", np.get_include()],
    language="c++",
    extra_compile_args=compile_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
)

setup(ext_modules=cythonize([extension], language_level=3))
