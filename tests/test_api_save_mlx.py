"""save_mlx: layers, tensors and config round-trip through load_mlx bit for
bit; bad input is refused before anything is written; a failed save leaves
nothing."""
import json

import numpy as np
import pytest

import pyonebit
from pyonebit.io import mlx_save
from conftest import BF16, random_weights


def make_layers(rng):
    def layer(shape, dtype, bias=None, **spec):
        return pyonebit.QuantizedLinear.from_float(random_weights(rng, shape, dtype), bias, **spec)
    return {
        "model.layers.0.mlp.up_proj": layer((48, 256), np.float16, group_size=128, bits=1),
        "model.layers.0.mlp.gate_proj": layer((48, 256), np.float16, group_size=128, bits=1),
        "model.layers.0.mlp.down_proj": layer((256, 48 * 4), np.float16, group_size=64, bits=1),
        "model.layers.0.self_attn.q_proj": layer((32, 256), np.float32,
                                                 np.arange(32, dtype=np.float32), bits=4, group_size=64),
        "lm_head": layer((40, 256), BF16, mode="symmetric"),
    }


def assert_same_layer(got, want):
    assert (got.bits, got.group_size, got.mode) == (want.bits, want.group_size, want.mode)
    for name in ("wq", "scales", "biases", "bias"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name


def test_round_trip_through_load_mlx(rng, tmp_path):
    layers = make_layers(rng)
    tensors = {"model.norm.weight": random_weights(rng, (256,), BF16),
               "model.embed_tokens.weight": random_weights(rng, (10, 256), np.float16),
               "positions": np.arange(7, dtype=np.int32)}
    config = {"model_type": "llama", "hidden_size": 256, "quantization": {"bits": 8, "group_size": 32}}
    pyonebit.save_mlx(tmp_path / "out", layers, tensors, config)
    loaded = pyonebit.load_mlx(tmp_path / "out")
    assert loaded.layers.keys() == layers.keys()
    for p, layer in layers.items():
        assert_same_layer(loaded.layers[p], layer)
    assert loaded.tensors.keys() == tensors.keys()
    for name, t in tensors.items():
        assert loaded.tensors[name].dtype == t.dtype and loaded.tensors[name].tobytes() == t.tobytes()
    # The caller's section is replaced by one describing the layers.
    q = loaded.config["quantization"]
    assert (q["group_size"], q["bits"]) == (128, 1) and "mode" not in q  # the most layers'
    assert "model.layers.0.mlp.up_proj" not in q
    assert q["lm_head"] == {"group_size": 128, "bits": 1, "mode": "symmetric"}
    assert loaded.config["quantization_config"] == q and loaded.config["model_type"] == "llama"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]

    # A loaded checkpoint saves back unchanged.
    pyonebit.save_mlx(tmp_path / "again", loaded.layers, loaded.tensors, loaded.config)
    again = pyonebit.load_mlx(tmp_path / "again")
    for p, layer in layers.items():
        assert_same_layer(again.layers[p], layer)
    assert again.config == loaded.config


def test_layers_run_the_same_after_loading(rng, tmp_path):
    layers = make_layers(rng)
    pyonebit.save_mlx(tmp_path / "m", layers)
    loaded = pyonebit.load_mlx(tmp_path / "m").layers
    x = random_weights(rng, (3, 256), np.float32)
    for p in ("model.layers.0.self_attn.q_proj", "lm_head"):
        np.testing.assert_array_equal(loaded[p](x), layers[p](x))


@pytest.mark.parametrize("layers_extra,tensors,error,match", [
    ({}, {"model.layers.0.mlp.up_proj.scales": np.ones(3, np.float16)}, ValueError,
     r"\[save_mlx\] tensors\['model.layers.0.mlp.up_proj.scales'\] has the name of a layer's array"),
    ({}, {"other.scales": np.ones(3, np.float16)}, ValueError, r"would load as part of a quantized layer"),
    ({}, {"emb.weight": np.ones(3, np.uint32)}, ValueError, r"would load as part of a quantized layer"),
    ({}, {"c": np.ones(3, np.complex64)}, TypeError, r"tensors\['c'\] has dtype complex64"),
    ({"x": np.ones((2, 2))}, {}, TypeError, r"layers\['x'\] is a ndarray, not a pyonebit.QuantizedLinear"),
])
def test_bad_input_is_refused_before_writing(rng, tmp_path, layers_extra, tensors, error, match):
    layers = dict(make_layers(rng), **layers_extra)
    with pytest.raises(error, match=match):
        pyonebit.save_mlx(tmp_path / "out", layers, tensors)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_directory(rng, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"\[save_mlx\] .*out exists and is not an empty directory"):
        pyonebit.save_mlx(tmp_path / "out", make_layers(rng))
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_a_failed_save_leaves_nothing(rng, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(mlx_save, "write_config", fail)  # after the weights were written
    with pytest.raises(OSError, match="disk full"):
        pyonebit.save_mlx(tmp_path / "a" / "out", make_layers(rng))
    assert list(tmp_path.iterdir()) == []


def test_config_json_is_what_mlx_lm_reads(rng, tmp_path):
    pyonebit.save_mlx(tmp_path / "m", make_layers(rng), config={"hidden_size": 256})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    entry = config["quantization"]["model.layers.0.self_attn.q_proj"]
    assert entry == {"group_size": 64, "bits": 4, "mode": "affine"}
