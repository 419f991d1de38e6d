"""Every SIMD variant of the CPU kernels that this machine can run, against the
scalar reference ("scalar" = the float64 specification), case by case.

Tolerance: tests/error_bound.py (the same bound as every matmul comparison
and tests/native/isa_check.cpp); only the order of the float32 additions
differs from the reference, and a single wrong weight bit is far above it
(test_one_wrong_bit_is_caught)."""
import os
import shutil
import subprocess

import ml_dtypes
import numpy as np
import pytest

import pyonebit
from pyonebit import _testing
from error_bound import assert_within_bound
from native_build import CXX, ODR_CHECK, SRC

BF16 = np.dtype(ml_dtypes.bfloat16)
SIMD_ISAS = [n for n in pyonebit.cpu_kernels()["supported"] if n != "scalar"]
BITS = pyonebit.supported_bits()
GROUP_SIZES = pyonebit.supported_group_sizes()

pytestmark = [pytest.mark.skipif(not SIMD_ISAS, reason="no SIMD CPU kernel runs on this machine"),
              pytest.mark.usefixtures("cpu_settings_restored")]


def matmul_with(isa, x, q, transpose, group_size, bits, mode):
    _testing.set_cpu_isa(isa)
    wq, scales, biases = q
    return pyonebit.quantized_matmul(x, wq, scales, biases, transpose=transpose,
                                     group_size=group_size, bits=bits, mode=mode)


def assert_close(out, ref, x, q, transpose, group_size, bits, mode):
    assert out.shape == ref.shape and out.dtype == ref.dtype
    wq, scales, biases = q
    w_hat = pyonebit.dequantize(wq, scales, biases, group_size, bits, mode, dtype=np.float32)
    wt = np.abs(np.swapaxes(w_hat, -1, -2) if transpose else w_hat).astype(np.float64)
    assert_within_bound(out, ref, x.shape[-1], np.abs(x.astype(np.float64)) @ wt)


def make_case(rng, M, N, K, transpose, group_size, bits, mode, dtype=np.float32, w_batch=(),
              x_batch=()):
    w = rng.standard_normal(w_batch + ((N, K) if transpose else (K, N))).astype(dtype)
    q = pyonebit.quantize(w, group_size, bits, mode)
    x = rng.standard_normal(x_batch + (M, K)).astype(dtype)
    return x, q


def check(isa, x, q, transpose, group_size, bits, mode):
    ref = matmul_with("scalar", x, q, transpose, group_size, bits, mode)
    out = matmul_with(isa, x, q, transpose, group_size, bits, mode)
    assert_close(out, ref, x, q, transpose, group_size, bits, mode)
    return out


FORMATS = [(b, "affine") for b in BITS] + [(1, "symmetric")]


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("bits,mode", FORMATS, ids=lambda v: str(v))
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("transpose", [True, False], ids=["T", "N"])
def test_matches_reference(isa, bits, mode, group_size, transpose):
    rng = np.random.default_rng(bits * 1000 + group_size + transpose)
    # M: matrix-vector, an odd decode batch, and one large enough for the panel kernel.
    # K: one group, and enough groups to cross a panel's K depth with a tail.
    # N (transpose): a tail for every row block; (!transpose) N is a multiple of the group size.
    for M in (1, 3, 70):
        for K in (group_size, 5 * group_size if group_size < 128 else 3 * group_size):
            N = 37 if transpose else 2 * group_size
            x, q = make_case(rng, M, N, K, transpose, group_size, bits, mode)
            check(isa, x, q, transpose, group_size, bits, mode)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("bits", [2, 3, 8])
