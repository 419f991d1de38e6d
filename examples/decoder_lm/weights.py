"""The weight sets the runner can use, each a dict name -> linear:

* "float": the file's values as float32 (what llama.cpp's blocks decode to).
* "gguf": the file's own Q4_1 / Q8_0 blocks, packed (affine 4 / 8 bit, group 32).
* (bits, mode): every block matrix re-quantized by pyonebit from the float
  values, group 128 where in_features allows it, else 64 (576 = 4.5 x 128);
  the tied embedding / output matrix stays the file's Q8_0, packed.

`dequantized(linears)` holds the same weights expanded to floats, for the
packed-vs-dequantized comparison.
"""
import numpy as np

import pyonebit
from gguf_llama import EMBEDDING
from model import Dense

GROUP_SIZE = 128
CONFIGS = {"q1-affine": (1, "affine"), "q1-symmetric": (1, "symmetric"),
           "q2-affine": (2, "affine"), "q4-affine": (4, "affine")}


def group_size_for(in_features, preferred=GROUP_SIZE):
    """The largest supported group size <= preferred that divides in_features."""
    for g in sorted(pyonebit.supported_group_sizes(), reverse=True):
        if g <= preferred and in_features % g == 0:
            return g
    raise ValueError(f"in_features {in_features} is divisible by no supported group size")


def float_linears(ckpt, dtype=np.float32):
    return {n: Dense(ckpt.float_weight(n), dtype) for n in ckpt.linear_names()}


def native_linears(ckpt, backend=None):
    return {n: ckpt.native_layer(n, backend) for n in ckpt.linear_names()}


def quantized_linears(ckpt, bits, mode, backend=None, group_size=GROUP_SIZE, names=None):
    """`names` (default all) limits the set, e.g. to a model's first blocks."""
    names = ckpt.linear_names() if names is None else names
    layers = {EMBEDDING: ckpt.native_layer(EMBEDDING, backend)}
    for n in names:
        if n == EMBEDDING:
            continue
        w = ckpt.float_weight(n)
        layers[n] = pyonebit.QuantizedLinear.from_float(w, bits=bits, mode=mode, backend=backend,
                                                        group_size=group_size_for(w.shape[1], group_size))
    return layers


def weight_set(ckpt, name, backend=None, group_size=GROUP_SIZE):
    """A named set: "float", "gguf", or a key of CONFIGS (re-quantized at
    `group_size`, or the largest supported size below it that divides a
    matrix's in_features)."""
    if name == "float":
        return float_linears(ckpt)
    if name == "gguf":
        return native_linears(ckpt, backend)
    if name in CONFIGS:
        return quantized_linears(ckpt, *CONFIGS[name], backend=backend, group_size=group_size)
    raise ValueError(f"weights must be 'float', 'gguf' or one of {list(CONFIGS)}, got {name!r}")


def dequantized(linears, dtype=np.float32):
    """The same weights as floats: each layer dequantized in float32 (exact
    for float32 scales) and then held in `dtype`."""
    return {n: Dense(layer.dequantize(np.float32), dtype) for n, layer in linears.items()}


def on_backend(linears, backend):
    """The same packed weights on another backend."""
    return {n: pyonebit.QuantizedLinear(l.wq, l.scales, l.biases, group_size=l.group_size, bits=l.bits,
                                        mode=l.mode, backend=backend) for n, l in linears.items()}
