"""The MiniLM encoder's Linear layers quantized with pyonebit, run three ways
over the same quantized weights W_hat:

* dequantized_linears(..., float32): x @ W_hat.T in NumPy float32 (BLAS),
  the answer the packed kernels must reproduce;
* dequantized_linears(..., float64): the same in float64, the exact answer up
  to float64 rounding, against which float32 noise is measured;
* packed_linears(..., backend): pyonebit's kernels on the packed bits.
"""
import numpy as np

import pyonebit


def quantize_linears(model, bits, mode, group_size=128):
    """{name: (wq, scales, biases, bias)} for every encoder Linear."""
    out = {}
    for name in model.linear_names():
        weight, bias = model.linear_weight(name)
        wq, scales, biases = pyonebit.quantize(weight, group_size=group_size, bits=bits, mode=mode)
        out[name] = (wq, scales, biases, bias)
    return out


def dequantized_linears(quantized, bits, mode, dtype, group_size=128):
    def make(wq, scales, biases, bias):
        w_hat = pyonebit.dequantize(wq, scales, biases, group_size=group_size, bits=bits, mode=mode)
        wt, b = w_hat.T.astype(dtype), bias.astype(dtype)
        return lambda x: x @ wt + b

    return {name: make(*q) for name, q in quantized.items()}


def packed_linears(quantized, bits, mode, backend, group_size=128, observe=None):
    """observe(name, x, kernel_output), when given, sees every kernel result
    before the bias is added."""
    def make(name, wq, scales, biases, bias):
        def apply(x):
            y = pyonebit.quantized_matmul(x, wq, scales, biases, group_size=group_size,
                                          bits=bits, mode=mode, backend=backend)
            if observe is not None:
                observe(name, x, y)
            return y + bias

        return apply

    return {name: make(name, *q) for name, q in quantized.items()}


class KernelErrorMonitor:
    """An `observe` hook for packed_linears: checks every kernel result
    against the exact product x @ W_hat.T in float64 on the same (real model)
    activations, and records the worst error as a fraction of the bound
    pyonebit's kernels promise (README, tests/test_cpu_kernels.py):
    8 sqrt(K) 2^-24 sum|x w_hat|."""

    def __init__(self, quantized, bits, mode, group_size=128):
        self.w_hat64 = {
            name: pyonebit.dequantize(wq, scales, biases, group_size=group_size, bits=bits,
                                      mode=mode).astype(np.float64)
            for name, (wq, scales, biases, _) in quantized.items()
        }
        self.worst_ratio = 0.0
        self.worst_layer = None

    def __call__(self, name, x, kernel_out):
        w = self.w_hat64[name]
        x64 = x.astype(np.float64)
        exact = x64 @ w.T
        bound = 8 * np.sqrt(x.shape[-1]) * 2.0**-24 * (np.abs(x64) @ np.abs(w).T)
        ratio = float((np.abs(kernel_out - exact) / np.maximum(bound, 1e-30)).max())
        if ratio > self.worst_ratio:
            self.worst_ratio, self.worst_layer = ratio, name
