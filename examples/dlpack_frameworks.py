"""A pyonebit layer on JAX and PyTorch tensors (CPU), through DLPack.

    python examples/dlpack_frameworks.py

pyonebit takes any CPU tensor NumPy can view without a copy (``__dlpack__``;
bfloat16 JAX arrays through ``__array__``, which is a view too) and returns a
NumPy array, which the framework views back without a copy
(``jax.numpy.from_dlpack``, ``torch.from_numpy``). Frameworks that are not
installed are skipped (pip install jax / torch).
"""
import numpy as np

import pyonebit

rng = np.random.default_rng(0)
weight = rng.standard_normal((64, 256)).astype(np.float32)
layer = pyonebit.QuantizedLinear.from_float(weight)  # float32 scales
w_hat = layer.dequantize()


def check(name, x_np, y_np):
    expected = x_np.astype(np.float64) @ w_hat.T
    error = np.max(np.abs(y_np - expected)) / np.max(np.abs(expected))
    print(f"{name}: output {y_np.dtype} {y_np.shape}, max error {error:.1e} of the largest output")


try:
    import jax
    import jax.numpy as jnp
except ImportError:
    print("jax: not installed, skipped")
else:
    x = jnp.asarray(rng.standard_normal((4, 256)), dtype=jnp.float32)
    y = jnp.from_dlpack(layer(x))  # a JAX array on the CPU
    check("jax float32", np.asarray(x), np.asarray(y))
    x16 = x.astype(jnp.bfloat16)  # NumPy's DLPack refuses bfloat16; __array__ is a view
    layer_bf16 = pyonebit.QuantizedLinear.from_float(jnp.asarray(weight, dtype=jnp.bfloat16))
    y16 = layer_bf16(x16)
    print(f"jax bfloat16: output {y16.dtype} {y16.shape} (layer and input both bfloat16)")

try:
    import torch
except ImportError:
    print("torch: not installed, skipped")
else:
    x = torch.randn(4, 256, dtype=torch.float32)
    y = torch.from_numpy(layer(x))  # shares the result's memory
    check("torch float32", x.numpy(), y.numpy())
