"""python -m pyonebit convert: the output read back by MLX (mx.load,
mx.quantize, mx.dequantize) and by load_mlx; memory stays about one tensor."""
import json
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import save_file

import pyonebit
from conftest import BF16, w_hat64
from mlx_peer import mx, random_mx, save_checkpoint, to_mx, to_np
from pyonebit.io import convert
from pyonebit.__main__ import main
from pyonebit.io._safetensors import read_header

CONFIG = {"model_type": "llama", "hidden_size": 256}


def float_model(rng):
    """Float tensors: which are quantized at group size 64 is in QUANTIZED."""
    t = {
        "model.embed_tokens.weight": random_mx(rng, (40, 256), BF16),
        "model.layers.0.self_attn.q_proj.weight": random_mx(rng, (32, 256), BF16),
        "model.layers.0.self_attn.q_proj.bias": random_mx(rng, (32,), BF16),
        "model.layers.0.mlp.up_proj.weight": random_mx(rng, (48, 128), np.float16),
        "model.layers.0.mlp.down_proj.weight": random_mx(rng, (16, 192), np.float32),
        "model.layers.0.odd.weight": random_mx(rng, (8, 100), BF16),  # 100 % 64 != 0: kept
        "model.conv.weight": random_mx(rng, (4, 64, 3), BF16),  # 3-D: kept
        "model.norm.weight": random_mx(rng, (256,), BF16),  # 1-D: kept
        "model.position_ids": mx.arange(16, dtype=mx.int64),  # not float: kept
    }
    mx.eval(t)
    return t


QUANTIZED = ["model.embed_tokens", "model.layers.0.self_attn.q_proj",
             "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"]


def same_bits(a, b):
    a, b = to_np(a), to_np(b)
    return a.dtype == b.dtype and a.shape == b.shape and (a.view(np.uint8) == b.view(np.uint8)).all()


