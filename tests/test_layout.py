"""The interleaved16 weight layout (words of wq, groups of scales and biases):
the permutation against its definition,
products on it against the float64 model on every CPU kernel variant (the
AVX-512 lookup kernel reads it directly; every other path converts slabs of
rows), its errors, and QuantizedLinear's choice of layout."""
import numpy as np
import pytest

import pyonebit
from pyonebit import _testing
from conftest import BF16, BITS, assert_matmul_close, random_weights, w_hat64

ISAS = pyonebit.cpu_kernels()["supported"]  # scalar included: it reads the layout too

pytestmark = pytest.mark.usefixtures("cpu_settings_restored")


def interleaved_by_definition(a):
    """Element c of row n at n0 * C + c * r + (n - n0): n0 = n - n % 16, r the
    rows of n's block (16, or N % 16 for the last one)."""
    N, C = a.shape[-2:]
    out = np.empty_like(a).reshape(a.shape[:-2] + (N * C,))
    for n in range(N):
        n0 = n - n % 16
        r = min(16, N - n0)
        for c in range(C):
            out[..., n0 * C + c * r + (n - n0)] = a[..., n, c]
    return out.reshape(a.shape)


@pytest.mark.parametrize("dtype", [np.dtype(np.uint32), np.dtype(np.float32),
                                   np.dtype(np.float16), BF16], ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(1, 1), (15, 2), (16, 3), (17, 1), (40, 5), (3, 33, 4), (0, 4)])
def test_interleave16_follows_the_definition_and_inverts(rng, shape, dtype):
    a = rng.integers(0, 2**16, shape).astype(dtype)
    inter = pyonebit.interleave16(a)
    assert inter.shape == a.shape and inter.dtype == dtype
    np.testing.assert_array_equal(inter.view(np.uint8), interleaved_by_definition(a).view(np.uint8))
    np.testing.assert_array_equal(pyonebit.deinterleave16(inter).view(np.uint8), a.view(np.uint8))


def interleaved(wq, scales, biases):
    return [pyonebit.interleave16(a) if a is not None else None for a in (wq, scales, biases)]


def product(x, wq, scales, biases, group_size, bits, mode, layout):
    return pyonebit.quantized_matmul(x, wq, scales, biases, True, group_size, bits, mode,
                                     layout=layout)


# M = 1, 2: the lookup kernel on AVX-512 (1 and 2 bits); 3: the rows kernel
# for 2 bits; 70: past the small-M kernels (the panel kernel; on AVX-512 at
# 1 bit still the lookups, and at K = 16384 in two chunks of x rows). N = 530
# spans two slabs of the conversion (512 rows) and ends in a partial 16-row
# block.
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("bits,mode", [(b, "affine") for b in BITS] + [(1, "symmetric")],
                         ids=lambda v: str(v))
def test_products_on_interleaved_weights_match_the_model(rng, isa, bits, mode):
    _testing.set_cpu_isa(isa)
    # N % 16 of 2, 5, 0, 1, 8, 4 and 13: last blocks that fill none, one or
    # both of AVX2's 8-row halves, partly or wholly.
    for N, K, group_size, M in [(530, 128, 64, 1), (37, 256, 128, 2), (16, 96, 32, 3),
                                (1, 64, 64, 1), (40, 128, 32, 70), (20, 16384, 128, 9),
                                (29, 96, 32, 5)]:
        w = random_weights(rng, (N, K), np.float32)
        wq, scales, biases = pyonebit.quantize(w, group_size, bits, mode)
        what = w_hat64(wq, scales, biases, bits, group_size, mode)
        x = random_weights(rng, (M, K), np.float32)
        out = product(x, *interleaved(wq, scales, biases), group_size, bits, mode,
                      "interleaved16")
        assert_matmul_close(out, x, what, True, np.float32)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=lambda d: d.name)
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
def test_half_scales_with_partial_group_vectors(rng, isa, dtype, mode):
    """G = 12 and 20 groups per row: the lookup kernel widens its factors 16
    groups at a time, so these take its partial-vector path."""
    _testing.set_cpu_isa(isa)
    for K in (12 * 32, 20 * 32):
        w = random_weights(rng, (33, K), dtype)
        wq, scales, biases = pyonebit.quantize(w, 32, 1, mode)
        what = w_hat64(wq, scales, biases, 1, 32, mode)
        x = random_weights(rng, (2, K), dtype)
        out = product(x, *interleaved(wq, scales, biases), 32, 1, mode, "interleaved16")
        assert_matmul_close(out, x, what, True, dtype)


