"""The CPU worker pool in forked processes, and a thread count the system
refuses. Each case runs in its own interpreter with a timeout: a pool whose
workers did not survive fork() hangs its first job instead of failing."""
import subprocess
import sys
import textwrap

import pytest

from conftest import run_in_process_group

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork() and /proc")

# One multi-threaded call in the parent, so its pool exists with live workers.
PRELUDE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import pyonebit
    from pyonebit import _testing
    _testing.set_parallel_threshold(0)  # every call goes through the pool
    pyonebit.set_num_threads(4)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 512)).astype(np.float32)
    wq, s, b = pyonebit.quantize(w, 64, 1)
    x = rng.standard_normal((8, 512)).astype(np.float32)
    def call():
        return pyonebit.quantized_matmul(x, wq, s, b, group_size=64, bits=1)
    expected = call()
""")


def run(code, timeout=60):
    """Runs PRELUDE + code in its own process group, so that a hang kills the
    forked children too, not only the interpreter the test started."""
    try:
        return run_in_process_group([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s (a forked child waiting for workers that do not exist)")


def test_call_in_forked_child_and_parent():
    out = run("""
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(call(), expected) and pyonebit.get_num_threads() == 4
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert np.array_equal(call(), expected)  # the parent keeps its pool
        print("ok")
    """)
    assert out.returncode == 0 and out.stdout == "ok\n", out


def test_multiprocessing_fork_start_method():
    out = run("""
        import multiprocessing as mp
        def child(_):
            return bool(np.array_equal(call(), expected))
        with mp.get_context("fork").Pool(2) as p:
            assert all(p.map(child, range(4)))
        assert np.array_equal(call(), expected)
        print("ok")
    """)
    assert out.returncode == 0 and out.stdout == "ok\n", out


def test_refused_thread_count_leaves_the_pool_as_it_was():
    # An address-space cap makes thread stacks (8 MiB each) run out long
    # before 1000 threads start; the pool must be back at 4 threads, working.
    out = run("""
        import resource
        vm = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, resource.RLIM_INFINITY))
        try:
            pyonebit.set_num_threads(1000)
        except RuntimeError as e:
            print(e)
        else:
            sys.exit("set_num_threads(1000) did not fail under the cap")
        assert pyonebit.get_num_threads() == 4, pyonebit.get_num_threads()
        assert np.array_equal(call(), expected)
    """)
    assert out.returncode == 0, out
    assert out.stdout.startswith("[set_num_threads] could not start 1000 threads ("), out
    assert out.stdout.rstrip().endswith("still using 4"), out
