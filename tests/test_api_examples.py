"""The Python examples run as a user runs them (from another directory,
against this tree's pyonebit) and print what their docstrings promise."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name, tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, ROOT / "examples" / name, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_checkpoint_layer(tmp_path):
    r = run_example("checkpoint_layer.py", tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "saved ['config.json', 'model.safetensors']"
    assert "embedding rows (1, 3, 256), projection (1, 3, 512)" in r.stdout
    assert lines[-1] == "ok"


def test_checkpoint_layer_on_a_saved_checkpoint(tmp_path):
    import numpy as np

    import pyonebit

    layer = pyonebit.QuantizedLinear.from_float(np.ones((8, 128), np.float16), bits=4, group_size=64)
    pyonebit.save_mlx(tmp_path / "m", {"model.q_proj": layer})
    r = run_example("checkpoint_layer.py", tmp_path, str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    assert "model.q_proj: 128 -> 8, 4 bit, affine, output float16 (1, 8)" in r.stdout


def test_dlpack_frameworks(tmp_path):
    r = run_example("dlpack_frameworks.py", tmp_path)
    assert r.returncode == 0, r.stderr
    for framework in ("jax", "torch"):
        lines = [line for line in r.stdout.splitlines() if line.startswith(framework)]
        assert lines, r.stdout  # ran, or said it was skipped
        for line in lines:
            if "skipped" not in line and "max error" in line:
                assert float(line.rsplit("max error ", 1)[1].split()[0]) < 1e-5, line
