"""Save, load and run quantized layers with NumPy only.

    python examples/checkpoint_layer.py            # a small seeded model
    python examples/checkpoint_layer.py MODEL_DIR  # an MLX quantized checkpoint

Without an argument: quantizes a seeded two-layer model to 1 bit, saves it as
an MLX checkpoint (save_mlx), loads it back (load_mlx), runs a layer, looks
up embedding rows (take) and checks the product against the exact weights
(dequantize to float32). Exits non-zero if a check fails. With MODEL_DIR:
lists its layers and runs each on a random input.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

import pyonebit


def run_checkpoint(directory):
    checkpoint = pyonebit.load_mlx(directory)
    print(checkpoint)
    rng = np.random.default_rng(0)
    for name, layer in checkpoint.layers.items():
        x = rng.standard_normal((1, layer.in_features)).astype(layer.scales.dtype)
        y = layer(x)
        print(f"{name}: {layer.in_features} -> {layer.out_features}, {layer.bits} bit, "
              f"{layer.mode}, output {y.dtype} {y.shape}")


def demo():
    rng = np.random.default_rng(0)
    embed = rng.standard_normal((1000, 256)).astype(np.float16)
    proj = rng.standard_normal((512, 256)).astype(np.float32)
    layers = {"embed_tokens": pyonebit.QuantizedLinear.from_float(embed, group_size=64),
              "proj": pyonebit.QuantizedLinear.from_float(proj, np.zeros(512, np.float32))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        pyonebit.save_mlx(path, layers, {"norm.weight": np.ones(256, np.float32)},
                          {"model_type": "example", "hidden_size": 256})
        print(f"saved {sorted(p.name for p in path.iterdir())}")
        loaded = pyonebit.load_mlx(path)
    print(loaded, "|", loaded.layers["proj"])

    h = loaded.layers["embed_tokens"].take(np.array([[1, 42, 999]]), dtype=np.float32)  # (1, 3, 256)
    y = loaded.layers["proj"](h)  # (1, 3, 512), float32
    exact = h @ loaded.layers["proj"].dequantize(np.float32).T
    error = float(np.max(np.abs(y - exact) / (np.abs(h) @ np.abs(loaded.layers["proj"].dequantize(np.float32)).T)))
    print(f"embedding rows {h.shape}, projection {y.shape}; max relative error vs "
          f"dequantized weights {error:.2e}")
    print(f"the projection's weight: {layers['proj'].nbytes} bytes packed, {proj.nbytes} as float32")
    if not error < 1e-5:
        print("error: the product is off", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_checkpoint(sys.argv[1])
    else:
        sys.exit(demo())
