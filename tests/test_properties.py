"""Property tests (hypothesis) over the public API: random shapes (0, 1,
primes), dtypes, byte orders, strided views, bit widths, group sizes, modes,
transposes, batch broadcasting and backends. Valid calls match the float64
model of the format; invalid ones raise ValueError/TypeError with an
"[op] ..." message; nothing crashes or hangs.

CI runs the bounded profile; for a long local run:
    HYPOTHESIS_PROFILE=long pytest tests/test_properties.py
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyonebit
from conftest import BF16, FLOAT_DTYPES, assert_matmul_close, w_hat64

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SIZES = st.sampled_from([0, 1, 2, 3, 5, 7, 13, 37])
GROUPS = st.sampled_from([0, 1, 2, 3, 5])
BATCHES = st.sampled_from([(), (1,), (2,), (3, 1), (1, 2)])


@st.composite
def specs(draw):
    bits = draw(st.sampled_from(pyonebit.supported_bits()))
    mode = draw(st.sampled_from(["affine", "symmetric"])) if bits == 1 else "affine"
    return bits, draw(st.sampled_from(pyonebit.supported_group_sizes())), mode


def presented(a, rng, how):
    """The same values as a strided view, a Fortran-order copy or a
    byte-swapped array (what callers may hand in)."""
    if how == "strided" and a.ndim:
        big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "swapped" and a.dtype != BF16:
        return a.astype(a.dtype.newbyteorder(">"))
    return a


def broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


@given(spec=specs(), dtype=st.sampled_from(FLOAT_DTYPES), free=SIZES, groups=GROUPS, M=SIZES,
       transpose=st.booleans(), xbatch=BATCHES, wbatch=BATCHES, vector=st.booleans(),
       how=st.sampled_from(["plain", "strided", "fortran", "swapped"]),
       backend=st.sampled_from(pyonebit.backends()), seed=st.integers(0, 2**32 - 1))
def test_valid_calls_match_the_model(spec, dtype, free, groups, M, transpose, xbatch, wbatch,
                                     vector, how, backend, seed):
    bits, gs, mode = spec
    rng = np.random.default_rng(seed)
    packed = groups * gs  # the grouped axis: K when transposed, N otherwise
    w = rng.standard_normal(wbatch + (free, packed)).astype(np.float32).astype(dtype)
    wq, s, b = pyonebit.quantize(presented(w, rng, how), group_size=gs, bits=bits, mode=mode)
    K = packed if transpose else free
    xshape = (K,) if vector else xbatch + (M, K)
    x = rng.standard_normal(xshape).astype(np.float32).astype(dtype)
    args = dict(transpose=transpose, group_size=gs, bits=bits, mode=mode, backend=backend)
    if not vector and not broadcastable(xbatch, wbatch):
        with pytest.raises(ValueError, match=r"^\[quantized_matmul\] batch dimensions"):
            pyonebit.quantized_matmul(x, wq, s, b, **args)
        return
    out = pyonebit.quantized_matmul(presented(x, rng, how), wq, s, b, **args)
    assert_matmul_close(out, x, w_hat64(wq, s, b, bits, gs, mode), transpose, np.dtype(dtype))


CORRUPTIONS = ["bits", "group_size", "x_dtype", "wq_dtype", "scales_shape", "biases", "x_k",
               "mode", "scales_dtype"]


@given(spec=specs(), corruption=st.sampled_from(CORRUPTIONS), free=st.sampled_from([1, 3, 8]),
       groups=st.sampled_from([1, 2]), backend=st.sampled_from(pyonebit.backends()))
def test_invalid_calls_raise_clear_errors(spec, corruption, free, groups, backend):
    bits, gs, mode = spec
    w = np.linspace(-1, 1, free * groups * gs, dtype=np.float32).reshape(free, groups * gs)
    wq, s, b = pyonebit.quantize(w, group_size=gs, bits=bits, mode=mode)
    x = np.ones((2, groups * gs), np.float32)
    kw = dict(group_size=gs, bits=bits, mode=mode, backend=backend)
    if corruption == "bits":
        kw["bits"] = 7
    elif corruption == "group_size":
        kw["group_size"] = 48
    elif corruption == "x_dtype":
        x = x.astype(np.int32)
    elif corruption == "wq_dtype":
        wq = wq.astype(np.int64)
    elif corruption == "scales_shape":
        s = s[:, :0]
    elif corruption == "biases":
        b = np.zeros_like(s) if mode == "symmetric" else None
    elif corruption == "x_k":
        x = np.ones((2, groups * gs + 1), np.float32)
    elif corruption == "mode":
        kw["mode"] = "nf4"
    elif corruption == "scales_dtype":
        s = s.astype(np.float64)
    with pytest.raises((ValueError, TypeError), match=r"^\[quantized_matmul\] "):
        pyonebit.quantized_matmul(x, wq, s, b, **kw)
