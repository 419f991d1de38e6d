"""NAX (qmm_t_nax, Metal 4 tensor ops): planner rules and the PYONEBIT_NAX
override, and every NAX kernel (bits x group size x dtype x mode, ragged M
and N, batches) run on the emulator against the float64 model of the format.
No M5 GPU here: the emulator runs the same kernel source, with the tensor op's
documented semantics (see src/metal/emulator/msl_tensor.h)."""
import numpy as np
import pytest

import pyonebit
from pyonebit._testing import metal_plan
from conftest import BF16, BITS, GROUP_SIZES, assert_matmul_close, dtype_id, w_hat64

EMULATED = "metal-emulated" in pyonebit.backends()
NAX_DTYPES = [np.dtype(np.float16), BF16]


def plan(M, N=64, K=128, transpose=True, dtype=np.float16, nax=False):
    rows, packed = (N, K) if transpose else (K, N)
    wq = np.zeros((rows, packed // 32), np.uint32)
    s = np.zeros((rows, packed // 32), dtype)
    x = np.zeros((M, K), dtype)
    return metal_plan(x, wq, s, s.copy(), transpose=transpose, group_size=32,
                       caps={"nax": nax})["kernel"]


@pytest.mark.parametrize("policy, nax, M, expected", [
    ("auto", True, 32, "qmm_t_nax"),   # a NAX device, a full tile of rows
    ("auto", True, 31, "qmm_t"),       # fewer rows than a tile: simdgroup matrices
    ("auto", False, 512, "qmm_t"),     # no NAX on the device
    ("", True, 64, "qmm_t_nax"),       # unset means auto
    ("on", False, 2, "qmm_t_nax"),     # forced, whatever the device says
    ("off", True, 512, "qmm_t"),
    ("on", False, 1, "qmv_quad"),      # M = 1 stays on the vector kernels
])
def test_routing(monkeypatch, policy, nax, M, expected):
    monkeypatch.setenv("PYONEBIT_NAX", policy)
    assert plan(M, nax=nax).startswith(expected + "_float16")


def test_no_nax_for_float32_or_untransposed(monkeypatch):
    # float32 activations would be rounded by the half/bfloat tensor op, and
    # transpose=False groups run along N (kernels/qmm_nax.h): forcing NAX
    # leaves both on their exact simdgroup_matrix kernels.
    monkeypatch.setenv("PYONEBIT_NAX", "on")
    assert plan(64, dtype=np.float32).startswith("qmm_t_float32")
    assert plan(64, transpose=False).startswith("qmm_n_float16")


def test_bad_policy_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PYONEBIT_NAX", "yes")
    with pytest.raises(ValueError, match=r"PYONEBIT_NAX='yes' is not one of auto, on, off"):
        plan(64)


def test_geometry(monkeypatch):
    monkeypatch.setenv("PYONEBIT_NAX", "on")
    wq = np.zeros((70, 256 // 32), np.uint32)
    s = np.zeros((70, 256 // 128), np.float16)
    d = metal_plan(np.zeros((3, 40, 256), np.float16), wq, s, s.copy(), group_size=128)
    assert d["kernel"] == "qmm_t_nax_float16_gs_128_b_1"
    assert d["threadgroups"] == (3, 2, 3)  # ceil(70/32), ceil(40/32), batches
    assert d["threads"] == (128, 1, 1)
    # x tile and codes tile (32 x group, 2-byte T), row sums of x (32 floats)
    assert d["threadgroup_memory"] == [32 * 128 * 2, 32 * 128 * 2, 32 * 4]


needs_emulator = pytest.mark.skipif(not EMULATED, reason="real Metal build: no emulator")


@needs_emulator
@pytest.mark.parametrize("dtype", NAX_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_nax_kernels_match_the_model(monkeypatch, rng, bits, group_size, dtype):
    monkeypatch.setenv("PYONEBIT_NAX", "on")
    modes = ["affine", "symmetric"] if bits == 1 else ["affine"]
    # Ragged M and N (not multiples of the 32 x 32 tile), K of one and of
    # three groups, and a broadcast batch.
    for mode in modes:
        for M, N, K, xbatch, wbatch in [(33, 37, group_size, (), ()),
                                        (2, 5, 3 * group_size, (2, 1), (3,))]:
            w = rng.standard_normal(wbatch + (N, K)).astype(np.float32).astype(dtype)
            wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
            x = rng.standard_normal(xbatch + (M, K)).astype(np.float32).astype(dtype)
            with pyonebit.trace() as t:
                y = pyonebit.quantized_matmul(x, wq, s, b, group_size=group_size, bits=bits,
                                              mode=mode, backend="metal-emulated")
            suffix = "_sym" if mode == "symmetric" else ""
            assert t.kernels() == [f"qmm_t_nax_{dtype.name}_gs_{group_size}_b_{bits}{suffix}"]
            assert_matmul_close(y, x, w_hat64(wq, s, b, bits, group_size, mode), True, dtype)


@needs_emulator
def test_auto_uses_simdgroup_kernels_without_nax_hardware(monkeypatch, rng):
    monkeypatch.delenv("PYONEBIT_NAX", raising=False)
    w = rng.standard_normal((64, 128)).astype(np.float16)
    wq, s, b = pyonebit.quantize(w, group_size=64)
    with pyonebit.trace() as t:
        pyonebit.quantized_matmul(np.ones((64, 128), np.float16), wq, s, b, group_size=64,
                                  backend="metal-emulated")
    assert t.kernels() == ["qmm_t_float16_gs_64_b_1"]
