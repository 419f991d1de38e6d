"""python -m pyonebit as a user runs it: a new process each time (so a
traceback would show), the commands listed, and errors as one line, exit 2."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyonebit
from pyonebit.cli import machine as _cli_machine
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
    assert lines[2].startswith(f"CPU: {_cli_machine.cpu_model()} (")
    assert lines[-1] == _cli_machine.numpy_line()
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
    assert r.stderr == "".join(f"bench: step {i}/3: 64x256 M=1 round {i}/3\n"  # never silent
                               for i in (1, 2, 3))


def test_bench_rounds_report_the_spread_of_the_speedup():
    r = cli("bench", "--shapes", "64x256", "--m", 1, "--bits", 1, "--repeats", 1, "--threads", 1,
            "--rounds", 3, "--no-mlx", "--markdown")
    assert r.returncode == 0, r.stderr
    assert "median of 1, median over 3 rounds" in r.stdout
    cpu_row = next(line for line in r.stdout.splitlines() if "| cpu |" in line)
    assert re.search(r"\| [0-9.]+x \([0-9.]+-[0-9.]+\)( !)? \|$", cpu_row), cpu_row


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
    # As on a machine where pyonebit is not installed: -S skips the .pth files,
    # so an editable install's import hook (which would supply this checkout's
    # _core to the copy) is not there; NumPy still comes from site-packages.
    import site

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(site.getsitepackages()))
    r = subprocess.run([sys.executable, "-S", "-m", "pyonebit"], cwd=package.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: pyonebit's compiled extension (pyonebit._core) is missing "
                           f"from {package}: "), r.stderr
    assert f"Build it in {package.parent} with `pip install -e .`" in last
    assert "run Python from another directory" in last


def test_version():
    r = cli("--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"pyonebit {pyonebit.__version__}\n", "")


def test_demo_rounds_show_a_range_on_every_row():
    for m in (["1,2"], ["1", "2"]):  # bench's form and the space-separated one
        r = cli("demo", "--n", 64, "--k", 256, "--m", *m, "--repeats", 1, "--rounds", 2)
        assert r.returncode == 0, r.stderr
        rows = [line for line in r.stdout.splitlines() if line.split()[:1] in [[b] for b in
                                                                             pyonebit.backends()]]
        assert sorted((row.split()[0], row.split()[1]) for row in rows) == sorted(
            (b, m) for b in pyonebit.backends() for m in "12")
        for row in rows:
            if row.split()[0].endswith("-emulated"):
                assert re.search(r" [0-9.]+ (us|ms|s) \(1 run\) .* emulated ", row), row
            else:  # pyonebit, NumPy and speed-up: each a median and its range
                assert len(re.findall(r"[0-9.]+(?: (?:us|ms|s)|x) \([0-9.]+-[0-9.]+\)", row)) == 3, row
        assert "times: median over 2 rounds (min-max), each round the median of 1 calls" in r.stdout
        assert re.search(r"^machine: .+ \(.+, [0-9]+ logical CPUs\)$", r.stdout, re.M)
        assert re.search(r"^NumPy [0-9.]+.*, BLAS: .+$", r.stdout, re.M)


@pytest.mark.parametrize("args, message", [
    (["bench", "--shapes", "foo"], "--shapes: 'foo' is neither a shape name (attn_proj, ffn_gate, "
     "ffn_down) nor a size NxK of positive integers such as 4096x4096 (see python -m pyonebit bench "
     "--help)"),
    (["bench", "--m", "1,x"], "--m: expected positive integers separated by commas, such as 1,32; "
     "got '1,x' (see python -m pyonebit bench --help)"),
    (["bench", "--rounds", "0"], "--rounds: expected a positive integer, got '0' (see python -m "
     "pyonebit bench --help)"),
    (["demo", "--m", "0"], "--m: expected positive integers separated by commas, such as 1,32; "
     "got '0' (see python -m pyonebit demo --help)"),
    (["--bogus"], "unrecognized arguments: --bogus (see python -m pyonebit --help)"),
])
def test_bad_arguments_are_one_line(args, message):
    assert_one_line_error(cli(*args), message)


def test_plot_without_matplotlib_fails_before_measuring(tmp_path):
    blocked = tmp_path / "matplotlib"  # an importable name that fails as a missing package does
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('matplotlib is blocked by the test')\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    r = subprocess.run([sys.executable, "-m", "pyonebit", "bench", "--plot", tmp_path / "p.png", "--shapes",
                        "64x256", "--m", "1", "--bits", "1", "--repeats", "1", "--rounds", "1", "--no-mlx"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert_one_line_error(r, "--plot needs matplotlib, which is not installed: pip install "
                             "matplotlib (see python -m pyonebit bench --help)")
    assert not (tmp_path / "p.png").exists()


def every_parser():
    import argparse

    from pyonebit.cli import bench
    from pyonebit.cli.main import build_parser

    top = build_parser()
    yield top
    yield bench.build_parser()
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from (p for name, p in action.choices.items() if name != "bench")


def test_every_command_and_option_has_help():
    parsers = list(every_parser())
    assert [p.prog for p in parsers] == ["python -m pyonebit", "python -m pyonebit bench"] + [
        f"python -m pyonebit {c}" for c in ("demo", "convert", "info")]
    for p in parsers:
        assert p.description, p.prog
        for action in p._actions:
            assert action.help, (p.prog, action.dest)
            # an option with a default names it, so --help documents every default
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert "default" in action.help, (p.prog, action.dest)
    for args in (["--help"], ["demo", "--help"], ["bench", "--help"], ["convert", "--help"],
                 ["info", "--help"]):
        r = cli(*args)
        assert r.returncode == 0 and r.stdout.startswith("usage: "), (args, r.stderr)
    assert "Time with the defaults: about " in cli("bench", "--help").stdout


def test_wide_ranges_are_flagged():
    from pyonebit.cli.demo import fmt_ratios, fmt_times

    assert fmt_times([1e-4, 1.2e-4, 1.4e-4]) == "120.0 us (100.0-140.0)"
    assert fmt_times([1e-4, 1.2e-4, 1.6e-4]) == "120.0 us (100.0-160.0) !"
    assert fmt_times([2.5]) == "2.5 s (1 run)"
    assert fmt_ratios([10.0, 16.0]) == "13.00x (10.00-16.00) !"
    assert fmt_ratios([10.0, 14.0]) == "12.00x (10.00-14.00)"


def test_machine_and_blas_are_named(monkeypatch):
    import types

    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            first = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines()
                         if ":" in line)
        first = {k.strip(): v.strip() for k, v in first.items()}
        name = first.get("model name") or first.get("Model") or first.get("Hardware")
        if name and "cpu family" in first:  # x86
            assert _cli_machine.cpu_model() == (f"{name}, family {first['cpu family']} model "
                                                f"{first['model']}")
        elif name:
            assert _cli_machine.cpu_model() == name
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # not installed
    built = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    assert _cli_machine.numpy_blas() == (f"{built['name']} {built['version']} (as built; pip install "
                                         "threadpoolctl to see the kernel and threads in use)")
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [
        {"user_api": "openmp", "internal_api": "openmp"},
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.27", "architecture": "Haswell",
         "num_threads": 2, "threading_layer": "pthreads"}]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    assert _cli_machine.numpy_blas() == "openblas 0.3.27, Haswell kernels, 2 threads (pthreads)"
