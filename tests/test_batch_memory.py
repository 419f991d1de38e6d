"""A product's memory does not grow with its number of broadcast batches
beyond the output itself: batch offsets are computed per batch from the
batch dims, not stored (16 bytes per batch made 1e8 batches peak at 3 GB)."""
import sys
import textwrap

import numpy as np
import pytest

import pyonebit
from conftest import run_in_process_group

# x (B, 1, 1, K) against W (B, 1, K): B * B output batches of one element.
CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import pyonebit
    B, K = int(sys.argv[1]), 32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 1, 1, K)).astype(np.float32)
    wq, s, b = pyonebit.quantize(rng.standard_normal((B, 1, K)).astype(np.float32), 32, 1)
    out = np.empty((B, B, 1, 1), np.float32)
    out.fill(0)  # touch every page before measuring
    pyonebit.set_num_threads(1)
    pyonebit.quantized_matmul(x[:1], wq, s, b, group_size=32, bits=1)  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pyonebit.quantized_matmul(x, wq, s, b, group_size=32, bits=1, out=out)
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    w_hat = pyonebit.dequantize(wq, s, b, group_size=32, bits=1).astype(np.float64)
    want = np.einsum("ik,jk->ij", x[:, 0, 0].astype(np.float64), w_hat[:, 0])
    err = float(np.max(np.abs(out[:, :, 0, 0] - want)))
    print(grew_kib, err)
""")


def test_broadcast_batches_take_no_memory_per_batch():
    B = 3000  # 9e6 output batches: 144 MB of stored offsets before the fix
    r = run_in_process_group([sys.executable, "-c", CHILD, str(B)], timeout=300)
    assert r.returncode == 0, r.stderr
    grew_kib, err = r.stdout.split()
    assert err and float(err) < 1e-3
    assert int(grew_kib) < 16 * 1024, f"peak memory grew by {int(grew_kib)} KiB during the product"


@pytest.mark.parametrize("backend", ["cpu", "metal-emulated"])
def test_broadcast_batches_index_every_operand(backend):
    # Batch dims (2, 1, 3) x (1, 4, 3) -> (2, 4, 3): each output batch reads its
    # own x and W matrices, however the dims broadcast.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 3, 5, 64)).astype(np.float32)
    w = rng.standard_normal((4, 1, 7, 64)).astype(np.float32)
    wq, s, b = pyonebit.quantize(w, 64, 1)
    got = pyonebit.quantized_matmul(x, wq, s, b, group_size=64, bits=1, backend=backend)
    w_hat = pyonebit.dequantize(wq, s, b, group_size=64, bits=1).astype(np.float64)
    want = np.matmul(x.astype(np.float64), np.swapaxes(w_hat, -1, -2))
    assert got.shape == (2, 4, 3, 5, 7)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
