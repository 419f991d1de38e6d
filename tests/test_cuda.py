"""The "cuda" backend on device arrays (PyTorch, CuPy) against the float64
model of the format: kernels (matrix-vector and tiled), dtypes, both
transposes, alignment fallbacks, the caller's stream (CUDA graph capture),
out=, and errors. NumPy inputs through backend="cuda" are covered by the
shared suites (test_matmul.py is parametrized over pyonebit.backends()).

Without a GPU only the build checks run: CI compiles the CUDA sources."""
import os
import sys

import numpy as np
import pytest

import pyonebit
from pyonebit import cuda_backend
from conftest import BF16, BITS, FLOAT_DTYPES, GROUP_SIZES, assert_matmul_close, dtype_id, random_weights, w_hat64

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "build_tools"))
import cuda_build  # noqa: E402

gpu = pytest.mark.skipif(not cuda_backend.available(), reason="no usable CUDA device")


def test_extension_is_built_where_nvcc_exists():
    if os.environ.get("PYONEBIT_CUDA") == "0" or cuda_build.find_nvcc() is None:
        pytest.skip("no nvcc here: the CPU-only build has no CUDA module")
    ext = cuda_backend.extension()
    assert ext is not None, "nvcc exists but pyonebit._cuda was not built"
    assert isinstance(ext.device_count(), int)
    assert ("cuda" in pyonebit.backends()) == (ext.device_count() > 0)


@pytest.mark.skipif(cuda_backend.available(), reason="a CUDA device is usable")
def test_unavailable_backend_is_a_clear_error():
    x = np.ones((1, 32), np.float32)
    wq, s, b = pyonebit.quantize(np.ones((4, 32), np.float32), group_size=32)
    with pytest.raises(ValueError, match="backend 'cuda' is not available"):
        cuda_backend.quantized_matmul(x, wq, s, b, group_size=32)


# ---------------------------------------------------------------- on a GPU
torch = pytest.importorskip("torch") if cuda_backend.available() else None


def to_torch(a):
    a = np.ascontiguousarray(a)
    if a.dtype == BF16:
        return torch.from_numpy(a.view(np.int16)).cuda().view(torch.bfloat16)
    if a.dtype == np.uint32:  # moved as int32: PyTorch's uint32 has few kernels
        return torch.from_numpy(a.view(np.int32)).cuda().view(torch.uint32)
    return torch.from_numpy(a).cuda()


def to_numpy(t):
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).cpu().numpy().view(BF16)
    return t.cpu().numpy()


def quantized(rng, shape, dtype, bits, group_size, mode="affine"):
    w = random_weights(rng, shape, dtype)
    wq, s, b = pyonebit.quantize(w, group_size=group_size, bits=bits, mode=mode)
    return wq, s, b, w_hat64(wq, s, b, bits, group_size, mode)


def run_torch(x, wq, s, b, **kw):
    args = [to_torch(a) if a is not None else None for a in (x, wq, s, b)]
    args[1] = args[1].view(torch.uint32)
    y = pyonebit.quantized_matmul(*args, backend="cuda", **kw)
    assert isinstance(y, torch.Tensor) and y.is_cuda and y.is_contiguous()
    return to_numpy(y)


@gpu
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("bits", BITS)
def test_torch_arrays_match_float64_model(rng, bits, group_size, dtype, transpose):
    # M from 1 to 40: the matrix-vector kernel (M <= 8, each accumulator width) and the tiled one.
    for M in (1, 2, 3, 4, 5, 8, 9, 40):
        free, packed = 67, 384
        K = packed if transpose else free
        wq, s, b, what = quantized(rng, (free, packed), dtype, bits, group_size)
        x = random_weights(rng, (M, K), dtype)
        out = run_torch(x, wq, s, b, transpose=transpose, group_size=group_size, bits=bits)
        assert_matmul_close(out, x, what, transpose, dtype)


