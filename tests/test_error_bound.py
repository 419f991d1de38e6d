"""tests/native/isa_check.cpp allows the error bound of tests/error_bound.py,
the one every matmul comparison in Python uses: its `bound` mode prints the
bound for a few inputs, which must equal matmul_error_bound's."""
import numpy as np
import pytest

from error_bound import matmul_error_bound
from native_build import CXX, require, run_sanitized, sanitized_program


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_isa_check_uses_the_python_bound(native_builds, dtype):
    require(CXX, "the C++ compiler")
    exe = sanitized_program(native_builds, "isa_check.cpp")
    for K, sum_terms, ref in ((1, 0.0, 0.0), (37, 3.5, -1.25), (4096, 812.0, 17.0), (16384, 1e-3, 6e-6)):
        printed = float(run_sanitized([exe, "bound", str(K), repr(sum_terms), repr(ref), dtype]))
        assert printed == pytest.approx(float(matmul_error_bound(K, sum_terms, ref, np.dtype(dtype))), rel=1e-12)
