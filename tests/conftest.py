"""Shared helpers: an independent NumPy model of the format (unpacking and
float64 dequantization that do not use pyonebit), MLX conversions, the
matmul comparison (its error bound: tests/error_bound.py) and the native
builds shared by the whole session (tests/native_build.py)."""
import os
import signal
import subprocess
import zlib

import ml_dtypes
import numpy as np
import pytest

import pyonebit
from pyonebit import _testing
from error_bound import assert_within_bound

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float32), np.dtype(np.float16), BF16]
BITS = pyonebit.supported_bits()
GROUP_SIZES = pyonebit.supported_group_sizes()


def dtype_id(dt):
    return np.dtype(dt).name


def unpack_codes(wq, bits, length):
    """Codes of a packed array, shape (..., length): read wq as a little-endian
    bit stream, element k at bits [k*bits, (k+1)*bits)."""
    wq = np.ascontiguousarray(wq, dtype="<u4")
    lead = wq.shape[:-1]
    if wq.size == 0:
        return np.zeros(lead + (length,), np.uint32)
    by = wq.reshape(-1, wq.shape[-1]).view(np.uint8)
    stream = np.unpackbits(by, axis=1, bitorder="little")[:, : length * bits]
    weights = (1 << np.arange(bits, dtype=np.uint32)).astype(np.uint32)
    codes = (stream.reshape(-1, length, bits).astype(np.uint32) * weights).sum(-1)
    return codes.reshape(lead + (length,)).astype(np.uint32)


def w_hat64(wq, scales, biases, bits, group_size, mode="affine"):
    """The exact dequantized weights in float64: scale*q + bias (affine) or
    +/-scale (symmetric), laid out like the packed rows."""
    length = scales.shape[-1] * group_size
    q = unpack_codes(wq, bits, length).astype(np.float64)
    s = np.repeat(scales.astype(np.float64), group_size, axis=-1)
    if mode == "symmetric":
        return np.where(q > 0, s, -s)
    return s * q + np.repeat(biases.astype(np.float64), group_size, axis=-1)


def matmul64(x, what, transpose):
    x64 = x.astype(np.float64)
    w = np.swapaxes(what, -1, -2) if transpose else what
    if x.ndim == 1:
        return x64 @ w
    return np.matmul(x64, w)


def assert_matmul_close(out, x, what, transpose, out_dtype):
    """out within tests/error_bound.py's bound of the float64 product x @ what
    (transposed if transpose), for outputs of out_dtype."""
    ref = matmul64(x, what, transpose)
    absw = np.abs(np.swapaxes(what, -1, -2) if transpose else what)
    absx = np.abs(x.astype(np.float64))
    mag = absx @ absw if x.ndim == 1 else np.matmul(absx, absw)
    assert out.dtype == out_dtype
    assert out.shape == ref.shape
    assert_within_bound(out, ref, x.shape[-1], mag)


def random_weights(rng, shape, dtype):
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


@pytest.fixture
def rng(request):
    # One stream per test, stable across runs and independent of test order.
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture
def cpu_settings_restored():
    """For tests of the CPU kernels and threads: every call is split over the
    pool, however small (small calls normally stay on one thread), and the
    kernel variant and thread count are put back afterwards."""
    active = pyonebit.cpu_kernels()["active"]
    threads = pyonebit.get_num_threads()
    _testing.set_parallel_threshold(0)
    yield
    _testing.set_parallel_threshold(-1)
    _testing.set_cpu_isa(active)
    pyonebit.set_num_threads(threads)


def require_mlx():
    """MLX is the compatibility peer: in CI it must be present, never skipped."""
    try:
        import mlx.core as mx
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("mlx is not installed (pip install 'mlx[cpu]==0.32.4')")
    return mx


def run_in_process_group(argv, timeout, env=None):
    """Runs argv in a new session (its own process group) and returns the
    CompletedProcess; on a timeout the whole group is killed (forked children
    too, not only the process the test started) and TimeoutExpired raised."""
    proc = subprocess.Popen(argv, text=True, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def native_builds(tmp_path_factory):
    """The session's native builds (tests/native_build.py): one directory for
    the whole run, shared by pytest-xdist's workers (their base directories
    have a common parent), so each object is compiled once."""
    from native_build import NativeBuilds

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return NativeBuilds(shared / "native-builds")