@gpu
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("M", [1, 2, 7, 8, 16])
def test_model_sized_rows_use_wide_loads(rng, M, mode):
    wq, s, b, what = quantized(rng, (300, 4096), np.float16, 1, 128, mode)
    x = random_weights(rng, (M, 4096), np.float16)
    assert_matmul_close(run_torch(x, wq, s, b, group_size=128, mode=mode), x, what, True,
                        np.dtype(np.float16))


def assert_kernel_matches_model(kernel, x, wq, s, b, what, context, **kw):
    """The transposed product of x with (wq, s, b) on the device ran `kernel` alone and is within
    the bound of the float64 model what; its dtype as in MLX (x's where the scales have it, else
    float32). context names the case in a failure."""
    with pyonebit.trace() as t:
        out = run_torch(x, wq, s, b, **kw)
    assert t.kernels() == [kernel], context
    assert_matmul_close(out, x, what, True, x.dtype if x.dtype == s.dtype else np.dtype(np.float32))


STREAM_MAX_K = 53248  # launch.h's kStreamMaxK
LUT_STEP_BYTES = 65536  # qmv_stream.cuh's kLutStepBytes: qmv_lut_t's tables for 4096 values of x
# The longest K qmv_lut_t takes in the 227 KB a block may have on sm_90 (H100, H200): three steps
# of tables and the 32-value sums (lut_smem_bytes).
LUT_MAX_K = 12288
assert 3 * LUT_STEP_BYTES + LUT_MAX_K // 8 <= 227 * 1024 < 4 * LUT_STEP_BYTES
DIGIT_CLUSTER, DIGIT_MAX_CHUNKS, DIGIT_FACTOR_BYTES = 8, 16, 64  # qmv_digits.cuh's constants


def digit_max_k(group_size, scale_bytes):
    """The longest K qmv_digits_t takes (sm_90: clusters of 8 blocks): 8 slices of at most 16
    128-value chunks, and at most 64 bytes of a row's scales a slice."""
    return DIGIT_CLUSTER * 128 * min(DIGIT_MAX_CHUNKS, DIGIT_FACTOR_BYTES // (128 // group_size * scale_bytes))


def test_kernel_limits_are_the_headers():
    """The GPU tests below go just past qmv_digits_t's and qmv_stream_t's K limits: their
    constants are the headers'."""
    cuda_src = os.path.join(os.path.dirname(__file__), "..", "src", "cuda")
    with open(os.path.join(cuda_src, "launch.h")) as f:
        assert f"constexpr int kStreamMaxK = {STREAM_MAX_K};" in f.read()
    with open(os.path.join(cuda_src, "qmv_stream.cuh")) as f:
        assert f"constexpr int kLutStepBytes = {LUT_STEP_BYTES};" in f.read()
    with open(os.path.join(cuda_src, "qmv_digits.cuh")) as f:
        text = f.read()
    for name, value in (("kDigitMaxCluster", DIGIT_CLUSTER), ("kDigitMaxChunks", DIGIT_MAX_CHUNKS),
                        ("kDigitFactorBytes", DIGIT_FACTOR_BYTES)):
        assert f"constexpr int {name} = {value};" in text


# The M = 1 kernels' dtype cases: x and scales of one type, and of two.
EVERY_X_AND_SCALE_DTYPE = pytest.mark.parametrize(
    "x_dtype,w_dtype", [(np.float16, np.float16), (BF16, BF16), (np.float32, np.float32), (np.float16, np.float32),
                        (BF16, np.float16)], ids=lambda d: np.dtype(d).name)


def matrix_vector_kernel(bits, dtype, M, K):
    """The kernel backend.cu picks for a transposed product with M <= 8 on aligned rows."""
    if M == 1:
        stream = bits == 1 and K % 128 == 0 and K <= STREAM_MAX_K
        return "qmv_stream_t" if stream else "qmv_staged_t"
    return "qmv_tc_t" if bits == 1 and np.dtype(dtype) != np.float32 else "qmv_t"


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16], ids=dtype_id)
@pytest.mark.parametrize("bits,mode", [(1, "affine"), (1, "symmetric"), (2, "affine"), (3, "affine"),
                                       (4, "affine"), (8, "affine")])
