"""Checks an installed pyonebit (a wheel in a fresh environment; run by
cibuildwheel and tests/test_wheel.py): the installed copy, not a source
tree, with its type information, computing a right product."""
from pathlib import Path

import numpy as np

import pyonebit

package = Path(pyonebit.__file__).parent
assert "site-packages" in package.parts, f"imported {package}, not an installed copy"
assert (package / "py.typed").is_file() and (package / "_core.pyi").is_file(), "type information missing"
# The subpackages ship too: the file formats (load_mlx's module) and the command line.
from pyonebit.cli.main import build_parser  # noqa: E402
from pyonebit.io.mlx_checkpoint import load_mlx  # noqa: E402

assert load_mlx is pyonebit.load_mlx and build_parser().prog == "python -m pyonebit"

rng = np.random.default_rng(0)
layer = pyonebit.QuantizedLinear.from_float(rng.standard_normal((64, 256)).astype(np.float32))
x = rng.standard_normal((3, 256)).astype(np.float32)
w = layer.dequantize(np.float64)
error = np.max(np.abs(layer(x) - x @ w.T) / (np.abs(x) @ np.abs(w).T))
assert error < 1e-6, f"relative error {error}"
print(f"pyonebit {pyonebit.__version__} from {package}: backends {pyonebit.backends()}, "
      f"CPU kernel {pyonebit.cpu_kernels()['active']}, relative error {error:.1e}: ok")
