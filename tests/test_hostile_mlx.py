"""load_mlx and the CLI against hostile and careless checkpoint directories:
bad config and index values are ValueErrors naming the field, checked
before anything is allocated or opened; special files are refused without
hanging. Cases that could hang or exhaust memory run in a capped subprocess."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyonebit
from hostile_files import run_capped, write_mlx_checkpoint
from pyonebit.io import _checkpoint_dir
from pyonebit.__main__ import main

INDEX = "model.safetensors.index.json"


@pytest.fixture
def ckpt(tmp_path, rng):
    write_mlx_checkpoint(tmp_path / "ckpt", rng)
    return tmp_path / "ckpt"


@pytest.fixture
def sharded(tmp_path, rng):
    write_mlx_checkpoint(tmp_path / "ckpt", rng, shards=2)
    return tmp_path / "ckpt"


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def load_error(path, match=None) -> str:
    with pytest.raises(ValueError) as err:
        pyonebit.load_mlx(path)
    assert str(err.value).startswith("[load_mlx] "), err.value
    return str(err.value)


def cli_error(capsys, *argv) -> str:
    rc = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: "), (rc, out, err)
    return err.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and RLIMIT_AS")
def test_layer_entry_types_are_checked_before_any_allocation(ckpt):
    # "bits": "1" times a group size of 6e9 was a 11.5 GB string before a TypeError.
    edit_json(ckpt / "config.json",
              lambda c: c["quantization"].update({"lm_head": {"bits": "1", "group_size": 6000000000}}))
    out = run_capped(f"""
        try:
            pyonebit.load_mlx({str(ckpt)!r})
        except ValueError as e:
            print(e)
    """, cap_mib=256)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(
        "[load_mlx] config.json quantization 'bits' for layer 'lm_head' must be an integer in [1, 2, 3, 4, 5, 6, 8], "
        "got '1'"), out.stdout


@pytest.mark.parametrize("entry, field, got", [
    ({"bits": 1, "group_size": 6000000000}, "group_size", "6000000000"),
    ({"bits": 1.0, "group_size": 128}, "bits", "1.0"),
    ({"bits": True, "group_size": 128}, "bits", "True"),
    ({"bits": 7, "group_size": 128}, "bits", "7"),
    ({"bits": 1, "group_size": None}, "group_size", "None"),
])
def test_layer_entry_values(ckpt, entry, field, got):
    edit_json(ckpt / "config.json", lambda c: c["quantization"].update({"lm_head": entry}))
    assert load_error(ckpt).endswith(f"{field!r} for layer 'lm_head' must be an integer in "
                                     f"{pyonebit.supported_bits() if field == 'bits' else pyonebit.supported_group_sizes()}"
                                     f", got {got}")


def test_mode_that_is_not_a_string(ckpt):
    edit_json(ckpt / "config.json", lambda c: c["quantization"].update({"lm_head": {"mode": ["affine"]}}))
    assert load_error(ckpt) == ("[load_mlx] layer 'lm_head': mode ['affine'] is not supported "
                                "(pyonebit reads 'affine', 'symmetric')")


def test_claim_that_reads_rows_at_the_wrong_length(ckpt):
    # Arrays made at 1 bit in groups of 128; 2 bits in groups of 64 fits their
    # shapes too, and would make every layer read 128 inputs, not 256.
    edit_json(ckpt / "config.json", lambda c: c.update(quantization={"bits": 2, "group_size": 64}))
    assert load_error(ckpt) == (
        "[load_mlx] config.json claims layer 'lm_head' is quantized with bits=2, group_size=64, mode='affine', "
        "but then no layer reads hidden_size=256; its arrays fit bits=1, group_size=128 (in_features=256): "
        "not quantized as claimed")
    # The same claim on a config without the model's width cannot be checked.
    edit_json(ckpt / "config.json", lambda c: c.pop("hidden_size"))
    assert pyonebit.load_mlx(ckpt).layers["lm_head"].in_features == 128


@pytest.mark.parametrize("weight_map, message", [
    ([], "'weight_map' must be an object of tensor name -> file name, got list"),
    ("x", "'weight_map' must be an object of tensor name -> file name, got str"),
    ({"a": 5}, "weight_map['a'] must be a file name, got 5"),
])
def test_weight_map_types(sharded, capsys, weight_map, message):
    (sharded / INDEX).write_text(json.dumps({"weight_map": weight_map}))
    assert load_error(sharded) == f"[load_mlx] {sharded / INDEX}: {message}"
    assert cli_error(capsys, sharded) == f"error: [load_mlx] {sharded / INDEX}: {message}"


@pytest.mark.parametrize("name", ["config.json", INDEX])
def test_deeply_nested_json(sharded, capsys, name):
    (sharded / name).write_text("[" * 100_000 + "]" * 100_000)
    assert load_error(sharded) == f"[load_mlx] {sharded / name} is nested too deeply"
    assert cli_error(capsys, sharded) == f"error: [load_mlx] {sharded / name} is nested too deeply"


@pytest.mark.parametrize("target", ["../outside.safetensors", "/etc/passwd", "sub/x.safetensors", ".."])
def test_weight_map_paths_leaving_the_directory_are_refused_before_opening(sharded, monkeypatch, target):
    (sharded.parent / "outside.safetensors").write_bytes((sharded / "model-00001-of-00002.safetensors").read_bytes())
    edit_json(sharded / INDEX, lambda i: i["weight_map"].update({"lm_head.weight": target}))
    opened = []  # weight files looked at or parsed
    real_header = _checkpoint_dir.read_header
    monkeypatch.setattr(_checkpoint_dir, "read_header", lambda f: opened.append(f) or real_header(f))
    with pytest.raises(ValueError) as err:
        pyonebit.load_mlx(sharded)
    assert str(err.value) == (f"[load_mlx] {sharded / INDEX}: weight_map['lm_head.weight'] = {target!r} "
                              "is not the name of a file in the checkpoint directory")
    assert opened == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_fifo_is_refused_without_hanging(ckpt, name):
    (ckpt / name).unlink()
    os.mkfifo(ckpt / name)
    out = run_capped(f"""
        try:
            pyonebit.load_mlx({str(ckpt)!r})
        except ValueError as e:
            print(e)
    """, timeout=20)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == f"[load_mlx] {ckpt / name} is not a regular file\n"


def test_directory_named_like_a_weight_file(ckpt, capsys):
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors").mkdir()
    assert load_error(ckpt) == f"[load_mlx] {ckpt / 'model.safetensors'} is not a regular file"
    assert cli_error(capsys, ckpt) == f"error: [load_mlx] {ckpt / 'model.safetensors'} is not a regular file"


def test_cli_exit_code_in_a_fresh_process(sharded):
    (sharded / INDEX).write_text(json.dumps({"weight_map": []}))
    out = subprocess.run([sys.executable, "-m", "pyonebit", "info", str(sharded)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: [load_mlx] ")