@pytest.mark.parametrize("isa", ISAS)
def test_batched_weights_broadcast(rng, isa):
    _testing.set_cpu_isa(isa)
    w = random_weights(rng, (3, 20, 128), np.float32)
    wq, scales, biases = pyonebit.quantize(w, 64, 1)
    x = random_weights(rng, (2, 1, 4, 128), np.float32)
    out = product(x, *interleaved(wq, scales, biases), 64, 1, "affine", "interleaved16")
    assert out.shape == (2, 3, 4, 20)
    assert_matmul_close(out, x, w_hat64(wq, scales, biases, 1, 64), True, np.float32)


def test_results_do_not_depend_on_threads(rng):
    """Every block of rows gets the same arithmetic however the blocks are
    grouped into tasks, so the thread count cannot change a bit."""
    w = random_weights(rng, (16 * 23 + 5, 512), np.float32)
    wq, scales, biases = pyonebit.quantize(w, 128, 1)
    inter = interleaved(wq, scales, biases)
    x = random_weights(rng, (3, 512), np.float32)
    outs = []
    for threads in (1, 2, 3, 4):
        pyonebit.set_num_threads(threads)
        outs.append(product(x, *inter, 128, 1, "affine", "interleaved16"))
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_a_wrong_bit_in_the_interleaved_words_is_caught(rng):
    w = random_weights(rng, (64, 256), np.float32)
    wq, scales, biases = pyonebit.quantize(w, 128, 1)
    x = random_weights(rng, (1, 256), np.float32)
    inter = interleaved(wq, scales, biases)
    inter[0].reshape(-1)[5] ^= 1 << 7  # one bit of one row
    out = product(x, *inter, 128, 1, "affine", "interleaved16")
    with pytest.raises(AssertionError):
        assert_matmul_close(out, x, w_hat64(wq, scales, biases, 1, 128), True, np.float32)


def test_preferred_layout():
    for isa in ISAS:
        _testing.set_cpu_isa(isa)
        expected = "interleaved16" if isa in ("avx512", "avx2") else "mlx"
        assert pyonebit.cpu_preferred_layout(1) == expected
        assert pyonebit.cpu_preferred_layout(1, 64, "symmetric") == expected
        assert pyonebit.cpu_preferred_layout(4) == "mlx"
    with pytest.raises(ValueError, match=r"\[cpu_preferred_layout\] bits=7 is not supported"):
        pyonebit.cpu_preferred_layout(7)


def test_layout_errors(rng):
    wq, scales, biases = pyonebit.quantize(random_weights(rng, (16, 64), np.float32), 64, 1)
    x = random_weights(rng, (1, 64), np.float32)
    with pytest.raises(ValueError, match=r"\[quantized_matmul\] layout='interleaved16' requires "
                                         r"transpose=True"):
        pyonebit.quantized_matmul(x, wq, scales, biases, transpose=False, group_size=64,
                                  layout="interleaved16")
    with pytest.raises(ValueError, match=r"\[quantized_matmul\] layout must be one of 'mlx', "
                                         r"'interleaved16', got 'rows'"):
        pyonebit.quantized_matmul(x, wq, scales, biases, group_size=64, layout="rows")
    with pytest.raises(TypeError, match=r"\[quantized_matmul\] layout must be a str, got int"):
        pyonebit.quantized_matmul(x, wq, scales, biases, group_size=64, layout=1)
    for backend in [b for b in pyonebit.backends() if b != "cpu"]:
        with pytest.raises(ValueError, match=rf"layout='interleaved16' runs on the 'cpu' backend "
                                             rf"only, not on '{backend}'"):
            pyonebit.quantized_matmul(x, wq, scales, biases, group_size=64, backend=backend,
                                      layout="interleaved16")
    with pytest.raises(TypeError, match=r"\[interleave16\] a must be uint32, float32, float16 or "
                                        r"bfloat16, got float64"):
        pyonebit.interleave16(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\[deinterleave16\] a must have at least 2 dimensions"):
        pyonebit.deinterleave16(np.zeros(4, np.uint32))


@pytest.mark.parametrize("backend", pyonebit.backends())
def test_layer_keeps_the_preferred_layout_on_the_cpu(rng, backend):
    w = random_weights(rng, (50, 256), np.float32)
    wq, scales, biases = pyonebit.quantize(w, 128, 1)
    layer = pyonebit.QuantizedLinear(wq, scales, biases, backend=backend)
    expected = pyonebit.cpu_preferred_layout(1) if backend == "cpu" else "mlx"
    assert layer.layout == expected
    assert f"layout={expected!r}" in repr(layer)
    for mine, theirs in [(layer.wq, wq), (layer.scales, scales), (layer.biases, biases)]:
        np.testing.assert_array_equal(mine, theirs)  # MLX's order, whatever is stored
        assert not mine.flags.writeable
    assert layer.nbytes == wq.nbytes + scales.nbytes + biases.nbytes
    x = random_weights(rng, (3, 256), np.float32)
    assert_matmul_close(layer(x), x, w_hat64(wq, scales, biases, 1, 128), True, np.float32)
