"""python -m pyonebit as a user runs it: a new process each time (so a
traceback would show), the commands listed, and errors as one line, exit 2."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import pyonebit
from mlx_peer import mx, quantized, random_mx, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    # cwd and PYTHONPATH first: this checkout's pyonebit, not an installed one
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pyonebit", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(r, message):
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr == f"error: {message}\n"


def test_help_lists_every_command():
    r = cli("--help")
    assert r.returncode == 0
    assert "{demo,bench,convert,info}" in r.stdout
    for command in ("demo", "bench", "convert", "info"):
        assert f"\n    {command} " in r.stdout, command


def test_no_command_runs_the_demo():
    r = cli("--n", 64, "--k", 256, "--m", 1, "--repeats", 1)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pyonebit {pyonebit.__version__}: 1-bit affine quantized matmul demo")
    for backend in pyonebit.backends():
        assert f"\n{backend} " in r.stdout, backend


def test_info():
    r = cli("info")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    cpu = pyonebit.cpu_kernels()
    assert lines[0] == f"pyonebit {pyonebit.__version__}"
    assert lines[1] == f"backends: {', '.join(pyonebit.backends())} (best first)"
    assert lines[3] == (f"CPU kernels: compiled {', '.join(cpu['compiled'])}; active: {cpu['active']} "
                        f"(1-bit layers stored in the {pyonebit.cpu_preferred_layout(1)} layout)")
    assert lines[4] == f"threads: {pyonebit.get_num_threads()}"
    metal = lines[5]
    if "metal" in pyonebit.backends():
        assert metal == "Metal: available (backend 'metal')"
    elif not pyonebit.metal_stats()["built"]:
        assert metal.startswith("Metal: not built: Metal needs macOS on Apple silicon (this is ")
    if "metal-emulated" in pyonebit.backends() and "metal" not in pyonebit.backends():
        assert metal.endswith("the same Metal kernels run on the CPU emulator as backend "
                              "'metal-emulated' (a correctness check, slow)")


def test_info_describes_a_checkpoint(tmp_path, rng):
    t = {f"model.q.{k}": v for k, v in quantized(random_mx(rng, (8, 256), np.float16), 64, 2).items()}
    t["model.norm.weight"] = mx.ones((256,), dtype=mx.float16)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 64, "bits": 2}})
    r = cli("info", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-2:] == [
        f"checkpoint {tmp_path}: 1 quantized layers (0.00 MiB), 1 other tensors (0.00 MiB)",
        "  model.q: 8x256, 2-bit, group 64, affine, float16 scales",
    ]


def test_checkpoint_not_quantized_as_claimed(tmp_path, rng):
    t = {f"model.q.{k}": v for k, v in quantized(random_mx(rng, (8, 256), np.float16), 64, 2).items()}
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 64, "bits": 4}})
    assert_one_line_error(cli("info", tmp_path), (
        "[load_mlx] model.q.weight of shape (8, 16) packs 128 columns at 4 bits, but model.q.scales "
        "of shape (8, 4) covers 256 columns in groups of 64; config.json claims layer 'model.q' is "
        "quantized with bits=4, group_size=64, mode='affine': not quantized as claimed"))


def test_missing_files(tmp_path):
    assert_one_line_error(cli("info", tmp_path / "nowhere"),
                          f"[load_mlx] {tmp_path / 'nowhere'}: no such directory")
    assert_one_line_error(cli("convert", tmp_path / "nowhere", tmp_path / "out"),
                          f"[convert] {tmp_path / 'nowhere'}: no such file or directory")


def test_unsupported_dtype_and_shape(tmp_path):
    from safetensors.numpy import save_file

    src = tmp_path / "w.safetensors"
    save_file({"a.weight": np.zeros((4, 128), np.float64)}, str(src))
    assert_one_line_error(cli("convert", src, tmp_path / "out"), (
        f"[convert] tensor 'a.weight' in {src} has dtype F64; weights to quantize must be "
        "F32, F16, BF16"))
    save_file({"a.weight": np.zeros((4, 96), np.float32)}, str(src))
    assert_one_line_error(cli("convert", src, tmp_path / "out", "--group-size", 64), (
        f"[convert] {src}: nothing to quantize: no 2-D *.weight tensor has a last dimension that is "
        "a multiple of group_size=64"))


def test_bench_times_every_non_emulated_backend():
    r = cli("bench", "--shapes", "64x256", "--m", 1, "--bits", 1, "--repeats", 1, "--threads", 1,
            "--no-mlx")
    assert r.returncode == 0, r.stderr
    timed = [b for b in pyonebit.backends() if not b.endswith("-emulated")]
    skipped = [b for b in pyonebit.backends() if b.endswith("-emulated")]
    for b in skipped:
        assert (f"skipping {b}: it runs the kernels on pyonebit's CPU emulator, a correctness "
                "check far too slow to time") in r.stdout
    rows = [line.split() for line in r.stdout.splitlines() if line.lstrip().startswith("64x256")]
    assert sorted(row[3] for row in rows) == sorted(timed)


def test_bench_rounds_report_the_spread_of_the_speedup():
    r = cli("bench", "--shapes", "64x256", "--m", 1, "--bits", 1, "--repeats", 1, "--threads", 1,
            "--rounds", 3, "--no-mlx", "--markdown")
    assert r.returncode == 0, r.stderr
    assert "median of 1, median over 3 rounds" in r.stdout
    cpu_row = next(line for line in r.stdout.splitlines() if "| cpu |" in line)
    assert re.search(r"\| [0-9.]+x \([0-9.]+-[0-9.]+\) \|$", cpu_row), cpu_row
    bad = cli("bench", "--rounds", 0)
    assert bad.returncode == 2 and "--rounds and --repeats must be at least 1" in bad.stderr


def test_convert_shows_progress_on_a_terminal(tmp_path, rng):
    import fcntl
    import pty
    import struct
    import termios

    save_checkpoint(tmp_path / "in", {"a.weight": random_mx(rng, (64, 1024), np.float32)}, {})
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "pyonebit", "convert", tmp_path / "in", tmp_path / "out"],
                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=120)
    os.close(stderr)
    shown = os.read(terminal, 65536).decode()
    os.close(terminal)
    assert r.returncode == 0
    assert "convert: 100%" in shown and "256k/256k" in shown, shown


def test_an_unbuilt_checkout_says_how_to_build_it(tmp_path):
    # A clone before `pip install -e .`: the package without its compiled _core.
    import shutil

    package = tmp_path / "clone" / "pyonebit"
    shutil.copytree(ROOT / "pyonebit", package,
                    ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "pyonebit"], cwd=package.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: pyonebit's compiled extension (pyonebit._core) is missing "
                           f"from {package}: "), r.stderr
    assert f"Build it in {package.parent} with `pip install -e .`" in last
    assert "run Python from another directory" in last
