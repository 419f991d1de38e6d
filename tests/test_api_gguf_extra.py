"""gguf is an optional dependency (pyonebit[gguf]): without it pyonebit
imports and multiplies, MLX checkpoints convert, and a GGUF function raises
ImportError naming the extra."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

WITHOUT_GGUF = "import sys\nsys.modules['gguf'] = None  # import gguf now raises ImportError\n"


def run(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this tree's pyonebit, run from elsewhere
    return subprocess.run([sys.executable, "-c", WITHOUT_GGUF + textwrap.dedent(code)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)


def test_core_works_without_gguf(tmp_path):
    r = run("""
        import numpy as np
        import pyonebit
        layer = pyonebit.QuantizedLinear.from_float(np.ones((8, 128), np.float32))
        pyonebit.save_mlx('m', {'l': layer}, config={})
        print(pyonebit.load_mlx('m').layers['l'](np.ones(128, np.float32)).shape)
        """, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "(8,)", r.stderr


@pytest.mark.parametrize("call", ["pyonebit.load_gguf('x.gguf')", "pyonebit.save_gguf('x.gguf', {})",
                                  "import pyonebit.io.gguf_metadata", "import pyonebit.io._gguf_reader"])
def test_gguf_functions_name_the_extra(tmp_path, call):
    r = run(f"import pyonebit\n{call}\n", tmp_path)
    assert r.returncode == 1
    assert ("ImportError: pyonebit's GGUF support (load_gguf, save_gguf, convert to .gguf, info on a "
            ".gguf file) needs the gguf package: pip install 'pyonebit[gguf]'") in r.stderr, r.stderr


def test_gguf_is_an_extra_and_in_the_test_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("gguf") for d in project["dependencies"])
    assert project["optional-dependencies"]["gguf"] == ["gguf>=0.19.0"]
    assert "gguf>=0.19.0" in project["optional-dependencies"]["test"]