@pytest.mark.parametrize("transpose", [True, False], ids=["T", "N"])
def test_panel_tasks_along_n(isa, bits, transpose):
    """The panel kernel (M = 70) with several tasks along N, the last one
    partial: a task is 8 panels of 2L columns (128 with AVX2, 256 with
    AVX-512), so N = 333 (or 320) makes two or three; K crosses the panel
    depth."""
    rng = np.random.default_rng(bits + 20 * transpose)
    x, q = make_case(rng, 70, 333 if transpose else 320, 640, transpose, 64, bits, "affine")
    check(isa, x, q, transpose, 64, bits, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16], ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("bits,mode", [(1, "affine"), (1, "symmetric"), (4, "affine")],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("transpose", [True, False], ids=["T", "N"])
def test_dtypes(isa, dtype, bits, mode, transpose):
    rng = np.random.default_rng(7)
    for M in (1, 5, 80):
        x, q = make_case(rng, M, 64 if transpose else 128, 256, transpose, 64, bits, mode, dtype)
        out = check(isa, x, q, transpose, 64, bits, mode)
        assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
def test_half_results_are_the_float32_results_rounded(isa, dtype):
    """The backend widens half x and narrows the float32 result with the ISA's vector
conversions (convert_floats.h): the same bits as x widened and the float32 result
rounded to nearest even by NumPy / ml_dtypes. Values past the half range, with ties
and subnormal results; N = 37 and 200 leave scalar tails after the vectors."""
    rng = np.random.default_rng(11)
    _testing.set_cpu_isa(isa)
    for N in (37, 200):
        w = rng.standard_normal((N, 256)).astype(np.float32)
        wq, scales, biases = pyonebit.quantize(w.astype(dtype), 64, 1, "affine")
        x = (rng.standard_normal((3, 256)) * np.array([[1.0], [1e-5], [2e3]])).astype(dtype)
        half = pyonebit.quantized_matmul(x, wq, scales, biases, group_size=64, bits=1)
        wide = pyonebit.quantized_matmul(x.astype(np.float32), wq, scales, biases, group_size=64, bits=1)
        assert half.dtype == np.dtype(dtype) and wide.dtype == np.float32
        with np.errstate(over="ignore"):  # the 2e3 row's sums overflow float16 to inf, as they should
            rounded = wide.astype(dtype)
        np.testing.assert_array_equal(half.view(np.uint16), rounded.view(np.uint16))


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("transpose", [True, False], ids=["T", "N"])
def test_batched_and_broadcast(isa, transpose):
    rng = np.random.default_rng(3)
    x, q = make_case(rng, 3, 64, 128, transpose, 32, 1, "affine", w_batch=(3,), x_batch=(2, 3))
    out = check(isa, x, q, transpose, 32, 1, "affine")
    assert out.shape == (2, 3, 3, 64)
    # W broadcast over a batch of x, and a 1-D x
    x, q = make_case(rng, 67, 64, 128, transpose, 64, 2, "affine", x_batch=(2,))
    check(isa, x, q, transpose, 64, 2, "affine")
    check(isa, x[0, 0], q, transpose, 64, 2, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", ["mlx", "interleaved16"])
def test_rows_do_not_depend_on_the_batch(isa, layout):
    """The 1-bit lookup kernel runs pairs of x rows (AVX2) and a last row
alone, every row summed in the same order: a row's result is the same bits
whether it came alone or in a batch of any size (M = 5: two pairs and a
tail; N = 37: full and partial lane groups)."""
    rng = np.random.default_rng(17)
    for group_size in GROUP_SIZES:
        x, (wq, scales, biases) = make_case(rng, 5, 37, 4 * group_size, True, group_size, 1, "affine")
        if layout == "interleaved16":
            wq, scales, biases = (pyonebit.interleave16(a) for a in (wq, scales, biases))
        _testing.set_cpu_isa(isa)

        def product(rows):
            return pyonebit.quantized_matmul(rows, wq, scales, biases, True, group_size, 1, "affine",
                                             layout=layout)

        batch = product(x)
        for m in range(1, 5):
            np.testing.assert_array_equal(product(x[:m]), batch[:m])
            np.testing.assert_array_equal(product(x[m:m + 1]), batch[m:m + 1])


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_rows_longer_than_the_kept_tables(isa):
    """The lookup kernel keeps up to 2 MB of x tables per calling thread between calls;
a longer row's (K = 131200 at 1 bit: 2.05 MB with AVX-512's 16-float tables) are the
call's own. Both, one after the other, against the reference."""
    rng = np.random.default_rng(23)
    for K in (131200, 1024, 131200):
        x, q = make_case(rng, 2, 37, K, True, 128, 1, "affine")
        check(isa, x, q, True, 128, 1, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_every_thread_reads_each_calls_x(isa):
    """Up to M = 8 each thread builds its own copy of the lookup kernel's x tables on its
first task of a call and keeps it: calls with the same shapes and new x, one after the
other on two threads, each against the reference (a stale copy fails)."""
    rng = np.random.default_rng(31)
    pyonebit.set_num_threads(2)
    for M in (1, 3, 8, 9, 1):
        x, q = make_case(rng, M, 512, 1024, True, 128, 1, "affine")
        for x_now in (x, -x, x[::-1].copy()):
            check(isa, x_now, q, True, 128, 1, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_single_output_column(isa):
    rng = np.random.default_rng(5)
    for M in (1, 2, 65):
        x, q = make_case(rng, M, 1, 384, True, 128, 1, "affine")
        check(isa, x, q, True, 128, 1, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_realistic_size(isa):
    """Layer-sized K (4096; 16384 once) for the 1-bit paths of every M regime."""
    rng = np.random.default_rng(11)
    for transpose in (True, False):
        # Transposed: table lookups at every M on AVX-512, in chunks of x rows
        # whose tables fit 2 MiB (32 rows at K = 4096, 8 at K = 16384: M = 40
        # and 100 take several); elsewhere masked adds (rows) to M = 64, then
        # the panel. Not transposed: columns kernel to M = 32, then panel.
        for M, K in ((1, 4096), (17, 4096), (40, 4096), (40, 16384), (100, 4096)):
            x, q = make_case(rng, M, 256, K, transpose, 128, 1, "affine")
            check(isa, x, q, transpose, 128, 1, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_one_wrong_bit_is_caught(isa):
    """The tolerance is tight enough to see a single flipped weight bit."""
    rng = np.random.default_rng(13)
    x, q = make_case(rng, 1, 24, 512, True, 128, 1, "affine")
    x = np.abs(x) + 0.5  # no tiny x_k that would hide the flip
    wq, s, b = q
    bad = wq.copy()
    bad[3, 5] ^= np.uint32(1 << 17)  # a row of a 16-row block (the table-lookup kernel)
    bad[20, 2] ^= np.uint32(1 << 30)  # a tail row
    ref = matmul_with("scalar", x, q, True, 128, 1, "affine")
    out = matmul_with(isa, x, (bad, s, b), True, 128, 1, "affine")
    with pytest.raises(AssertionError):
        assert_close(out, ref, x, q, True, 128, 1, "affine")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("bits", [1, 4])
@pytest.mark.parametrize("transpose", [True, False], ids=["T", "N"])
def test_empty_dimensions(isa, bits, transpose):
    for M, N, K in ((0, 64, 128), (70, 0, 128), (3, 0, 128), (70, 64, 0), (2, 64, 0)):
        w = np.zeros((N, K) if transpose else (K, N), np.float32)
        wq, s, b = pyonebit.quantize(w, 32, bits)
        x = np.ones((M, K), np.float32)
        _testing.set_cpu_isa(isa)
        out = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=32, bits=bits)
        np.testing.assert_array_equal(out, np.zeros((M, N), np.float32))


def test_cpu_kernels_lists():
    info = pyonebit.cpu_kernels()
    assert info["compiled"][-1] == "scalar"
    assert set(info["supported"]) <= set(info["compiled"])
    assert info["active"] in info["supported"]


def test_unknown_isa_is_a_clear_error():
    with pytest.raises(ValueError, match="'avx9000' is not a CPU kernel of this build; compiled: .*'scalar'"):
        _testing.set_cpu_isa("avx9000")


X86_ISA_FILES = {"avx512": "avx512.cpp", "avx2": "avx2.cpp"}
X86_ISAS = [i for i in SIMD_ISAS if i in X86_ISA_FILES]


@pytest.fixture(scope="module")
def isa_objects(native_builds):
    """{isa: its file compiled alone with native_build.ODR_CHECK's flags}, compiled side by side."""
    if not (shutil.which(CXX) and shutil.which("nm") and shutil.which("objdump")):
        pytest.skip("needs a C++ compiler, nm and objdump")
    sources = [os.path.join(SRC, "cpu", X86_ISA_FILES[isa]) for isa in X86_ISAS]
    return dict(zip(X86_ISAS, native_builds.objects(CXX, [(src, ODR_CHECK) for src in sources])))


@pytest.mark.parametrize("isa", X86_ISAS)
def test_isa_code_never_leaks_into_shared_symbols(isa, isa_objects):
    """The ODR pitfall: a shared (weak) definition compiled in an ISA file could
    be the one the linker keeps and then run on a CPU without that ISA. Build
    the file (at -O0: every shared inline function it uses is emitted there as
    a weak symbol and gets checked) and check that it exports only its entry
    points and that every weak symbol it emits uses no AVX register."""
    obj = isa_objects[isa]
    symbols = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    kinds = {}
    for line in filter(None, symbols):
        _, kind, name = line.split(maxsplit=2)
        kinds.setdefault(kind, []).append(name)
    exported = sorted(kinds.get("T", []))
    assert exported == sorted([f"_ZN6onebit3cpu{len(isa) + 4}{isa}_qmmERKNS0_7QmmArgsE",
                               f"_ZN6onebit3cpu{len(isa) + 8}{isa}_convertEPKvNS_5DTypeEPvS3_l",
                               f"_ZN6onebit3cpu{len(isa) + 10}{isa}_supportedEv"]), exported
    weak = kinds.get("W", [])
    assert weak, "expected the std::vector helpers as weak symbols"
    for name in weak:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--disassemble={name}", obj],
                             capture_output=True, text=True, check=True).stdout
        assert "%ymm" not in asm and "%zmm" not in asm and "%k1" not in asm, name
