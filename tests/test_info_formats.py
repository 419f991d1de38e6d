"""python -m pyonebit info on each format pyonebit reads: a GGUF file (from
its header), a float MLX directory (pointing to convert), and a weights file
given where a checkpoint directory is wanted."""
import json

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter
from safetensors.numpy import save_file

import pyonebit
from pyonebit.io.gguf_file import GGUFQuantized
from pyonebit.__main__ import main


def info(capsys, path):
    code = main(["info", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def checkpoint_part(out):
    """The lines after the installation's own (which test_cli checks)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("GGUF file", "checkpoint")))
    return lines[start:]


def write_gguf(path, tensors):
    """(name, array, raw GGML type or None) written by gguf-py alone."""
    writer = GGUFWriter(str(path), "llama")
    for name, data, qtype in tensors:
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_file_layers_arrays_and_biases(capsys, tmp_path, rng):
    w = rng.standard_normal((4, 256)).astype(np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, np.zeros(4, np.float32), bits=1, group_size=128,
                                                mode="symmetric")
    q8 = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32),
                              GGMLQuantizationType.Q8_0)
    tensors = {"norm.weight": np.ones(256, np.float16),
               "embd.weight": GGUFQuantized.wrap(
                   gguf.quants.dequantize(q8, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0, q8)}
    path = tmp_path / "m.gguf"
    pyonebit.save_gguf(path, {"blk.0.q": layer}, tensors, arch="llama")
    code, out, err = info(capsys, path)
    assert code == 0, err
    loaded = pyonebit.load_gguf(path)  # what info describes is what load_gguf makes
    assert sorted(loaded.layers) == ["blk.0.q"] and sorted(loaded.tensors) == ["embd.weight",
                                                                               "norm.weight"]
    described = checkpoint_part(out)
    assert described[0].startswith(f"GGUF file {path}: version 3, architecture llama, 4 tensors (")
    assert described[1] == "load_gguf makes 1 1-bit layers (the Q1_0 tensors) and 2 arrays of it:"
    assert sorted(described[2:]) == sorted([
        "  blk.0.q: layer 4x256, Q1_0 = 1-bit symmetric, group 128, float16 scales, bias",
        "  blk.0.q.bias: F32 4, the bias of layer 'blk.0.q'",
        "  norm.weight: F16 256, an array of float16",
        "  embd.weight: Q8_0 2x64, dequantized to a float32 array (GGUFQuantized, which keeps the "
        "stored bytes)",
    ])


def test_gguf_file_load_gguf_refuses(capsys, tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, [("blk.0.q81", np.zeros((2, 40), np.uint8), GGMLQuantizationType.Q8_1),
                      ("x", np.zeros(3, np.float32), None)])
    with pytest.raises(ValueError, match="cannot dequantize"):
        pyonebit.load_gguf(path)
    code, out, err = info(capsys, path)
    assert code == 0, err
    assert checkpoint_part(out)[1:] == [
        "load_gguf refuses this file: 1 tensors it cannot load (below)",
        "  blk.0.q81: Q8_1 2x32: cannot load (the gguf package cannot dequantize this type)",
        "  x: F32 3, an array of float32",
    ]


def test_a_file_that_is_not_gguf_is_one_error(capsys, tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    code, out, err = info(capsys, path)
    assert code == 2 and out == ""
    assert err.startswith(f"error: [info] {str(path)!r} is not a readable GGUF file: the tensor count")


def test_float_checkpoint_points_to_convert(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 128}))
    save_file({"a.weight": np.zeros((4, 128), np.float16), "b": np.zeros(3, np.float32)},
              str(tmp_path / "model.safetensors"))
    code, out, err = info(capsys, tmp_path)
    assert code == 0, err
    assert checkpoint_part(out) == [
        f"checkpoint {tmp_path}: not quantized (config.json has no 'quantization' section): "
        "2 tensors (0.00 MiB), F16, F32",
        f"  to quantize it: python -m pyonebit convert {tmp_path} OUT (an MLX directory, or "
        "OUT.gguf for GGUF Q1_0; see python -m pyonebit convert --help)",
    ]


def test_lone_safetensors_file_points_to_convert(capsys, tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file({"a.weight": np.zeros((4, 128), np.float32)}, str(weights))
    code, out, err = info(capsys, weights)
    assert code == 0, err
    assert checkpoint_part(out) == [
        f"checkpoint {weights}: a safetensors file without config.json beside it: 1 tensors "
        "(0.00 MiB), F32",
        f"  to quantize it: python -m pyonebit convert {weights} OUT (an MLX directory, or "
        "OUT.gguf for GGUF Q1_0; see python -m pyonebit convert --help)",
    ]


def test_load_mlx_wants_the_directory_not_the_weights_file(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"quantization": {"bits": 1, "group_size": 64}}))
    weights = tmp_path / "model.safetensors"
    save_file({"a": np.zeros(3, np.float32)}, str(weights))
    message = (f"[load_mlx] {weights} is a file, not a checkpoint directory (config.json and "
               f"*.safetensors); pass the directory that holds it: {tmp_path}")
    with pytest.raises(NotADirectoryError) as err:
        pyonebit.load_mlx(weights)
    assert str(err.value) == message
    assert info(capsys, weights) == (2, "", f"error: {message}\n")
    gguf_file = tmp_path / "m.gguf"
    gguf_file.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a checkpoint directory .*; a GGUF "
                                                 "file loads with load_gguf$"):
        pyonebit.load_mlx(gguf_file)


def test_gguf_file_without_the_gguf_package_names_the_extra(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    code = ("import sys\nsys.modules['gguf'] = None  # not installed\n"
            "from pyonebit.__main__ import main\nsys.exit(main(['info', 'm.gguf']))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(root)), timeout=120)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("error: pyonebit's GGUF support (load_gguf, save_gguf, convert to "
                               ".gguf, info on a .gguf file) needs the gguf package: pip install "
                               "'pyonebit[gguf]'"), r.stderr