def test_one_row_of_x_is_staged_in_steps(rng, bits, mode, dtype):
    """M = 1 takes qmv_staged_t at 2-8 bits (1 bit: qmv_stream_t), which stages x in shared
    memory one warp step at a time (4096 values at 1 bit, 1024 at 3, 4 and 8 bits): K =
    10368 is several steps and a partial last one; 37 rows leave the last block's warps
    past N (they stage, and store nothing). M = 2 takes qmv_t (1 bit with float16 /
    bfloat16 x: qmv_tc_t)."""
    wq, s, b, what = quantized(rng, (37, 10368), dtype, bits, 128, mode)
    for M in (1, 2):
        x = random_weights(rng, (M, 10368), dtype)
        with pyonebit.trace() as t:
            out = run_torch(x, wq, s, b, group_size=128, bits=bits, mode=mode)
        assert t.kernels() == [matrix_vector_kernel(bits, dtype, M, 10368)]
        assert_matmul_close(out, x, what, True, np.dtype(dtype))


@gpu
def test_a_row_of_x_too_long_to_stream_is_staged_in_steps(rng):
    """K = 53376 at 1 bit, group 64: past what qmv_stream_t holds in shared memory, so
    qmv_staged_t, thirteen steps of x and a partial one."""
    K = STREAM_MAX_K + 128
    wq, s, b, what = quantized(rng, (45, K), np.float16, 1, 64)
    x = random_weights(rng, (1, K), np.float16)
    with pyonebit.trace() as t:
        out = run_torch(x, wq, s, b, group_size=64)
    assert t.kernels() == ["qmv_staged_t"]
    assert_matmul_close(out, x, what, True, np.dtype(np.float16))


@gpu
@pytest.mark.parametrize("kernel", ["qmv_stream_t", "qmv_lut_t"])
@EVERY_X_AND_SCALE_DTYPE
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_one_bit_row_of_x_streams_through_resident_blocks(rng, monkeypatch, group_size, mode, x_dtype, w_dtype,
                                                          kernel):
    """1 bit, M = 1, K whole 128-value chunks: qmv_stream_t (qmv_stream.cuh), all of x in
    shared memory, resident blocks walking tiles of rows; with PYONEBIT_CUDA_LUT=1 its lookup
    variant qmv_lut_t, which stages 16-entry tables of x's subset sums instead. K = 128 (one
    chunk: one lane of each warp works), 4224 (a second lane step with one chunk: a second
    step of tables), the most each takes (53248: one block a multiprocessor; 12288: three
    steps of tables); N = 37 (2-row tiles, the last partial), 4097 (at group size 128 4-row
    tiles, the last with one row) and 8453 with K = 128 (more tiles than warps in the grid:
    some warps take two); x spans the dtype's range per group (x_of_wide_range) at K = 4224.
    Past qmv_lut_t's K, qmv_stream_t."""
    lut = kernel == "qmv_lut_t"
    monkeypatch.setenv("PYONEBIT_CUDA_LUT", "1" if lut else "0")
    k_max = LUT_MAX_K if lut else STREAM_MAX_K
    for N, K in ((37, 128), (37, 4224), (3, k_max), (4097, 4224), (8453, 128)):
        wq, s, b, what = quantized(rng, (N, K), w_dtype, 1, group_size, mode)
        xs = [random_weights(rng, (1, K), x_dtype)] + ([x_of_wide_range(rng, K, group_size, x_dtype)] if K == 4224 else [])
        for x in xs:
            assert_kernel_matches_model(kernel, x, wq, s, b, what, (N, K), group_size=group_size, mode=mode)
    if lut:
        wq, s, b, what = quantized(rng, (37, k_max + 128), w_dtype, 1, group_size, mode)
        x = random_weights(rng, (1, k_max + 128), x_dtype)
        assert_kernel_matches_model("qmv_stream_t", x, wq, s, b, what, "past", group_size=group_size, mode=mode)


