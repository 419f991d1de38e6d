"""MLX as the independent peer for the checkpoint tests: it writes the
checkpoints pyonebit reads and reads the ones pyonebit writes. These tests
need it: without MLX they fail with this message instead of skipping."""
import json

import numpy as np

from conftest import BF16

try:
    import mlx.core as mx
except ImportError as e:  # pragma: no cover - the environment, not the code
    raise ImportError("the checkpoint tests compare against MLX: pip install 'mlx[cpu]==0.32.4'") from e

MX_DTYPES = {np.dtype(np.float32): mx.float32, np.dtype(np.float16): mx.float16, BF16: mx.bfloat16}


def to_mx(a):
    if a.dtype == BF16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def to_np(a):
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16)).view(BF16)
    return np.array(a)


def random_mx(rng, shape, dtype):
    return mx.array(rng.standard_normal(shape).astype(np.float32)).astype(MX_DTYPES[np.dtype(dtype)])


def quantized(w, group_size, bits):
    """MLX's own quantization of an mx array: {weight, scales, biases}."""
    wq, scales, biases = mx.quantize(w, group_size=group_size, bits=bits)
    return {"weight": wq, "scales": scales, "biases": biases}


def save_checkpoint(directory, tensors, config, shards=1):
    """Write config.json and the tensors with mx.save_safetensors, in
    ``shards`` files with an index when more than one (as mlx-lm does)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    names = sorted(tensors)
    if shards == 1:
        mx.save_safetensors(str(directory / "model.safetensors"), tensors, metadata={"format": "mlx"})
        return
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        mx.save_safetensors(str(directory / file), part, metadata={"format": "mlx"})
        weight_map.update(dict.fromkeys(part, file))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
