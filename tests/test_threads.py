"""The CPU thread pool: thread counts, validation, the environment variable
that forces a kernel variant, and concurrent calls from Python threads."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import pyonebit
from pyonebit import _testing

ISAS = pyonebit.cpu_kernels()["supported"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("cpu_settings_restored")


def problem(rng, M, N, K, transpose, bits):
    w = rng.standard_normal((N, K) if transpose else (K, N)).astype(np.float32)
    wq, s, b = pyonebit.quantize(w, 64, bits)
    x = rng.standard_normal((M, K)).astype(np.float32)
    return x, wq, s, b


@pytest.mark.parametrize("isa", ISAS)
def test_results_do_not_depend_on_thread_count(isa):
    # Every output element is computed by one task in a fixed order, so the
    # split over threads must not change a single bit.
    _testing.set_cpu_isa(isa)
    rng = np.random.default_rng(1)
    for transpose in (True, False):
        for bits in (1, 4):
            for M in (1, 5, 70):
                x, wq, s, b = problem(rng, M, 320, 256, transpose, bits)
                outs = []
                for n in (1, 2, 3, 4):
                    pyonebit.set_num_threads(n)
                    outs.append(pyonebit.quantized_matmul(x, wq, s, b, transpose=transpose,
                                                          group_size=64, bits=bits))
                for o in outs[1:]:
                    np.testing.assert_array_equal(o, outs[0])


def test_set_and_get():
    for n in (1, 3, 2):
        pyonebit.set_num_threads(n)
        assert pyonebit.get_num_threads() == n


@pytest.mark.parametrize("n", [0, -1])
def test_invalid_thread_count(n):
    with pytest.raises(ValueError, match=r"\[set_num_threads\] n must be >= 1"):
        pyonebit.set_num_threads(n)


@pytest.mark.parametrize("n", [1.5, "2", True])
def test_thread_count_must_be_int(n):
    with pytest.raises(TypeError):
        pyonebit.set_num_threads(n)


def test_concurrent_calls_from_python_threads():
    pyonebit.set_num_threads(2)
    rng = np.random.default_rng(2)
    cases = [problem(rng, M, 256, 512, t, 1) + (t,) for M in (1, 40) for t in (True, False)]
    expected = [pyonebit.quantized_matmul(x, wq, s, b, transpose=t, group_size=64)
                for x, wq, s, b, t in cases]
    errors = []

    def worker(seed):
        try:
            for i in range(6):
                j = (seed + i) % len(cases)
                x, wq, s, b, t = cases[j]
                out = pyonebit.quantized_matmul(x, wq, s, b, transpose=t, group_size=64)
                np.testing.assert_array_equal(out, expected[j])
                if seed == 0 and i == 3:
                    pyonebit.set_num_threads(3)  # resizing while others compute
        except Exception as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=120)


def test_default_is_available_cores():
    r = run_python("import pyonebit; print(pyonebit.get_num_threads())")
    assert r.returncode == 0, r.stderr
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert int(r.stdout) == expected


def test_env_var_forces_isa():
    code = "import pyonebit; print(pyonebit.cpu_kernels()['active'])"
    for isa in ("scalar", ISAS[0]):
        r = run_python(code, PYONEBIT_CPU_ISA=isa)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == isa
    r = run_python(code, PYONEBIT_CPU_ISA="bogus")
    assert r.returncode != 0
    assert "ValueError: [cpu] PYONEBIT_CPU_ISA='bogus' is not a CPU kernel of this build" in r.stderr


def test_resizing_between_calls():
    # A worker started by a resize must not take part in (or count itself
    # out of) a job that ran before it existed.
    rng = np.random.default_rng(4)
    x, wq, s, b = problem(rng, 3, 96, 128, True, 1)
    expected = pyonebit.quantized_matmul(x, wq, s, b, group_size=64)
    for i in range(60):
        pyonebit.set_num_threads(1 + (i * 7) % 4)
        np.testing.assert_array_equal(pyonebit.quantized_matmul(x, wq, s, b, group_size=64), expected)
