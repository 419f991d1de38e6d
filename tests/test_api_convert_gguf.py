"""convert IN OUT.gguf: the Q1_0 layers load_gguf reads back are bit for bit
pyonebit's symmetric 1-bit quantization (scales as float16), every other
tensor comes back unchanged, and specs Q1_0 cannot store are refused."""
import json
import re

import numpy as np
import pytest

import pyonebit
from conftest import BF16, random_weights
from pyonebit.__main__ import main
from pyonebit.io._safetensors import StreamingWriter


def write_float_checkpoint(directory, tensors, config):
    directory.mkdir()
    specs = {name: (a.dtype, a.shape) for name, a in tensors.items()}
    with StreamingWriter(directory / "model.safetensors", specs) as writer:
        for name, a in tensors.items():
            writer.write(name, a)
    (directory / "config.json").write_text(json.dumps(config))


def float_model(rng):
    return {
        "model.embed_tokens.weight": random_weights(rng, (40, 256), BF16),
        "model.layers.0.self_attn.q_proj.weight": random_weights(rng, (32, 256), np.float32),
        "model.layers.0.self_attn.q_proj.bias": random_weights(rng, (32,), np.float32),
        "model.layers.0.mlp.up_proj.weight": random_weights(rng, (48, 128), np.float16),
        "model.layers.0.odd.weight": random_weights(rng, (8, 100), BF16),  # 100 % 128: kept
        "model.norm.weight": random_weights(rng, (256,), np.float16),
        "model.position_ids": np.arange(16, dtype=np.int64),
    }


QUANTIZED = ["model.embed_tokens", "model.layers.0.mlp.up_proj", "model.layers.0.self_attn.q_proj"]


def test_load_gguf_reads_back_what_convert_wrote(tmp_path, rng, capsys):
    src = float_model(rng)
    config = {"model_type": "llama", "hidden_size": 256}
    write_float_checkpoint(tmp_path / "in", src, config)
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "out.gguf")]) == 0
    assert "quantized 3 tensors to 1 bit (symmetric, group size 128)" in capsys.readouterr().out

    got = pyonebit.load_gguf(tmp_path / "out.gguf")
    assert sorted(got.layers) == QUANTIZED
    for p in QUANTIZED:
        wq, scales, _ = pyonebit.quantize(src[f"{p}.weight"], 128, 1, "symmetric")
        layer = got.layers[p]
        assert (layer.mode, layer.bits, layer.group_size) == ("symmetric", 1, 128)
        np.testing.assert_array_equal(layer.wq, wq)
        # Q1_0 stores d as float16: float16 scales as they are, others rounded once.
        assert layer.scales.dtype == np.float16
        assert layer.scales.tobytes() == scales.astype(np.float32).astype(np.float16).tobytes()
    bias = got.layers["model.layers.0.self_attn.q_proj"].bias
    np.testing.assert_array_equal(bias, src["model.layers.0.self_attn.q_proj.bias"])
    kept = {n: a for n, a in src.items() if n.removesuffix(".weight").removesuffix(".bias") not in QUANTIZED}
    assert got.tensors.keys() == kept.keys()
    for name, a in kept.items():
        assert got.tensors[name].dtype == a.dtype and got.tensors[name].tobytes() == a.tobytes()
    assert json.loads(got.metadata["pyonebit.config"]) == config


def test_api_returns_a_summary(tmp_path, rng):
    write_float_checkpoint(tmp_path / "in", float_model(rng), {})
    s = pyonebit.io.convert.convert_checkpoint(tmp_path / "in", tmp_path / "m.gguf")
    assert (s.quantized, s.kept, s.files) == (3, 3, ["m.gguf"])
    assert s.bytes_after == (tmp_path / "m.gguf").stat().st_size and s.ratio > 2


@pytest.mark.parametrize("options,match", [
    (["--mode", "affine"], r"a \.gguf OUT stores Q1_0 \(bits=1, group_size=128, mode='symmetric'\), "
                           r"got bits=1, group_size=128, mode='affine'"),
    (["--group-size", "64"], r"got bits=1, group_size=64"),
])
def test_specs_q1_0_cannot_store_are_refused(tmp_path, rng, capsys, options, match):
    write_float_checkpoint(tmp_path / "in", float_model(rng), {})
    assert main(["convert", str(tmp_path / "in"), str(tmp_path / "out.gguf"), *options]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "out.gguf").exists()


def test_an_existing_file_is_not_replaced(tmp_path, rng):
    write_float_checkpoint(tmp_path / "in", float_model(rng), {})
    (tmp_path / "out.gguf").write_text("mine")
    with pytest.raises(ValueError, match=r"out.gguf exists; convert writes a new file"):
        pyonebit.io.convert.convert_checkpoint(tmp_path / "in", tmp_path / "out.gguf")
    assert (tmp_path / "out.gguf").read_text() == "mine"