def x_of_wide_range(rng, K, group_size, dtype):
    """A row of x whose groups span the dtype's range: a group of zeros, groups scaled far
    down and up (float16: down to its subnormals, up only 2^6 so that float16 results stay
    finite), a lone large value beside small ones, and random signs."""
    x = random_weights(rng, (1, K), np.float32)
    groups = x.reshape(1, -1, group_size)
    tiny, huge = (2.0**-20, 2.0**6) if np.dtype(dtype) == np.float16 else (2.0**-60, 2.0**60)
    groups[0, 0] = 0.0
    if groups.shape[1] > 2:
        groups[0, 1] *= tiny
        groups[0, 2] *= huge
    groups[0, -1] *= 2.0**-12
    groups[0, -1, 5] = 1000.0
    return x.astype(dtype)


@gpu
@EVERY_X_AND_SCALE_DTYPE
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_one_bit_row_of_x_runs_on_integer_tensor_cores(rng, monkeypatch, group_size, mode, x_dtype, w_dtype):
    """1 bit, M = 1 with PYONEBIT_CUDA_DIGITS=1, K whole 128-value chunks up to digit_max_k:
    qmv_digits_t (qmv_digits.cuh), x as seven base-128 digits per group in an int8 mma with W's
    bits. K = 128 (one chunk, one block a row block), 3200 (25 chunks over a cluster of 8:
    slices of 4, the seventh block's one chunk, the eighth's none), the most it takes (8 full
    slices) and 1024; N = 37 (a partial 16-row tile), 4097 (33 row blocks, the last with one
    row), 300; x spans the dtype's range per group (x_of_wide_range), and plain random x. Past
    the most, qmv_stream_t."""
    monkeypatch.setenv("PYONEBIT_CUDA_DIGITS", "1")
    k_max = digit_max_k(group_size, np.dtype(w_dtype).itemsize)
    for N, K in ((37, 128), (37, 3200), (4097, 3200), (300, k_max), (300, 1024)):
        wq, s, b, what = quantized(rng, (N, K), w_dtype, 1, group_size, mode)
        for x in (x_of_wide_range(rng, K, group_size, x_dtype), random_weights(rng, (1, K), x_dtype)):
            assert_kernel_matches_model("qmv_digits_t", x, wq, s, b, what, (N, K), group_size=group_size, mode=mode)
    wq, s, b, what = quantized(rng, (37, k_max + 128), w_dtype, 1, group_size, mode)
    x = random_weights(rng, (1, k_max + 128), x_dtype)
    assert_kernel_matches_model("qmv_stream_t", x, wq, s, b, what, "past", group_size=group_size, mode=mode)


@gpu
def test_integer_tensor_core_kernel_gives_non_finite_rows_for_non_finite_x(rng, monkeypatch):
    """An infinity or NaN in x: qmv_digits_t's fixed point has no room for it, so the group's
    factors are NaN and every row comes out NaN (the float64 model: +-inf or NaN), never a
    finite wrong value."""
    monkeypatch.setenv("PYONEBIT_CUDA_DIGITS", "1")
    wq, s, b, what = quantized(rng, (64, 1024), np.float16, 1, 64)
    for bad in (np.inf, -np.inf, np.nan):
        x = random_weights(rng, (1, 1024), np.float16)
        x[0, 300] = bad
        with pyonebit.trace() as t:
            out = run_torch(x, wq, s, b, group_size=64)
        assert t.kernels() == ["qmv_digits_t"]
        assert not np.isfinite(out).any()


