"""Hardening (first part of the hardening issue): special values, concurrent
callers, determinism, thread-count changes under load, and flat memory over
many calls, on every backend of the machine."""
import resource
import threading

import numpy as np
import pytest

import pyonebit
from conftest import assert_matmul_close, w_hat64

BACKENDS = pyonebit.backends()


def problem(rng, N=40, K=256, M=3, group_size=64):
    w = rng.standard_normal((N, K)).astype(np.float32)
    wq, s, b = pyonebit.quantize(w, group_size=group_size)
    x = rng.standard_normal((M, K)).astype(np.float32)
    return x, wq, s, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_special_values_in_x(rng, backend, value):
    """NaN propagates exactly as through the dequantized reference. An
    infinity gives the reference's infinity or NaN: kernels that use the
    per-group algebra (scale * sum(x where bit) + bias * sum(x)) can meet
    inf - inf where the reference meets only inf. Rows without the special
    value are untouched."""
    x, wq, s, b = problem(rng)
    x[1, 7] = value
    what = w_hat64(wq, s, b, 1, 64)
    with np.errstate(all="ignore"):
        ref = x.astype(np.float64) @ what.T
    y = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend)
    if np.isnan(value):
        assert np.array_equal(np.isnan(y), np.isnan(ref))
    else:
        assert np.all(np.isinf(ref[1]))
        assert np.all((y[1] == ref[1]) | np.isnan(y[1]))
    assert_matmul_close(y[[0, 2]], x[[0, 2]], what, True, np.dtype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_python_threads_match_serial_calls(rng, backend):
    x, wq, s, b = problem(rng, N=96, K=512, M=5)
    xs = [x * (i + 1) for i in range(8)]
    serial = [pyonebit.quantized_matmul(v, wq, s, b, group_size=64, backend=backend) for v in xs]
    results = [None] * 8

    def call(i):
        for _ in range(5):
            results[i] = pyonebit.quantized_matmul(xs[i], wq, s, b, group_size=64, backend=backend)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_are_deterministic(rng, backend):
    x, wq, s, b = problem(rng, N=70, K=1024, M=33)
    first = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend)
    for _ in range(3):
        np.testing.assert_array_equal(
            pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend), first)


def test_set_num_threads_while_calls_run(rng, cpu_settings_restored):
    x, wq, s, b = problem(rng, N=512, K=1024, M=8)
    want = pyonebit.quantized_matmul(x, wq, s, b, group_size=64)
    stop = threading.Event()
    bad = []

    def caller():
        while not stop.is_set():
            y = pyonebit.quantized_matmul(x, wq, s, b, group_size=64)
            if not np.array_equal(y, want):
                bad.append(y)

    workers = [threading.Thread(target=caller) for _ in range(3)]
    for t in workers:
        t.start()
    for n in [1, 3, 2, 4, 1, 2] * 3:
        pyonebit.set_num_threads(n)
    stop.set()
    for t in workers:
        t.join()
    assert not bad


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_stays_flat_over_many_calls(rng, backend):
    # The emulator runs every simulated thread of a dispatch: 10 ms per call
    # at this size with M = 2 (its matrix-matrix kernel), 0.9 ms with
    # M = 1 and a quarter of the weight, which keeps the 11,000 calls near
    # 10 s while every call still goes through the same backend, planner
    # and buffer code.
    emulated = backend.endswith("-emulated")
    x, wq, s, b = problem(rng, N=32 if emulated else 64, K=128 if emulated else 256, M=1 if emulated else 2)
    calls = 10_000

    def burst(n):
        for _ in range(n):
            pyonebit.quantized_matmul(x, wq, s, b, group_size=64, backend=backend)
            pyonebit.quantize(x[:, :128], group_size=32)

    burst(calls // 10)  # warm-up: pools, caches, lazily built tables
    before = _rss_kib()
    burst(calls)
    grown = _rss_kib() - before
    # 4 MiB over 10,000 calls: any leak of 420 bytes or more per call shows
    # (an output array is 512 bytes on the cpu backend here). The margin
    # absorbs allocator noise.
    assert grown < 4096, f"resident memory grew by {grown} KiB over {calls} calls"


@pytest.mark.parametrize("transpose", [True, False])
def test_more_than_2_31_weights(transpose):
    """N*K above 2^31 elements: 64-bit index arithmetic all the way. The
    packed weights are made directly (random codes), not by quantizing a
    9 GB float matrix; rows past element 2^31 are checked against the model."""
    rng = np.random.default_rng(7)
    gs = 128
    rows, packed = (65537, 32768) if transpose else (32768, 65664)  # rows x packed > 2^31
    assert rows * packed > 2**31
    wq = rng.integers(0, 2**32, size=(rows, packed // 32), dtype=np.uint32)
    s = rng.uniform(0.5, 1.5, size=(rows, packed // gs)).astype(np.float16)
    b = rng.uniform(-1, 0, size=(rows, packed // gs)).astype(np.float16)
    K = packed if transpose else rows
    x = rng.standard_normal((1, K)).astype(np.float32)
    y = pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose, group_size=gs, backend="cpu")
    if transpose:  # the first rows and the rows whose elements lie past 2^31
        pick = [0, 1, rows - 2, rows - 1]
        what = w_hat64(wq[pick], s[pick], b[pick], 1, gs)
        assert_matmul_close(y[:, pick], x, what, True, np.dtype(np.float32))
    else:  # every output column sums over rows that lie past element 2^31
        cols = slice(packed - gs, packed)
        what = w_hat64(wq[:, (packed - gs) // 32:], s[:, -1:], b[:, -1:], 1, gs)
        assert_matmul_close(y[:, cols], x, what, False, np.dtype(np.float32))
