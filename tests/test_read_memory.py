"""The streaming read the decode benchmark times (pyonebit.cli.bench_decode)
reads every byte once: its result is the xor of all of them, for any size
and alignment and any number of threads."""
import numpy as np
import pytest

import pyonebit
from pyonebit import _core


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("size, offset", [(0, 0), (1, 0), (127, 3), (4096, 0), (4096 * 3 + 17, 5),
                                          (1 << 20, 1)])
def test_read_memory_reads_every_byte(threads, size, offset):
    old = pyonebit.get_num_threads()
    pyonebit.set_num_threads(threads)
    try:
        rng = np.random.default_rng(size)
        buf = rng.integers(0, 256, size + offset, dtype=np.uint8)[offset:]
        want = int(np.bitwise_xor.reduce(buf)) if size else 0
        assert _core._read_memory(buf) == want
        if size:  # a change anywhere changes the result
            buf[size // 2] ^= 0x40
            assert _core._read_memory(buf) == want ^ 0x40
    finally:
        pyonebit.set_num_threads(old)
