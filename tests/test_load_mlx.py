"""load_mlx against checkpoints MLX itself wrote: layer outputs against
mx.quantized_matmul, weights against mx.dequantize (bit for bit) and an
independent unpacking, and errors for checkpoints that are not what their
config claims."""
import json

import numpy as np
import pytest

import pyonebit
from conftest import BF16, assert_matmul_close, w_hat64
from mlx_peer import mx, quantized, random_mx, save_checkpoint, to_mx, to_np

IN_FEATURES = 256
# path: (out_features, dtype, group_size, bits, per-layer config entry or None)
LAYERS = {
    "model.layers.0.self_attn.q_proj": (32, BF16, 128, 1, None),  # the global setting
    "model.layers.0.mlp.up_proj": (48, np.float16, 64, 2, {"group_size": 64, "bits": 2}),
    "model.layers.0.mlp.down_proj": (16, np.float16, 32, 4,
                                     {"group_size": 32, "bits": 4, "mode": "affine"}),
    "lm_head": (40, np.float32, 128, 1, None),
}
BIASED = "model.layers.0.self_attn.q_proj"
FLOAT_LAYER = "model.layers.0.mlp.gate_proj"  # marked false: stays float


def build(rng):
    """(tensors, config) of a small model: quantized layers at 1/2/4 bits with
    bfloat16/float16/float32 scales, a bias, a layer marked false, a norm."""
    quant = {"group_size": 128, "bits": 1, FLOAT_LAYER: False}
    tensors = {}
    for p, (out, dtype, gs, bits, entry) in LAYERS.items():
        for k, v in quantized(random_mx(rng, (out, IN_FEATURES), dtype), gs, bits).items():
            tensors[f"{p}.{k}"] = v
        if entry is not None:
            quant[p] = entry
    tensors[f"{BIASED}.bias"] = random_mx(rng, (32,), BF16)
    tensors[f"{FLOAT_LAYER}.weight"] = random_mx(rng, (48, IN_FEATURES), BF16)
    tensors["model.norm.weight"] = random_mx(rng, (IN_FEATURES,), BF16)
    mx.eval(tensors)
    return tensors, {"model_type": "llama", "hidden_size": IN_FEATURES, "quantization": quant}


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and (a.view(np.uint8) == b.view(np.uint8)).all()


@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("key", ["quantization", "quantization_config"])
def test_layers_match_mlx(tmp_path, rng, shards, key):
    tensors, config = build(rng)
    config[key] = config.pop("quantization")
    save_checkpoint(tmp_path, tensors, config, shards)

    ckpt = pyonebit.load_mlx(tmp_path)

    assert ckpt.config == config
    assert sorted(ckpt.layers) == sorted(LAYERS)
    x = rng.standard_normal((3, IN_FEATURES)).astype(np.float32)
    for p, (out, dtype, gs, bits, _) in LAYERS.items():
        layer = ckpt.layers[p]
        assert (layer.in_features, layer.out_features, layer.bits, layer.group_size, layer.mode) == (
            IN_FEATURES, out, bits, gs, "affine"), p
        w, s, b = (tensors[f"{p}.{k}"] for k in ("weight", "scales", "biases"))
        assert layer.scales.dtype == np.dtype(dtype)
        assert same_bits(layer.dequantize(), to_np(mx.dequantize(w, s, b, group_size=gs, bits=bits))), p
        ref = to_np(mx.quantized_matmul(to_mx(x), w, s, b, transpose=True, group_size=gs, bits=bits))
        y = layer(x)
        if p == BIASED:
            ref = ref + to_np(tensors[f"{p}.bias"]).astype(np.float32)
            y = y - layer.bias.astype(np.float32)  # the matmul alone, for the exact bound below
        np.testing.assert_allclose(layer(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=p)
        what = w_hat64(to_np(w), to_np(s), to_np(b), bits, gs)
        assert_matmul_close(y, x, what, True, np.dtype(np.float32))
    assert sorted(ckpt.tensors) == [f"{FLOAT_LAYER}.weight", "model.norm.weight"]
    for name, value in ckpt.tensors.items():
        assert same_bits(value, to_np(tensors[name])), name


def test_backend_reaches_every_layer(tmp_path, rng):
    tensors, config = build(rng)
    save_checkpoint(tmp_path, tensors, config)
    backend = pyonebit.backends()[-1]
    ckpt = pyonebit.load_mlx(tmp_path, backend=backend)
    assert {layer.backend for layer in ckpt.layers.values()} == {backend}
    assert repr(ckpt) == "MLXCheckpoint(4 quantized layers, 2 other tensors)"


def test_override_without_keys_takes_mlx_defaults(tmp_path, rng):
    # mlx-lm passes a per-layer dict to to_quantized as is: missing keys get
    # MLX's defaults for the mode (64, 4), not the global group size and bits.
    p = "model.layers.0.mlp.up_proj"
    tensors = {f"{p}.{k}": v for k, v in quantized(random_mx(rng, (8, 128), np.float16), 64, 4).items()}
    save_checkpoint(tmp_path, tensors, {"quantization": {"group_size": 128, "bits": 1, p: {}}})
    layer = pyonebit.load_mlx(tmp_path).layers[p]
    assert (layer.group_size, layer.bits) == (64, 4)


# ---------------------------------------------------------------- errors

def one_layer(rng, p="model.q", gs=128, bits=1, dtype=np.float16):
    return {f"{p}.{k}": v for k, v in quantized(random_mx(rng, (8, 256), dtype), gs, bits).items()}


def test_missing_paths_raise_file_not_found(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match=r"\[load_mlx\] .*nowhere: no such directory"):
        pyonebit.load_mlx(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"config.json: no such file"):
        pyonebit.load_mlx(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"quantization": {"group_size": 128, "bits": 1}}))
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors file"):
        pyonebit.load_mlx(tmp_path)
    save_checkpoint(tmp_path, one_layer(rng), {"quantization": {"group_size": 128, "bits": 1}},
                    shards=2)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model-00002-of-00002.safetensors: no such file "
                                                 r"\(listed in .*model.safetensors.index.json\)"):
        pyonebit.load_mlx(tmp_path)