def load_all(directory):
    out = {}
    for f in sorted(directory.glob("*.safetensors")):
        out.update(mx.load(str(f)))
    return out


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("shards", [1, 2])
def test_mlx_reads_what_convert_writes(tmp_path, rng, capsys, bits, shards):
    src = float_model(rng)
    save_checkpoint(tmp_path / "in", src, CONFIG, shards)

    rc = main(["convert", str(tmp_path / "in"), str(tmp_path / "out"), "--bits", str(bits),
               "--group-size", "64"])

    out, err = capsys.readouterr()
    assert rc == 0 and err == ""  # no progress bar when stderr is not a terminal
    got = load_all(tmp_path / "out")
    for p in QUANTIZED:
        w = src[f"{p}.weight"]
        wq, scales, biases = mx.quantize(w, group_size=64, bits=bits)
        assert same_bits(got[f"{p}.weight"], wq), p
        assert same_bits(got[f"{p}.scales"], scales), p
        assert same_bits(got[f"{p}.biases"], biases), p
        mlx_hat = mx.dequantize(got[f"{p}.weight"], got[f"{p}.scales"], got[f"{p}.biases"],
                                group_size=64, bits=bits)
        ours = pyonebit.dequantize(to_np(got[f"{p}.weight"]), to_np(got[f"{p}.scales"]),
                                   to_np(got[f"{p}.biases"]), group_size=64, bits=bits)
        assert same_bits(mlx_hat, ours), p
    kept = sorted(set(src) - {f"{p}.weight" for p in QUANTIZED})
    packed = {f"{p}.{k}" for p in QUANTIZED for k in ("weight", "scales", "biases")}
    assert sorted(set(got) - packed) == kept
    for name in kept:
        assert same_bits(got[name], src[name]), name

    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config == dict(CONFIG, quantization={"group_size": 64, "bits": bits},
                          quantization_config={"group_size": 64, "bits": bits})
    names = sorted(f.name for f in (tmp_path / "out").iterdir())
    if shards == 1:
        assert names == ["config.json", "model.safetensors"]
    else:
        index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
        assert sorted(index["weight_map"]) == sorted(got)
        for name, file in index["weight_map"].items():
            assert name in mx.load(str(tmp_path / "out" / file)), name

    before = sum(v.nbytes for v in src.values())
    after = sum(v.nbytes for v in got.values())
    assert out.splitlines() == [
        f"quantized 4 tensors to {bits} bit{'s' * (bits > 1)} (affine, group size 64), "
        "kept 5 unchanged",
        f"{before / 2**20:.2f} MiB -> {after / 2**20:.2f} MiB ({before / after:.2f}x smaller)",
        f"wrote {tmp_path / 'out'}: {', '.join(n for n in names if n != 'config.json')}, config.json",
    ]

    # and pyonebit's own loader agrees with MLX's matmul on the result
    ckpt = pyonebit.load_mlx(tmp_path / "out")
    assert sorted(ckpt.layers) == sorted(QUANTIZED)
    layer = ckpt.layers["model.layers.0.self_attn.q_proj"]
    p = QUANTIZED[1]
    assert same_bits(layer.bias, src[f"{p}.bias"])
    x = rng.standard_normal((2, 256)).astype(np.float32)
    w, s, b = (got[f"{p}.{k}"] for k in ("weight", "scales", "biases"))
    ref = to_np(mx.quantized_matmul(to_mx(x), w, s, b, transpose=True, group_size=64, bits=bits))
    ref += layer.bias.astype(np.float32)
    np.testing.assert_allclose(layer(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_single_file_input(tmp_path, rng):
    w = random_mx(rng, (8, 128), np.float16)
    mx.save_safetensors(str(tmp_path / "w.safetensors"), {"proj.weight": w})
    summary = convert.convert_checkpoint(tmp_path / "w.safetensors", tmp_path / "out")
    assert (summary.quantized, summary.kept) == (1, 0)
    assert summary.files == ["model.safetensors", "config.json"]
    assert json.loads((tmp_path / "out" / "config.json").read_text()) == {
        "quantization": {"group_size": 128, "bits": 1},
        "quantization_config": {"group_size": 128, "bits": 1}}
    got = mx.load(str(tmp_path / "out" / "model.safetensors"))
    for a, b in zip((got[f"proj.{k}"] for k in ("weight", "scales", "biases")),
                    mx.quantize(w, group_size=128, bits=1)):
        assert same_bits(a, b)


def test_tokenizer_and_other_files_are_copied(tmp_path, rng):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    mx.save_safetensors(str(src / "model.safetensors"),
                        {"proj.weight": random_mx(rng, (8, 128), np.float32)})
    (src / "config.json").write_text("{}")
    (src / "tokenizer.json").write_text('{"vocab": 1}')
    (src / "notes.bin").write_bytes(bytes(range(256)))
    (src / "sub" / "ignored.txt").write_text("x")
    summary = convert.convert_checkpoint(src, tmp_path / "out")
    assert summary.files == ["model.safetensors", "notes.bin", "tokenizer.json", "config.json"]
    assert (tmp_path / "out" / "tokenizer.json").read_text() == '{"vocab": 1}'
    assert (tmp_path / "out" / "notes.bin").read_bytes() == bytes(range(256))
    assert not (tmp_path / "out" / "sub").exists()


def test_symmetric_mode(tmp_path, rng):
    w = rng.standard_normal((8, 256)).astype(np.float32)
    save_checkpoint(tmp_path / "in", {"proj.weight": mx.array(w)}, {})
    convert.convert_checkpoint(tmp_path / "in", tmp_path / "out", mode="symmetric")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["quantization"] == {"group_size": 128, "bits": 1, "mode": "symmetric"}
    got = mx.load(str(tmp_path / "out" / "model.safetensors"))
    assert sorted(got) == ["proj.scales", "proj.weight"]  # no biases
    layer = pyonebit.load_mlx(tmp_path / "out").layers["proj"]
    assert layer.mode == "symmetric"
    # independent model: bit 1 where w >= 0 decodes to +mean|w| of the group
    d = np.abs(w).reshape(8, 2, 128).mean(-1)
    what = w_hat64(to_np(got["proj.weight"]), to_np(got["proj.scales"]), None, 1, 128, "symmetric")
    np.testing.assert_array_equal(what > 0, w >= 0)
    np.testing.assert_allclose(np.abs(what), np.repeat(d, 128, axis=-1), rtol=1e-6)
    np.testing.assert_array_equal(layer.dequantize(np.float32).astype(np.float64), what)


# ---------------------------------------------------------------- memory

def test_memory_stays_about_one_tensor(tmp_path, rng):
    # 8 tensors of 2 MiB: 4 quantized, 4 copied (width 1000 is no multiple of
    # 128). Reading everything first, or gathering the output for one
    # save_file call, would trace at least 8 MiB.
    t = {f"q{i}.weight": random_mx(rng, (512, 1024), np.float32) for i in range(4)}
    t.update({f"k{i}.weight": random_mx(rng, (512, 1024), np.float32)[:, :1000] for i in range(4)})
    save_checkpoint(tmp_path / "in", t, {})
    one = 512 * 1024 * 4
    tracemalloc.start()
    try:
        convert.convert_checkpoint(tmp_path / "in", tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * one, f"peak {peak} bytes for tensors of {one} bytes"


def test_each_tensor_is_written_before_the_next_is_read(tmp_path, rng, monkeypatch):
    t = {f"l{i}.weight": random_mx(rng, (4, 128), np.float16) for i in range(3)}
    t["norm.weight"] = random_mx(rng, (128,), np.float16)
    save_checkpoint(tmp_path / "in", t, {})
    events = []
    read, write = convert.read_tensor, convert.StreamingWriter.write
    monkeypatch.setattr(convert, "read_tensor",
                        lambda info: events.append(("read", info.name)) or read(info))
    monkeypatch.setattr(convert.StreamingWriter, "write",
                        lambda self, name, a: events.append(("write", name)) or write(self, name, a))
    convert.convert_checkpoint(tmp_path / "in", tmp_path / "out")
    infos, _ = read_header(tmp_path / "in" / "model.safetensors")
    expected = []
    for name in sorted(infos, key=lambda n: infos[n].begin):  # the file's data order
        expected.append(("read", name))
        if name.startswith("l"):
            p = name[:-len(".weight")]
            expected += [("write", f"{p}.weight"), ("write", f"{p}.scales"), ("write", f"{p}.biases")]
        else:
            expected.append(("write", name))
    assert events == expected


# ---------------------------------------------------------------- errors

def run_error(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err.strip()


def test_errors(tmp_path, rng, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    assert run_error(capsys, ["convert", str(tmp_path / "none"), str(dst)]) == \
        f"error: [convert] {tmp_path / 'none'}: no such file or directory"
    src.mkdir()
    assert run_error(capsys, ["convert", str(src), str(dst)]) == \
        f"error: [convert] {src / 'config.json'}: no such file " \
        "(a checkpoint directory needs config.json)"
    (src / "config.json").write_text("{}")
    assert run_error(capsys, ["convert", str(src), str(dst)]) == \
        f"error: [convert] {src}: no *.safetensors file"

    save_file({"a.weight": np.zeros((4, 128))}, str(src / "model.safetensors"))  # MLX cannot write F64
    assert run_error(capsys, ["convert", str(src), str(dst)]) == (
        f"error: [convert] tensor 'a.weight' in {src / 'model.safetensors'} has dtype F64; "
        "weights to quantize must be F32, F16, BF16")

    save_checkpoint(src, {"a.weight": mx.zeros((4, 96)), "b.weight": mx.zeros((96,))}, {})
    assert run_error(capsys, ["convert", str(src), str(dst)]) == (
        f"error: [convert] {src}: nothing to quantize: no 2-D *.weight tensor has a last "
        "dimension that is a multiple of group_size=128")

    save_checkpoint(src, {"a.weight": mx.zeros((4, 128))}, {})
    err = run_error(capsys, ["convert", str(src), str(dst), "--group-size", "100"])
    assert err.startswith("error: [quantize] group_size=100")
    err = run_error(capsys, ["convert", str(src), str(dst), "--bits", "2", "--mode", "symmetric"])
    assert err.startswith("error: [quantize]") and "symmetric" in err

    w = np.zeros((4, 128), np.float32)
    w[1, 5] = np.nan
    save_checkpoint(src, {"a.weight": mx.array(w)}, {})
    err = run_error(capsys, ["convert", str(src), str(dst)])
    assert err.startswith("error: [convert] tensor 'a.weight': [quantize]") and "NaN" in err
    assert not dst.exists()  # the partial output is removed

    save_checkpoint(src, {"a.weight": mx.zeros((4, 128))},
                    {"quantization": {"bits": 4, "group_size": 64}})
    assert run_error(capsys, ["convert", str(src), str(dst)]) == (
        f"error: [convert] {src}: config.json already has a quantization section "
        "(convert reads float checkpoints)")

    dst.mkdir()
    (dst / "x").write_text("")
    save_checkpoint(src, {"a.weight": mx.zeros((4, 128))}, {})
    assert run_error(capsys, ["convert", str(src), str(dst)]) == \
        f"error: [convert] {dst} exists and is not an empty directory"
    assert sorted(p.name for p in dst.iterdir()) == ["x"]  # nothing written


def test_output_name_clash_is_refused(tmp_path, rng):
    save_checkpoint(tmp_path / "in", {"a.weight": mx.zeros((4, 128)), "a.scales": mx.zeros((4,))}, {})
    with pytest.raises(ValueError, match=r"\[convert\] quantizing 'a.weight' would write 'a.scales', "
                                         r"which the checkpoint already has"):
        convert.convert_checkpoint(tmp_path / "in", tmp_path / "out")
