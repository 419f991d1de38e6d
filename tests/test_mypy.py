"""Type checking: mypy (configured in pyproject.toml) reports no error in
pyonebit, the binding's stub lists every name the compiled module defines,
and a user's script sees pyonebit's types, not Any."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pyonebit
from pyonebit import _core

ROOT = Path(__file__).resolve().parents[1]


def mypy(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", os.devnull, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_package_is_clean():
    r = mypy(cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_has_every_name_of_the_binding():
    tree = ast.parse((ROOT / "pyonebit" / "_core.pyi").read_text())
    stubbed = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    compiled = {name for name, obj in vars(_core).items()
                if callable(obj) and getattr(obj, "__module__", None) == "pyonebit._core"
                and not isinstance(obj, type)}
    assert stubbed == compiled


def test_a_user_script_sees_the_types(tmp_path):
    (tmp_path / "user.py").write_text(
        "import numpy as np\n"
        "import pyonebit\n"
        "layer = pyonebit.QuantizedLinear.from_float(np.ones((8, 128), np.float32))\n"
        "reveal_type(layer.take)\n"
        "bits: str = layer.bits\n")  # an int: mypy must object
    env = dict(os.environ, MYPYPATH=str(ROOT))  # the source tree: a wheel ships the same files
    r = mypy("--follow-imports=silent", "user.py", cwd=tmp_path, env=env)  # as for an installed package
    out = r.stdout
    assert 'Revealed type is "def (ids: ' in out, out
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in out
    assert "Cannot find implementation or library stub" not in out and r.returncode == 1


def test_py_typed_ships():
    assert (Path(pyonebit.__file__).parent / "py.typed").exists()
