"""The "metal" backend's host side: registration, zero-copy binding and its
fallback, dtype widening. Correctness over bits/groups/shapes comes from
test_matmul.py, which runs on every backend listed. The GPU tests run only
on a Mac with a usable device (they skip elsewhere)."""
import os

import numpy as np
import pytest

import pyonebit
from conftest import assert_matmul_close, w_hat64

METAL = "metal" in pyonebit.backends()
needs_metal = pytest.mark.skipif(not METAL, reason="no usable Metal device in this build/machine")


def test_metal_stats_fields():
    stats = pyonebit.metal_stats()
    assert set(stats) == {"built", "wrapped", "copied_inputs", "copied_outputs", "copied_misaligned", "library"}
    assert not METAL or stats["built"]
    if not stats["built"]:
        assert stats["wrapped"] == stats["copied_inputs"] == stats["copied_outputs"] == 0
        assert stats["copied_misaligned"] == 0 and not stats["library"]["loaded"]


def test_metal_listed_where_required():
    # The macOS workflow sets this on runners with a real Apple GPU, so a
    # device that is not detected fails CI instead of skipping the GPU tests.
    if os.environ.get("ONEBIT_REQUIRE_METAL") == "1":
        assert pyonebit.metal_stats()["built"], "built without Metal"
        assert METAL, f"no usable Metal device; backends: {pyonebit.backends()}"


def weights(rng, n, k, dtype=np.float32, group_size=64):
    w = rng.standard_normal((n, k)).astype(dtype)
    return pyonebit.quantize(w, group_size=group_size)


def check(out, x, wq, s, b):
    """out is x @ dequantize(w).T within the suite's float32 error bound."""
    x = np.asarray(x)
    expected = np.result_type(x.dtype, s.dtype)
    assert_matmul_close(out, x, w_hat64(wq, s, b, 1, 64), True, np.dtype(expected))


def delta(before):
    after = pyonebit.metal_stats()
    return {k: after[k] - before[k] for k in ("wrapped", "copied_inputs", "copied_outputs")}


@needs_metal
def test_aligned_arrays_are_bound_without_copies(rng):
    wq, s, b = weights(rng, 32, 256)
    x = pyonebit.aligned_empty((4, 256), np.float32)
    x[...] = rng.standard_normal(x.shape)
    before = pyonebit.metal_stats()
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend="metal")
    # wq, scales, biases, x and the output: all wrapped in place.
    assert delta(before) == {"wrapped": 5, "copied_inputs": 0, "copied_outputs": 0}
    check(out, x, wq, s, b)


@needs_metal
def test_unaligned_views_are_bound_at_an_offset(rng):
    wq, s, b = weights(rng, 16, 128)
    big = rng.standard_normal(3 * 128 + 5).astype(np.float32)
    x = big[5:].reshape(3, 128)  # starts 20 bytes into its allocation
    before = pyonebit.metal_stats()
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend="metal")
    assert delta(before)["wrapped"] == 5
    check(out, x, wq, s, b)


@needs_metal
def test_read_only_mapping_is_wrapped_or_copied(rng, tmp_path):
    # Metal may refuse a read-only file mapping; either way the result is right
    # and the binding is counted.
    wq, s, b = weights(rng, 16, 128)
    path = tmp_path / "x.bin"
    rng.standard_normal((2, 128)).astype(np.float32).tofile(path)
    x = np.memmap(path, dtype=np.float32, mode="r", shape=(2, 128))
    before = pyonebit.metal_stats()
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend="metal")
    d = delta(before)
    assert d["wrapped"] + d["copied_inputs"] == 5
    check(out, x, wq, s, b)


@needs_metal
def test_inputs_of_another_dtype_are_widened(rng):
    wq, s, b = weights(rng, 16, 128)  # float32 scales
    x = rng.standard_normal((2, 128)).astype(np.float16)
    before = pyonebit.metal_stats()
    out = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend="metal")
    assert out.dtype == np.float32
    assert delta(before)["wrapped"] == 4  # x was widened into a new buffer instead
    check(out, x, wq, s, b)


@needs_metal
def test_empty_results_and_zero_k(rng):
    wq, s, b = pyonebit.quantize(np.ones((4, 0), np.float32), group_size=32)
    out = pyonebit.quantized_matmul(np.ones((3, 0), np.float32), wq, s, b, group_size=32, backend="metal")
    np.testing.assert_array_equal(out, np.zeros((3, 4), np.float32))
    wq, s, b = weights(rng, 8, 64)
    out = pyonebit.quantized_matmul(np.ones((0, 64), np.float32), wq, s, b, group_size=64, backend="metal")
    assert out.shape == (0, 8)
