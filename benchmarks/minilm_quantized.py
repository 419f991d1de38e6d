"""The MiniLM encoder's Linear layers as pyonebit.QuantizedLinear layers, run
three ways over the same quantized weights W_hat:

* dequantized_linears(..., float32): x @ W_hat.T + b in NumPy float32 (BLAS),
  the answer the packed kernels must reproduce;
* dequantized_linears(..., float64): the same in float64, the exact answer up
  to float64 rounding, against which float32 noise is measured;
* packed_linears(..., backend, path): the layers themselves, pyonebit's
  kernels on the packed bits, either all token rows in one call ("qmm", the
  prompt-processing path: matrix-matrix kernels) or one row per call ("qmv",
  the token-generation path: matrix-vector kernels), as the seed's KL table
  checks both.
"""
import numpy as np

import pyonebit


def quantize_linears(model, bits, mode, group_size=128):
    """{name: QuantizedLinear} for every encoder Linear."""
    return {
        name: pyonebit.QuantizedLinear.from_float(*model.linear_weight(name), bits=bits,
                                                  group_size=group_size, mode=mode)
        for name in model.linear_names()
    }


def with_weights(layer, wq=None, backend=None):
    """A copy of `layer` on `backend`, optionally with other packed bits."""
    return pyonebit.QuantizedLinear(layer.wq if wq is None else wq, layer.scales, layer.biases,
                                    layer.bias, group_size=layer.group_size, bits=layer.bits,
                                    mode=layer.mode, backend=backend)


def dequantized_linears(layers, dtype):
    def make(layer):
        wt, b = layer.dequantize().T.astype(dtype), layer.bias.astype(dtype)
        return lambda x: x @ wt + b

    return {name: make(layer) for name, layer in layers.items()}


PATHS = ("qmm", "qmv")


def packed_linears(layers, backend, observe=None, path="qmm"):
    """The layers on `backend`, called on all rows of x at once ("qmm") or on
    one row at a time ("qmv"); observe(name, x, y), when given, sees every
    call's input and result."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")

    def make(name, layer):
        def call(x):
            y = layer(x)
            if observe is not None:
                observe(name, x, y)
            return y

        if path == "qmm":
            return call
        return lambda x: np.concatenate([call(x[i:i + 1]) for i in range(len(x))])

    return {name: make(name, with_weights(layer, backend=backend)) for name, layer in layers.items()}


class KernelErrorMonitor:
    """An `observe` hook for packed_linears: checks every call against the
    exact x @ W_hat.T + b in float64 on the same (real model) activations, and
    records the worst error as a fraction of the bound pyonebit's kernels
    promise (README, tests/test_cpu_kernels.py), 8 sqrt(K) 2^-24 sum|x w_hat|,
    plus one float32 rounding of the result for the bias addition."""

    def __init__(self, layers):
        # W_hat in float32 is scale*q + bias rounded once: 2^-24 relative,
        # far inside the 8 sqrt(K) 2^-24 of the bound.
        self.exact = {name: (layer.dequantize().astype(np.float64), layer.bias.astype(np.float64))
                      for name, layer in layers.items()}
        self.reset()

    def reset(self):
        self.worst_ratio = 0.0
        self.worst_layer = None

    def __call__(self, name, x, y):
        w, b = self.exact[name]
        x64 = x.astype(np.float64)
        exact = x64 @ w.T + b
        bound = 2.0**-24 * (8 * np.sqrt(x.shape[-1]) * (np.abs(x64) @ np.abs(w).T) + np.abs(exact))
        ratio = float((np.abs(y - exact) / np.maximum(bound, 1e-30)).max())
        if ratio > self.worst_ratio:
            self.worst_ratio, self.worst_layer = ratio, name
