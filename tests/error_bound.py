"""The error bound every matmul comparison in the tests allows, in one place:
conftest.assert_matmul_close (against the float64 model), test_cpu_kernels.py
(each SIMD kernel against the scalar one) and tests/native/isa_check.cpp,
which gets these constants as -D flags (cpp_macros) and is checked against
matmul_error_bound by test_error_bound.py.

    |out - ref| <= 8 sqrt(K) 2^-24 sum_k |x_k w_hat_k| + ulp(out dtype) |ref| + floor

The kernels multiply the exact activations and accumulate in float32; only
the order of the additions differs. A float32 sum of K terms is off by
~sqrt(K) 2^-24 sum|terms| for terms of random sign (the rounding errors add
like a random walk; K 2^-24 sum|terms| at worst); the factor 8 also covers
the 1-bit kernels' (and the 2-bit table lookups') group algebra
sum_k w_hat_k x_k = A sum_k q_k x_k + C sum_k x_k (affine A = scale,
C = bias; symmetric A = 2 scale, C = -scale), whose terms are bounded by
|x_k| (q_max |A| + |C|) rather than |x_k w_hat_k|, within a small factor of
it for quantized real-valued weights (w_min < 0 < w_max); wider codes are
dequantized before the multiply. Then one unit in the last place of the
output dtype (results rounded to it from slightly different float32 values),
and an absolute floor: float16 results can be subnormal (units of 2^-24).
A single wrong weight bit moves a result by |A x_k|, far above the bound for
the sizes tested (test_cpu_kernels.py::test_one_wrong_bit_is_caught)."""
import numpy as np

ACCUMULATION_FACTOR = 8.0
FLOAT32_ROUNDOFF = 2.0**-24
OUTPUT_ULP = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
FLOOR = {"float32": 1e-30, "float16": 2.0**-24, "bfloat16": 1e-30}


def matmul_error_bound(K, sum_abs_terms, ref, out_dtype):
    """The allowed |out - ref| for each output: K the reduction length,
    sum_abs_terms = sum_k |x_k w_hat_k| per output, ref the reference result."""
    name = np.dtype(out_dtype).name
    return (ACCUMULATION_FACTOR * np.sqrt(max(K, 1)) * FLOAT32_ROUNDOFF * np.asarray(sum_abs_terms, np.float64)
            + OUTPUT_ULP[name] * np.abs(np.asarray(ref, np.float64)) + FLOOR[name])


def assert_within_bound(out, ref, K, sum_abs_terms):
    """Every output of out within matmul_error_bound of ref."""
    ref = np.asarray(ref, np.float64)
    tol = matmul_error_bound(K, sum_abs_terms, ref, out.dtype)
    err = np.abs(out.astype(np.float64) - ref)
    bad = err > tol
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} outputs off; worst err {err.max():.3g}, "
        f"tol there {tol.flat[np.argmax(err)]:.3g}")


def cpp_macros():
    """The constants as -D flags for tests/native/isa_check.cpp (float32 and float16 outputs)."""
    values = {"FACTOR": ACCUMULATION_FACTOR, "ROUNDOFF": FLOAT32_ROUNDOFF,
              "ULP_F32": OUTPUT_ULP["float32"], "ULP_F16": OUTPUT_ULP["float16"],
              "FLOOR_F32": FLOOR["float32"], "FLOOR_F16": FLOOR["float16"]}
    return [f"-DONEBIT_BOUND_{name}={value!r}" for name, value in values.items()]