@gpu
@pytest.mark.parametrize("x_dtype,w_dtype", [(np.float16, np.float16), (BF16, BF16), (np.float16, np.float32),
                                             (BF16, np.float16)], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_one_bit_half_x_takes_tensor_cores(rng, group_size, mode, x_dtype, w_dtype):
    """1 bit, float16 / bfloat16 x, 2 <= M <= 16: qmv_tc_t (qmv_tc.cuh), W's bits as the mma's A.
    Each x row is a column of the mma (M = 2, 3, 8 one tile, 9 and 16 two); 37 rows: the last block's 16 rows
    are partly past N; K = 128 (one chunk: one warp works, seven add zeros), 1664
    (13 chunks over 8 warps: uneven shares, one warp without any) and 33280; scales of
    another dtype (float32 results)."""
    for K in (128, 1664, 33280):
        wq, s, b, what = quantized(rng, (37, K), w_dtype, 1, group_size, mode)
        for M in (2, 3, 8, 9, 16):
            x = random_weights(rng, (M, K), x_dtype)
            assert_kernel_matches_model("qmv_tc_t", x, wq, s, b, what, (K, M), group_size=group_size, mode=mode)


@gpu
@pytest.mark.parametrize("M,kernel", [(1, "qmv_digits_t"), (2, "qmv_tc_t"), (40, "qmm_tc_t")])
def test_tensor_core_products_of_large_half_values_stay_finite(rng, monkeypatch, M, kernel):
    """x near float16's largest value: the mma's products (x times 2.0; x's digits times 2^j)
    and sums are float32 (int32), so nothing overflows although 2 x does not fit a float16
    (the three tensor-core kernels; qmv_digits_t with PYONEBIT_CUDA_DIGITS=1)."""
    monkeypatch.setenv("PYONEBIT_CUDA_DIGITS", "1")
    wq, s, b, what = quantized(rng, (64, 1024), np.float32, 1, 64)
    x = (rng.uniform(30000, 65504, (M, 1024)) * rng.choice([-1, 1], (M, 1024))).astype(np.float16)
    with pyonebit.trace() as t:
        out = run_torch(x, wq, s, b, group_size=64)
    assert t.kernels() == [kernel]
    assert np.isfinite(out).all()
    assert_matmul_close(out, x, what, True, np.dtype(np.float32))


@gpu
@pytest.mark.parametrize("bits", [1, 4])
def test_unaligned_device_pointers_take_the_tiled_kernel(rng, bits):
    """The matrix-vector kernel reads 16-byte words only; unaligned rows go to the tiled one."""
    wq, s, b, what = quantized(rng, (50, 512), np.float32, bits, 64)
    x = random_weights(rng, (3, 512), np.float32)
    xt = to_torch(np.concatenate([np.zeros(1, np.float32), x.ravel()]))[1:].view(3, 512)
    wt = to_torch(np.concatenate([np.zeros(1, np.uint32), wq.ravel()]))[1:].view(wq.shape)
    assert xt.data_ptr() % 16 and wt.data_ptr() % 16
    with pyonebit.trace() as t:
        y = pyonebit.quantized_matmul(xt, wt.view(torch.uint32), to_torch(s), to_torch(b),
                                      group_size=64, bits=bits, backend="cuda")
    assert t.kernels() == ["qmm_simt_t"]
    assert_matmul_close(to_numpy(y), x, what, True, np.dtype(np.float32))


@gpu
def test_repeated_calls_reuse_the_plan_with_new_arrays(rng):
    """Calls of the same shapes reuse a validated plan (the fast path): each must use its own
    x, W, scales and result, and other shapes or dtypes must not get that plan."""
    layers = [quantized(rng, (96, 256), np.float16, 1, 64) for _ in range(2)]
    xs = [random_weights(rng, (2, 256), np.float16) for _ in range(3)]
    for round_ in range(2):  # the second round runs on the plans the first one left
        for li, (wq, s, b, what) in enumerate(layers):
            w = [to_torch(wq).view(torch.uint32), to_torch(s), to_torch(b)]
            for x in xs:
                y = pyonebit.quantized_matmul(to_torch(x), *w, group_size=64, backend="cuda")
                assert_matmul_close(to_numpy(y), x, what, True, np.dtype(np.float16))
    wq, s, b, what = layers[0]
    w = [to_torch(wq).view(torch.uint32), to_torch(s), to_torch(b)]
    x32 = random_weights(rng, (2, 256), np.float32)
    y = pyonebit.quantized_matmul(to_torch(x32), *w, group_size=64, backend="cuda")
    assert y.dtype == torch.float32
    assert_matmul_close(to_numpy(y), x32, what, True, np.dtype(np.float32))
    with pytest.raises(TypeError, match="wq must be uint32"):
        pyonebit.quantized_matmul(to_torch(xs[0]), w[0].view(torch.int32), *w[1:], group_size=64,
                                  backend="cuda")
    with pytest.raises(ValueError, match="group_size"):
        pyonebit.quantized_matmul(to_torch(xs[0]), *w, group_size=128, backend="cuda")


@gpu
def test_a_weight_written_by_the_previous_product_is_read_after_it(rng):
    """A kernel launched early reads its first W words before the previous kernel ends;
    so when W is what that kernel writes (here a float32 result viewed as codes), the
    launch must wait: the result must match the W the first product left."""
    first = quantized(rng, (128, 65536), np.float32, 1, 128)  # a long tiled product (M = 256)
    x1 = random_weights(rng, (256, 65536), np.float32)
    w1 = [to_torch(a) for a in first[:3]]
    w1[0] = w1[0].view(torch.uint32)
    scales = (rng.random((256, 32)) + 0.5).astype(np.float32)
    biases = (rng.random((256, 32)) - 1.0).astype(np.float32)
    x2 = random_weights(rng, (1, 4096), np.float32)
    for _ in range(2):
        out1 = torch.full((256, 128), float("nan"), device="cuda")  # stale codes: NaN's bits
        pyonebit.quantized_matmul(to_torch(x1), *w1, group_size=128, backend="cuda", out=out1)
        wq2 = out1.view(torch.uint32)  # (256, 128) words: N = 256 rows of K = 4096
        y = pyonebit.quantized_matmul(to_torch(x2), wq2, to_torch(scales), to_torch(biases),
                                      group_size=128, backend="cuda")
        torch.cuda.synchronize()
        codes = to_numpy(out1).view(np.uint32)
        what = w_hat64(codes, scales, biases, 1, 128, "affine")
        assert_matmul_close(to_numpy(y), x2, what, True, np.dtype(np.float32))


@gpu
@pytest.mark.parametrize("x_dtype,scale_dtype", [(np.float16, np.float16), (BF16, BF16), (np.float16, np.float32),
                                                 (BF16, np.float32), (np.float16, BF16)],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_tensor_core_kernel_keeps_the_float32_bound(rng, x_dtype, scale_dtype, group_size, mode):
    """1 bit, float16 / bfloat16 x, M > 16: qmm_tc_t (qmm_tc.cuh), x times W's bits as 0 / 2.0 in
    the mma and the group factors after, within the float32 kernels' error bound. K = 3 groups
    (one step of 128 values, cut short at group sizes 32 and 64), 33 groups (a last step of one
    word at group size 32, two at 64) and 128 + a group; N = 67 (one partial tile of 256 rows)
    and 300 (two); M = 17, 65 and 130 (tiles of 64 rows, the last partial); a batch of W."""
    cases = (((67, 3 * group_size), 17), ((300, 33 * group_size), 65), ((67, 3 * group_size), 130),
             ((2, 33, 128 + group_size), 65))
    for shape, M in cases:
        w = random_weights(rng, shape, np.float32)
        wq, s, b = pyonebit.quantize(w, group_size=group_size, mode=mode)
        s = s.astype(scale_dtype)
        b = b.astype(scale_dtype) if b is not None else None
        what = w_hat64(wq, s, b, 1, group_size, mode)
        x = random_weights(rng, shape[:-2] + (M, shape[-1]), x_dtype)
        with pyonebit.trace() as t:
            out = run_torch(x, wq, s, b, group_size=group_size, mode=mode)
        assert set(t.kernels()) == {"qmm_tc_t"}
        out_dtype = np.dtype(x_dtype) if np.dtype(x_dtype) == np.dtype(scale_dtype) else np.dtype(np.float32)
        assert out.dtype == out_dtype
        assert_matmul_close(out, x, what, True, out_dtype)


@gpu
def test_batches_broadcast_on_device(rng):
    wq, s, b, what = quantized(rng, (3, 33, 128), np.float32, 2, 32)
    x = random_weights(rng, (2, 1, 5, 128), np.float32)
    out = run_torch(x, wq, s, b, group_size=32, bits=2)
    assert out.shape == (2, 3, 5, 33)
    assert_matmul_close(out, x, what, True, np.dtype(np.float32))
    # 1 bit, float16: the tensor-core matrix-vector kernel, once per batch entry
    wq, s, b, what = quantized(rng, (3, 33, 256), np.float16, 1, 64)
    x = random_weights(rng, (2, 1, 5, 256), np.float16)
    with pyonebit.trace() as t:
        out = run_torch(x, wq, s, b, group_size=64)
    assert set(t.kernels()) == {"qmv_tc_t"}
    assert_matmul_close(out, x, what, True, np.dtype(np.float16))


@gpu
def test_runs_on_the_callers_stream_and_in_a_cuda_graph(rng):
    """Captured in a CUDA graph on a side stream: a launch on any other stream
    would fail the capture or be missing from the replay."""
    wq, s, b, what = quantized(rng, (64, 1024), np.float16, 1, 128)
    w = [to_torch(wq).view(torch.uint32), to_torch(s), to_torch(b)]
    x = torch.zeros((2, 1024), dtype=torch.float16, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        pyonebit.quantized_matmul(x, *w, backend="cuda")  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = pyonebit.quantized_matmul(x, *w, backend="cuda")
    for _ in range(2):
        xs = random_weights(rng, (2, 1024), np.float16)
        x.copy_(to_torch(xs))
        graph.replay()
        torch.cuda.synchronize()
        assert_matmul_close(to_numpy(y), xs, what, True, np.dtype(np.float16))


@gpu
def test_cupy_arrays_in_cupy_out(rng):
    cupy = pytest.importorskip("cupy")
    wq, s, b, what = quantized(rng, (40, 256), np.float16, 1, 64)
    x = random_weights(rng, (3, 256), np.float16)
    y = pyonebit.quantized_matmul(cupy.asarray(x), cupy.asarray(wq), cupy.asarray(s),
                                  cupy.asarray(b), group_size=64, backend="cuda")
    assert isinstance(y, cupy.ndarray) and y.dtype == np.float16
    assert_matmul_close(cupy.asnumpy(y), x, what, True, np.dtype(np.float16))


@gpu
def test_out_argument_on_device(rng):
    wq, s, b, what = quantized(rng, (20, 128), np.float32, 1, 32)
    x = random_weights(rng, (4, 128), np.float32)
    args = [to_torch(x), to_torch(wq).view(torch.uint32), to_torch(s), to_torch(b)]
    out = torch.full((4, 20), float("nan"), device="cuda")
    y = pyonebit.quantized_matmul(*args, group_size=32, backend="cuda", out=out)
    assert y is out
    assert_matmul_close(to_numpy(out), x, what, True, np.dtype(np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        pyonebit.quantized_matmul(*args, group_size=32, backend="cuda", out=out[:2])
    with pytest.raises(ValueError, match="overlap"):
        pyonebit.quantized_matmul(*args, group_size=32, backend="cuda",
                                  out=args[0].view(-1)[:80].view(4, 20))


@gpu
def test_numpy_in_numpy_out(rng):
    wq, s, b, what = quantized(rng, (20, 128), BF16, 1, 32)
    x = random_weights(rng, (4, 128), BF16)
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=32, backend="cuda")
    assert isinstance(out, np.ndarray)
    assert_matmul_close(out, x, what, True, BF16)


@gpu
def test_bad_device_inputs_name_the_argument(rng):
    wq, s, b, _ = quantized(rng, (8, 64), np.float32, 1, 32)
    x = to_torch(random_weights(rng, (2, 64), np.float32))
    w = [to_torch(wq).view(torch.int32), to_torch(s), to_torch(b)]
    with pytest.raises(TypeError, match="wq must be uint32"):
        pyonebit.quantized_matmul(x, *w, group_size=32, backend="cuda")
    w[0] = w[0].view(torch.uint32)
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        pyonebit.quantized_matmul(x, *w, group_size=128, backend="cuda")
    with pytest.raises(ValueError, match="interleaved16' runs on the 'cpu' backend only"):
        pyonebit.quantized_matmul(x, *w, group_size=32, backend="cuda", layout="interleaved16")


@gpu
def test_empty_shapes_on_device(rng):
    wq, s, b = pyonebit.quantize(np.ones((8, 64), np.float32), group_size=32)
    w = [to_torch(wq).view(torch.uint32), to_torch(s), to_torch(b)]
    y = pyonebit.quantized_matmul(torch.ones((0, 64), device="cuda"), *w, group_size=32,
                                  backend="cuda")
    assert tuple(y.shape) == (0, 8)
    wq, s, b = pyonebit.quantize(np.ones((4, 0), np.float32), group_size=32)
    y = pyonebit.quantized_matmul(torch.ones((3, 0), device="cuda"), to_torch(wq).view(torch.uint32),
                                  to_torch(s), to_torch(b), group_size=32, backend="cuda")
    assert torch.equal(y, torch.zeros((3, 4), device="cuda"))


@gpu
def test_a_product_of_the_previous_result_waits_for_it(rng):
    """Kernels may start before the previous one ends (programmatic launch) and must read
    x only once the kernel that wrote it is done: chains where each product takes the
    previous result, after a large first product, eager and in a CUDA graph."""
    first = quantized(rng, (8192, 4096), np.float16, 1, 128)
    second = quantized(rng, (4096, 8192), np.float16, 1, 128)
    third = quantized(rng, (64, 4096), np.float16, 2, 64)
    layers = [([to_torch(a) for a in q[:3]], q[3], bits, gs)
              for q, bits, gs in ((first, 1, 128), (second, 1, 128), (third, 2, 64))]
    x = torch.zeros((1, 4096), dtype=torch.float32, device="cuda")  # float32 results: no overflow

    def chain():
        ys = [x]
        for w, _, bits, gs in layers:
            ys.append(pyonebit.quantized_matmul(ys[-1], w[0].view(torch.uint32), w[1], w[2],
                                                group_size=gs, bits=bits, backend="cuda"))
        return ys[1:]

    def check(ys, x_host):
        inputs = [x_host] + [to_numpy(y) for y in ys[:-1]]
        for y, x_in, (_, what, _, _) in zip(ys, inputs, layers):
            assert_matmul_close(to_numpy(y), x_in, what, True, np.dtype(np.float32))

    xs = random_weights(rng, (1, 4096), np.float32)
    x.copy_(to_torch(xs))
    check(chain(), xs)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        chain()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ys = chain()
    for _ in range(3):
        xs = random_weights(rng, (1, 4096), np.float32)
        x.copy_(to_torch(xs))
        graph.replay()
        torch.cuda.synchronize()
        check(ys, xs)
