"""The Metal planner (src/metal/planner.cpp) on any machine: which kernel each
shape routes to, the grid and threadgroup geometry, buffer bindings, constant
bytes and threadgroup memory; and that every kernel name it can produce is
instantiated by the .metal sources (checked with the C preprocessor)."""
import glob
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

import pyonebit
from pyonebit._testing import metal_plan, metal_plan_dequantize, metal_plan_quantize
from conftest import BF16, BITS, FLOAT_DTYPES, GROUP_SIZES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "src", "metal", "kernels")
MATMUL_OPERANDS = ["wq", "scales", "biases", "x", "y", "bytes", "batch_shape", "batch_strides"]


def operands(bits, group_size, rows, packed, dtype=np.float32, batch=(), mode="affine"):
    """Zero-filled wq/scales/biases of W with `rows` packed rows of `packed` values."""
    wq = np.zeros(batch + (rows, packed * bits // 32), np.uint32)
    s = np.zeros(batch + (rows, packed // group_size), dtype)
    return wq, s, (None if mode == "symmetric" else s.copy())


def plan(M, N, K, transpose=True, bits=1, group_size=32, dtype=np.float32, xdtype=None,
         x_batch=(), w_batch=(), mode="affine", caps=None):
    rows, packed = (N, K) if transpose else (K, N)
    wq, s, b = operands(bits, group_size, rows, packed, dtype, w_batch, mode)
    x = np.zeros(x_batch + ((K,) if M is None else (M, K)), xdtype or dtype)
    return metal_plan(x, wq, s, b, transpose=transpose, group_size=group_size, bits=bits,
                       mode=mode, caps=caps)


def base(d):
    """The kernel template of a dispatch (or of a kernel name)."""
    name = d if isinstance(d, str) else d["kernel"]
    return name.split("_float")[0].split("_bfloat")[0]


def matmul_params(d):
    return struct.unpack("<4i", d["params"][5])


# ------------------------------------------------------------------ routing

@pytest.mark.parametrize("K", [64, 128])
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_small_k_routes_to_quad(K, bits):
    # Trap: K = 64 with 1 bit gives each quad lane 16 codes, half a word.
    for gs in (32, 64):
        if K % gs == 0:
            d = plan(1, 100, K, bits=bits, group_size=gs)
            assert base(d) == "qmv_quad"
            assert d["threads"] == (32, 2, 1)
            assert d["threadgroups"] == (2, 1, 1)  # 64 rows per threadgroup


def test_aligned_shapes_route_to_qmv_fast():
    # Trap: 1 bit, group 32: a lane's 64 values span two groups.
    d = plan(1, 8, 2048, bits=1, group_size=32)
    assert d["kernel"] == "qmv_fast_float32_gs_32_b_1"
    assert d["threadgroups"] == (1, 1, 1) and d["threads"] == (32, 2, 1)
    assert base(plan(1, 4096, 4096, bits=4, group_size=64)) == "qmv_fast"
    assert base(plan(1, 16, 1024, bits=2, group_size=128)) == "qmv_fast"


@pytest.mark.parametrize("N,K,bits", [
    (8, 1024, 1),    # 1 bit needs K % 2048: the tail of a lane's 64 values is past K
    (8, 3072, 1),    # a partial block at the end
    (8, 96, 2),      # K not a multiple of the block
    (9, 2048, 1),    # N not a multiple of 8 rows per threadgroup
    (4096, 11008, 1),  # the seed's ffn_down: K = 11008 is not a multiple of 2048
])
def test_unaligned_shapes_route_to_qmv(N, K, bits):
    d = plan(1, N, K, bits=bits, group_size=32)
    assert base(d) == "qmv"
    assert d["threadgroups"][0] == -(-N // 8)


def test_vector_matrix_routes_by_k():
    assert base(plan(1, 256, 512, transpose=False)) == "qvm"
    assert base(plan(1, 256, 1023, transpose=False)) == "qvm"
    d = plan(1, 256, 1024, transpose=False)
    assert base(d) == "qvm_split_k"
    assert d["threads"] == (256, 1, 1)
    assert d["threadgroups"] == (2, 1, 1)  # 128 columns per threadgroup
    assert d["threadgroup_memory"] == [8 * 128 * 4]
    d = plan(1, 96, 67, transpose=False)
    assert base(d) == "qvm" and d["threads"] == (32, 2, 1) and d["threadgroups"] == (1, 1, 1)
    assert d["threadgroup_memory"] == []


@pytest.mark.parametrize("M", [2, 5, 32, 33])
@pytest.mark.parametrize("transpose", [True, False])
def test_matrix_routes_to_qmm(M, transpose):
    # Trap: M smaller than the 32-row tile (M = 2, 5) and M = 33 (a second tile of 1 row).
    d = plan(M, 67 if transpose else 96, 128 if transpose else 67, transpose=transpose)
    assert base(d) == ("qmm_t" if transpose else "qmm_n")
    N = 67 if transpose else 96
    assert d["threadgroups"] == (-(-N // 32), -(-M // 32), 1)
    assert d["threads"] == (128, 1, 1)
    assert d["threadgroup_memory"] == [32 * 32 * 4] * 3


def test_one_dimensional_x_is_a_vector():
    assert base(plan(None, 8, 2048)) == "qmv_fast"
    assert base(plan(None, 256, 64, transpose=False)) == "qvm"


# ------------------------------------------------------------------ names, grid, bindings

@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_kernel_dtype_is_the_output_dtype(dtype):
    d = plan(1, 8, 2048, dtype=dtype)
    assert d["kernel"] == f"qmv_fast_{np.dtype(dtype).name}_gs_32_b_1"
    # Mixed dtypes promote to float32: the kernel runs in float32.
    d = plan(1, 8, 2048, dtype=dtype, xdtype=np.float32 if dtype != np.float32 else np.float16)
    assert d["kernel"] == "qmv_fast_float32_gs_32_b_1"


def test_symmetric_binds_scales_as_biases():
    d = plan(3, 40, 256, mode="symmetric", group_size=128)
    assert d["kernel"] == "qmm_t_float32_gs_128_b_1_sym"
    assert d["buffers"][2] == (2, "scales")


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("M", [1, 4])
def test_bindings_follow_the_abi(M, transpose):
    d = plan(M, 64, 96 if transpose else 64, transpose=transpose)
    assert d["buffers"] == list(enumerate(MATMUL_OPERANDS))
    N, K = (64, 96) if transpose else (64, 64)
    assert matmul_params(d) == (M, N, K, 1)


def test_batches_run_on_grid_z():
    d = plan(1, 8, 2048, x_batch=(3, 1), w_batch=(4,))
    assert d["threadgroups"][2] == 12
    assert matmul_params(d)[3] == 2  # batch dims (3, 4): shape and strides, not 12 offsets
    d = plan(5, 8, 64, x_batch=(2,), w_batch=(2,))
    assert d["threadgroups"][2] == 2


def test_empty_output_plans_no_threadgroups():
    assert 0 in plan(0, 8, 64)["threadgroups"]
    assert plan(1, 8, 2048, x_batch=(0,))["threadgroups"][2] == 0
    # K = 0 still runs: the kernels write zeros.
    assert 0 not in plan(1, 8, 0)["threadgroups"]


def test_device_caps_are_checked():
    with pytest.raises(ValueError, match="threadgroup memory"):
        plan(4, 64, 64, caps={"max_threadgroup_memory": 8192})
    with pytest.raises(ValueError, match="simdgroup width of 32"):
        plan(1, 8, 2048, caps={"simd_width": 64})
    with pytest.raises(ValueError, match="threads per threadgroup"):
        plan(1, 256, 2048, transpose=False, caps={"max_threads_per_threadgroup": 128})


# ------------------------------------------------------------------ quantize / dequantize

@pytest.mark.parametrize("mode", ["affine", "symmetric"])
def test_quantize_plan(mode):
    w = np.zeros((3, 5, 256), BF16)
    d = metal_plan_quantize(w, group_size=64, bits=1, mode=mode)
    assert d["kernel"] == "quantize_bfloat16_gs_64_b_1" + ("_sym" if mode == "symmetric" else "")
    assert d["threads"] == (256, 1, 1)
    assert d["threadgroups"] == (-(-15 * 4 // 8), 1, 1)  # 8 groups (simdgroups) per threadgroup
    assert d["buffers"] == [(0, "wq"), (1, "scales"),
                            (2, "scales" if mode == "symmetric" else "biases"), (3, "x"),
                            (4, "bytes")]
    assert struct.unpack("<2i", d["params"][4]) == (15, 256)


def test_dequantize_plan():
    wq, s, b = operands(4, 128, 7, 384, np.float16)
    d = metal_plan_dequantize(wq, s, b, group_size=128, bits=4)
    assert d["kernel"] == "dequantize_float16_gs_128_b_4"
    assert d["threads"] == (256, 1, 1)
    assert d["threadgroups"] == (-(-7 * 384 // 32 // 256), 1, 1)  # one pack of 32 per thread
    assert d["buffers"] == [(0, "wq"), (1, "scales"), (2, "biases"), (3, "y"), (4, "bytes")]
    assert struct.unpack("<2i", d["params"][4]) == (7, 384)


# ------------------------------------------------------------------ names vs. shaders

@pytest.fixture(scope="module")
def instantiate(tmp_path_factory):
    """Kernel names the .metal files instantiate, by expanding their
    instantiation hook with the C preprocessor (no MSL compiler needed), for
    the predefined macros of a Metal language version (__HAVE_BFLOAT__ from
    3.1 on). Files that need Metal 4 (qmm_nax.metal) are left out."""
    cpp = shutil.which("clang") or shutil.which("gcc") or shutil.which("cpp")
    if cpp is None:
        pytest.skip("no C preprocessor on PATH")
    stub = tmp_path_factory.mktemp("msl")
    (stub / "metal_stdlib").write_text("")

    def names_for(*defines):
        names = set()
        for path in glob.glob(os.path.join(KERNELS, "*.metal")):
            out = subprocess.run(
                [cpp, "-E", "-P", "-x", "c++", "-I", str(stub), *(f"-D{d}" for d in defines),
                 "-DONEBIT_INSTANTIATE_KERNEL(name,func,T,gs,bits,sym)=ONEBIT_KERNEL_NAME_IS name",
                 path], capture_output=True, text=True, check=True).stdout
            for part in out.split("ONEBIT_KERNEL_NAME_IS")[1:]:
                # Adjacent string literals: "qmv" "_" "float32" ... -> one name.
                literal = part.split(";")[0].split("template")[0].split("ONEBIT")[0]
                names.add("".join(p for p in literal.split('"')[1::2]))
        return names
    return names_for


@pytest.fixture(scope="module")
def instantiated_names(instantiate):
    """At Metal 3.1 (macOS 14): every dtype."""
    return instantiate("__HAVE_BFLOAT__=1")


def test_metal_3_0_has_no_bfloat_kernels_and_the_planner_knows(instantiate, instantiated_names):
    at_3_0 = instantiate()
    assert at_3_0 and not any("bfloat16" in n for n in at_3_0)
    assert at_3_0 == {n for n in instantiated_names if "bfloat16" not in n}
    # What the host tells the planner on macOS 13 (library.cpp probes the library).
    with pytest.raises(ValueError, match="bfloat16 on Metal needs"):
        plan(4, 64, 128, dtype=BF16, caps={"bfloat_kernels": False})
    assert plan(4, 64, 128, dtype=np.float16, caps={"bfloat_kernels": False})["kernel"] in at_3_0


def test_every_planned_kernel_is_instantiated(instantiated_names):
    planned = set()
    for dtype in FLOAT_DTYPES:
        for gs in GROUP_SIZES:
            for bits in BITS:
                modes = ["affine", "symmetric"] if bits == 1 else ["affine"]
                for mode in modes:
                    for M, N, K, tr in [(1, 8, 2048 * gs // 32, True), (1, 9, 4 * gs, True),
                                        (1, 9, 128, True), (1, 4 * gs, 64, False),
                                        (1, 4 * gs, 4096, False), (5, 33, 2 * gs, True),
                                        (5, 2 * gs, 7, False)]:
                        if tr and K % gs:
                            continue
                        d = plan(M, N, K, transpose=tr, bits=bits, group_size=gs, dtype=dtype,
                                 mode=mode)
                        planned.add(d["kernel"])
                    w = np.zeros((2, 4 * gs), dtype)
                    planned.add(metal_plan_quantize(w, gs, bits, mode)["kernel"])
                    wq, s, b = operands(bits, gs, 2, 4 * gs, dtype, mode=mode)
                    planned.add(metal_plan_dequantize(wq, s, b, gs, bits, mode)["kernel"])
    bases = {base(name) for name in planned}
    assert bases == {"qmv_quad", "qmv_fast", "qmv", "qvm", "qvm_split_k", "qmm_t", "qmm_n",
                     "quantize", "dequantize"}
    missing = planned - instantiated_names
    assert not missing, sorted(missing)[:10]


# ------------------------------------------------------------------ what the library holds

@pytest.mark.parametrize("policy", ["auto", "on"])
def test_nax_falls_back_to_qmm_t_without_nax_kernels(monkeypatch, policy):
    # A metallib or run-time compile without Metal 4 has no qmm_t_nax: the
    # planner must not name it, whatever the device and PYONEBIT_NAX say.
    monkeypatch.setenv("PYONEBIT_NAX", policy)
    d = plan(64, 64, 128, dtype=np.float16, caps={"nax": True})
    assert base(d) == "qmm_t_nax"
    d = plan(64, 64, 128, dtype=np.float16, caps={"nax": True, "nax_kernels": False})
    assert d["kernel"] == "qmm_t_float16_gs_32_b_1"
    assert d["threads"] == (128, 1, 1) and d["threadgroup_memory"] == [32 * 32 * 4] * 3


def test_bfloat16_without_bfloat_kernels_is_a_value_error():
    # macOS 13 (Metal 3.0) compiles no bfloat kernels: a clear ValueError, no
    # silent float32 fallback (planner.cpp check_dtype says why).
    no_bfloat = {"bfloat_kernels": False}
    message = r"\[quantized_matmul\] bfloat16 on Metal needs .*Metal 3.1 \(macOS 14\)"
    for M in (1, 4):
        with pytest.raises(ValueError, match=message):
            plan(M, 64, 128, dtype=BF16, caps=no_bfloat)
    with pytest.raises(ValueError, match=message):  # bfloat16 x, bfloat16 result
        plan(4, 64, 128, dtype=BF16, xdtype=BF16, caps=no_bfloat)
    # float16 x with bfloat16 scales promotes to float32: no bfloat kernel needed.
    assert plan(4, 64, 128, dtype=BF16, xdtype=np.float16, caps=no_bfloat)["kernel"].startswith("qmm_t_float32")
    with pytest.raises(ValueError, match=r"\[quantize\] bfloat16 on Metal needs"):
        metal_plan_quantize(np.zeros((4, 128), BF16), group_size=64, caps=no_bfloat)
    wq, s, b = operands(1, 64, 4, 128, BF16)
    with pytest.raises(ValueError, match=r"\[dequantize\] bfloat16 on Metal needs"):
        metal_plan_dequantize(wq, s, b, group_size=64, caps=no_bfloat)
    # Other dtypes are unaffected; with bfloat kernels bfloat16 plans as before.
    for dtype in (np.float16, np.float32):
        assert plan(4, 64, 128, dtype=dtype, caps=no_bfloat)["kernel"].startswith("qmm_t_")
    assert plan(4, 64, 128, dtype=BF16)["kernel"] == "qmm_t_bfloat16_gs_32_b_1"