CLAIM = r"config.json claims layer 'model.q' is quantized with bits=1, group_size=128, " \
        r"mode='affine': not quantized as claimed"


def test_bits_differ_from_the_claim(tmp_path, rng):
    save_checkpoint(tmp_path, one_layer(rng, bits=2), {"quantization": {"group_size": 128, "bits": 1}})
    with pytest.raises(ValueError, match=r"\[load_mlx\] model.q.weight of shape \(8, 16\) packs 512 "
                                         r"columns at 1 bits, but model.q.scales of shape \(8, 2\) "
                                         r"covers 256 columns in groups of 128; " + CLAIM):
        pyonebit.load_mlx(tmp_path)


def test_group_size_differs_from_the_claim(tmp_path, rng):
    save_checkpoint(tmp_path, one_layer(rng, gs=64), {"quantization": {"group_size": 128, "bits": 1}})
    with pytest.raises(ValueError, match=r"model.q.scales of shape \(8, 4\) covers 512 columns "
                                         r"in groups of 128; " + CLAIM):
        pyonebit.load_mlx(tmp_path)


@pytest.mark.parametrize("case, message", [
    ("no scales", r"model.q.scales is missing \(found model.q.weight U32 \(8, 8\)\); "),
    ("no biases", r"model.q.biases is missing \(affine mode needs one bias per group\); "),
    ("float weight", r"model.q.weight has dtype F16, expected U32; "),
    ("int scales", r"model.q.scales has dtype I32, expected one of F32, F16, BF16; "),
    ("biases dtype", r"model.q.biases is F32 \(8, 2\) but model.q.scales is F16 \(8, 2\); "),
])
def test_tensors_differ_from_the_claim(tmp_path, rng, case, message):
    t = one_layer(rng)
    if case == "no scales":
        del t["model.q.scales"]
    elif case == "no biases":
        del t["model.q.biases"]
    elif case == "float weight":
        t["model.q.weight"] = random_mx(rng, (8, 256), np.float16)
    elif case == "int scales":
        t["model.q.scales"] = t["model.q.scales"].astype(mx.int32)
    elif case == "biases dtype":
        t["model.q.biases"] = t["model.q.biases"].astype(mx.float32)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 128, "bits": 1}})
    with pytest.raises(ValueError, match=r"\[load_mlx\] " + message + CLAIM):
        pyonebit.load_mlx(tmp_path)


def test_config_errors(tmp_path, rng):
    t = one_layer(rng)
    save_checkpoint(tmp_path, t, {"model_type": "llama"})
    with pytest.raises(ValueError, match=r"config.json has no 'quantization' \(or "
                                         r"'quantization_config'\) section"):
        pyonebit.load_mlx(tmp_path)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 128}})
    with pytest.raises(ValueError, match=r"'quantization' needs an integer 'bits', got None"):
        pyonebit.load_mlx(tmp_path)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})
    with pytest.raises(ValueError, match=r"layer 'model.q': mode 'mxfp4' is not supported "
                                         r"\(pyonebit reads 'affine', 'symmetric'\)"):
        pyonebit.load_mlx(tmp_path)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 128, "bits": 1, "model.q": False}})
    with pytest.raises(ValueError, match=r"model.q.scales exists but config.json marks layer "
                                         r"'model.q' as not quantized \(false\)"):
        pyonebit.load_mlx(tmp_path)
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 128, "bits": 1,
                                                   "model.k": {"bits": 4, "group_size": 64}}})
    with pytest.raises(ValueError, match=r"model.k.weight is missing; config.json claims layer "
                                         r"'model.k' is quantized with bits=4, group_size=64"):
        pyonebit.load_mlx(tmp_path)


def test_stacked_experts_are_refused(tmp_path, rng):
    experts = quantized(random_mx(rng, (2, 8, 128), np.float16), 128, 1)
    t = {f"experts.{k}": v for k, v in experts.items()}
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 128, "bits": 1}})
    with pytest.raises(ValueError, match=r"experts.weight has shape \(2, 8, 4\): pyonebit layers "
                                         r"are 2-D matrices"):
        pyonebit.load_mlx(tmp_path)


def test_layer_checks_are_named(tmp_path, rng):
    # The tensors agree with the claim; the layer's own check of the bias fails.
    t = {"model.q.weight": mx.zeros((8, 4), dtype=mx.uint32),
         "model.q.scales": mx.ones((8, 1), dtype=mx.float16),
         "model.q.biases": mx.zeros((8, 1), dtype=mx.float16),
         "model.q.bias": mx.zeros((7,), dtype=mx.float16)}
    save_checkpoint(tmp_path, t, {"quantization": {"group_size": 32, "bits": 4}})
    with pytest.raises(ValueError, match=r"\[load_mlx\] layer 'model.q' \(bits=4, group_size=32, "
                                         r"mode='affine'\): \[QuantizedLinear\] bias must have "
                                         r"shape \(8,\)"):
        pyonebit.load_mlx(tmp_path)
