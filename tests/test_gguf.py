"""GGUF Q1_0 read/write: load_gguf, save_gguf and the Q1_0 block codec.

The reference for the format is an independent decoder written from ggml's
definition (ggml/src/ggml-quants.c dequantize_row_q1_0 and ggml-common.h
block_q1_0 in ggml-org/llama.cpp): per 18-byte block, a little-endian float16
d, then weight j is bit j % 8 of byte 2 + j // 8, +d if set, -d if clear. It
reads the file's bytes through gguf-py's reader, never through pyonebit."""
import struct
import subprocess
import sys
import time

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

import pyonebit
from conftest import BF16, assert_matmul_close
from pyonebit.io.gguf_q1 import packed_from_q1_0, q1_0_blocks

Q1_0 = GGMLQuantizationType.Q1_0


def ggml_decode_q1_0(raw, rows, k):
    """Float64 weights (rows, k) of Q1_0 bytes, block by block as ggml reads them."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(rows, k // 128, 18)
    d_bits = raw[..., 0].astype(np.uint16) | (raw[..., 1].astype(np.uint16) << 8)
    d = d_bits.view(np.float16).astype(np.float64)  # (rows, blocks)
    j = np.arange(128)
    bits = (raw[..., 2 + j // 8] >> (j % 8)) & 1  # (rows, blocks, 128)
    w = np.where(bits == 1, d[..., None], -d[..., None])
    return w.reshape(rows, k)


def raw_tensor(path, name):
    """(GGML type, ne list, stored bytes or array) of one tensor, read by gguf-py."""
    for t in GGUFReader(path).tensors:
        if t.name == name:
            return t.tensor_type, [int(n) for n in t.shape], np.array(t.data)
    raise KeyError(name)


def write_with_gguf_py(path, tensors, endianess=gguf.GGUFEndian.LITTLE):
    """A GGUF file written by gguf-py alone: tensors are (name, array, raw GGML type or None)."""
    writer = GGUFWriter(str(path), "llama", endianess=endianess)
    for name, data, qtype in tensors:
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def symmetric_layer(rng, rows, k, dtype=np.float16, bias=None):
    w = rng.standard_normal((rows, k)).astype(np.float32).astype(dtype)
    return pyonebit.QuantizedLinear.from_float(w, bias, bits=1, group_size=128, mode="symmetric")


def test_gguf_package_loads_only_when_used():
    code = (
        "import sys, pyonebit; assert 'gguf' not in sys.modules; "
        "pyonebit.load_gguf; assert 'gguf' in sys.modules; print(pyonebit.GGUFContents.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "GGUFContents\n"
    with pytest.raises(AttributeError, match="module 'pyonebit' has no attribute 'load_ggml'"):
        pyonebit.load_ggml


# ---- the block codec -------------------------------------------------------


def test_codec_bytes_follow_ggml_bit_order(rng):
    # Weight k of a row is bit k % 32 of word k // 32 in pyonebit; in the
    # block it must be bit j % 8 of byte 2 + j // 8, j = k % 128.
    rows, k = 3, 384
    w = rng.standard_normal((rows, k)).astype(np.float16)
    wq, scales, _ = pyonebit.quantize(w, group_size=128, bits=1, mode="symmetric")
    raw = q1_0_blocks(wq, scales)
    assert raw.dtype == np.uint8 and raw.shape == (rows, 3 * 18)
    decoded = ggml_decode_q1_0(raw, rows, k)
    expected = pyonebit.dequantize(wq, scales, None, 128, 1, "symmetric", dtype=np.float32)
    np.testing.assert_array_equal(decoded, expected.astype(np.float64))
    # Signs as ggml's quantize_row_q1_0_ref sets them: bit 1 for w >= 0.
    np.testing.assert_array_equal(decoded > 0, w >= 0)


def test_codec_round_trip_is_exact(rng):
    wq = rng.integers(0, 2**32, size=(2, 5, 12), dtype=np.uint32)
    scales = rng.standard_normal((2, 5, 3)).astype(np.float16)
    back_wq, back_scales = packed_from_q1_0(q1_0_blocks(wq, scales))
    assert back_wq.dtype == np.uint32 and back_scales.dtype == np.float16
    np.testing.assert_array_equal(back_wq, wq)
    np.testing.assert_array_equal(back_scales.view(np.uint16), scales.view(np.uint16))


def test_codec_is_fast_on_a_large_matrix(rng):
    # 4096 x 11008 (an FFN projection): well under a second each way.
    wq = rng.integers(0, 2**32, size=(4096, 11008 // 32), dtype=np.uint32)
    scales = rng.random((4096, 11008 // 128), dtype=np.float32).astype(np.float16)
    t0 = time.perf_counter()
    raw = q1_0_blocks(wq, scales)
    t1 = time.perf_counter()
    back_wq, back_scales = packed_from_q1_0(raw)
    t2 = time.perf_counter()
    assert raw.shape == (4096, 86 * 18)
    assert t1 - t0 < 0.25 and t2 - t1 < 0.25, (t1 - t0, t2 - t1)
    np.testing.assert_array_equal(back_wq, wq)
    np.testing.assert_array_equal(back_scales, scales)


# ---- save -> load ----------------------------------------------------------


def test_round_trip_layers_tensors_metadata(rng, tmp_path):
    layers = {
        "blk.0.attn_q": symmetric_layer(rng, 5, 384),  # odd rows, 3 blocks per row
        "blk.0.ffn_down": symmetric_layer(rng, 1, 128),
        "output": symmetric_layer(rng, 7, 1024),
    }
    tensors = {
        "token_embd.weight": rng.standard_normal((11, 6)).astype(np.float32),
        "blk.0.attn_norm.weight": rng.standard_normal(6).astype(np.float16),
        "rope_freqs": rng.standard_normal((2, 3, 4)).astype(BF16),
        "positions": np.arange(10, dtype=np.int32),
    }
    metadata = {
        "pyonebit.name": "tiny",
        "pyonebit.count": np.uint32(4096),
        "pyonebit.eps": 1e-5,
        "pyonebit.big": 2**40,
        "pyonebit.flag": True,
        "pyonebit.tokens": ["a", "bc", ""],
        "pyonebit.ids": [1, -2, 3],
    }
    path = tmp_path / "m.gguf"
    pyonebit.save_gguf(path, layers, tensors, metadata, arch="llama")
    loaded = pyonebit.load_gguf(path)

    assert set(loaded.layers) == set(layers)
    for name, layer in layers.items():
        got = loaded.layers[name]
        assert (got.mode, got.bits, got.group_size) == ("symmetric", 1, 128)
        assert (got.out_features, got.in_features) == (layer.out_features, layer.in_features)
        assert got.scales.dtype == np.float16 and got.biases is None and got.bias is None
        np.testing.assert_array_equal(got.wq, layer.wq)
        np.testing.assert_array_equal(got.scales.view(np.uint16), layer.scales.view(np.uint16))

    assert set(loaded.tensors) == set(tensors)
    for name, array in tensors.items():
        got = loaded.tensors[name]
        assert got.dtype == array.dtype and got.shape == array.shape, name
        np.testing.assert_array_equal(got, array)

    expected = {
        "general.architecture": "llama",
        "pyonebit.name": "tiny",
        "pyonebit.count": np.uint32(4096),
        "pyonebit.eps": np.float32(1e-5),
        "pyonebit.big": np.int64(2**40),
        "pyonebit.flag": True,
        "pyonebit.tokens": ["a", "bc", ""],
        "pyonebit.ids": np.array([1, -2, 3], np.int32),
    }
    assert list(loaded.metadata) == list(expected)
    for key, value in expected.items():
        got = loaded.metadata[key]
        assert type(got) is type(value), key
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype, key
        np.testing.assert_array_equal(got, value)
    assert repr(loaded) == "GGUFContents(3 Q1_0 layers, 4 other tensors, 8 metadata keys)"

    # Saving what was loaded rewrites the same file: keys, types, tensors.
    again = tmp_path / "again.gguf"
    pyonebit.save_gguf(again, loaded.layers, loaded.tensors, loaded.metadata)
    assert again.read_bytes() == path.read_bytes()


def test_metadata_types_in_the_file(tmp_path):
    path = tmp_path / "m.gguf"
    metadata = {
        "k.u32": np.uint32(7),
        "k.f64": np.float64(0.1),
        "k.f32": 0.1,
        "k.i32": -5,
        "k.i64": -(2**40),
        "k.u64": 2**63,
        "k.str": "x",
        "k.bool": False,
        "k.ints": [1, 2**35],
        "k.u8s": [np.uint8(1), np.uint8(2)],
        "k.f32s": np.array([0.5, 2.0], np.float32),
    }
    pyonebit.save_gguf(path, {}, None, metadata)
    assert pyonebit.load_gguf(path).metadata["general.architecture"] == "pyonebit"
    fields = GGUFReader(path).fields
    types = {key: [GGUFValueType(t).name for t in fields[key].types] for key in metadata}
    assert types == {
        "k.u32": ["UINT32"],
        "k.f64": ["FLOAT64"],
        "k.f32": ["FLOAT32"],
        "k.i32": ["INT32"],
        "k.i64": ["INT64"],
        "k.u64": ["UINT64"],
        "k.str": ["STRING"],
        "k.bool": ["BOOL"],
        "k.ints": ["ARRAY", "INT64"],
        "k.u8s": ["ARRAY", "UINT8"],
        "k.f32s": ["ARRAY", "FLOAT32"],
    }
    assert fields["k.f64"].contents() == 0.1


def test_file_layout_and_ggml_decoding(rng, tmp_path):
    # What llama.cpp would see: a Q1_0 tensor "<name>.weight" with
    # ne = [K, N], whose blocks decode (ggml's way) to the layer's weights.
    rows, k = 9, 640
    layer = symmetric_layer(rng, rows, k)
    path = tmp_path / "m.gguf"
    pyonebit.save_gguf(path, {"blk.3.ffn_up": layer})
    qtype, ne, raw = raw_tensor(path, "blk.3.ffn_up.weight")
    assert qtype == Q1_0 and ne == [k, rows] and raw.shape == (rows, k // 128 * 18)
    decoded = ggml_decode_q1_0(raw, rows, k)
    np.testing.assert_array_equal(decoded, layer.dequantize(np.float32).astype(np.float64))

    loaded = pyonebit.load_gguf(path).layers["blk.3.ffn_up"]
    np.testing.assert_array_equal(loaded.dequantize(np.float32).astype(np.float64), decoded)
    x = rng.standard_normal((4, k)).astype(np.float32)
    assert_matmul_close(loaded(x), x, decoded, True, np.float32)


def test_load_a_file_written_by_gguf_py_alone(rng, tmp_path):
    # Blocks built byte by byte from the ggml definition (not by pyonebit)
    # and written with gguf-py: the layer must decode them the same way.
    rows, k = 3, 256
    raw = rng.integers(0, 256, size=(rows, k // 128, 18), dtype=np.uint8)
    d = rng.uniform(-2, 2, size=(rows, k // 128)).astype(np.float16)
    for r in range(rows):
        for b in range(k // 128):
            raw[r, b, 0:2] = np.frombuffer(struct.pack("<e", float(d[r, b])), np.uint8)
    raw = raw.reshape(rows, -1)
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path, [("w.weight", raw, Q1_0)])

    layer = pyonebit.load_gguf(path).layers["w"]
    assert (layer.out_features, layer.in_features) == (rows, k)
    decoded = ggml_decode_q1_0(raw, rows, k)
    np.testing.assert_array_equal(layer.dequantize(np.float32).astype(np.float64), decoded)
    ref = pyonebit.dequantize(layer.wq, layer.scales, None, 128, 1, "symmetric", dtype=np.float32)
    np.testing.assert_array_equal(ref.astype(np.float64), decoded)
    x = rng.standard_normal((2, k)).astype(np.float32)
    assert_matmul_close(layer(x), x, decoded, True, np.float32)
    assert_matmul_close(pyonebit.quantized_matmul(x, layer.wq, layer.scales, mode="symmetric"), x, decoded, True,
                        np.float32)


def test_bias_is_an_f32_tensor_and_comes_back(rng, tmp_path):
    rows, k = 6, 256
    bias = rng.standard_normal(rows).astype(np.float16)
    layer = symmetric_layer(rng, rows, k, bias=bias)
    path = tmp_path / "m.gguf"
    pyonebit.save_gguf(path, {"attn_q": layer})
    qtype, ne, stored = raw_tensor(path, "attn_q.bias")
    assert qtype == GGMLQuantizationType.F32 and ne == [rows]
    np.testing.assert_array_equal(stored, bias.astype(np.float32))

    loaded = pyonebit.load_gguf(path)
    assert "attn_q.bias" not in loaded.tensors
    got = loaded.layers["attn_q"]
    np.testing.assert_array_equal(got.bias, bias.astype(np.float32))
    x = rng.standard_normal((3, k)).astype(np.float32)
    decoded = ggml_decode_q1_0(raw_tensor(path, "attn_q.weight")[2], rows, k)
    assert_matmul_close(got(x) - got.bias, x, decoded, True, np.float32)


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), BF16], ids=str)
def test_wider_scales_are_rounded_to_float16(rng, tmp_path, dtype):
    layer = symmetric_layer(rng, 4, 256, dtype=dtype)
    assert layer.scales.dtype == dtype
    path = tmp_path / "m.gguf"
    pyonebit.save_gguf(path, {"w": layer})
    got = pyonebit.load_gguf(path).layers["w"]
    np.testing.assert_array_equal(got.wq, layer.wq)
    # Round to nearest even, from the exact float32 value of each scale.
    np.testing.assert_array_equal(got.scales, layer.scales.astype(np.float32).astype(np.float16))


def test_other_quantized_types_are_dequantized(rng, tmp_path):
    w = rng.standard_normal((4, 64)).astype(np.float32)
    q8 = gguf.quants.quantize(w, GGMLQuantizationType.Q8_0)
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path, [("q8", q8, GGMLQuantizationType.Q8_0)])
    got = pyonebit.load_gguf(path).tensors["q8"]
    assert got.dtype == np.float32 and got.shape == (4, 64)
    np.testing.assert_array_equal(got, gguf.quants.dequantize(q8, GGMLQuantizationType.Q8_0))
    assert np.abs(got - w).max() < 0.02


# ---- errors ----------------------------------------------------------------


def test_affine_layer_is_rejected(rng, tmp_path):
    w = rng.standard_normal((2, 128)).astype(np.float16)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=1, group_size=128, mode="affine")
    path = tmp_path / "m.gguf"
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(path, {"blk.0.attn_k": layer})
    assert str(err.value) == (
        "[save_gguf] layer 'blk.0.attn_k' has mode='affine'; Q1_0 stores only symmetric layers "
        "(affine layers cannot be stored as Q1_0)"
    )
    assert not path.exists()


def test_wrong_group_size_is_rejected(rng, tmp_path):
    w = rng.standard_normal((2, 128)).astype(np.float16)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=1, group_size=64, mode="symmetric")
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(tmp_path / "m.gguf", {"w": layer})
    assert str(err.value) == "[save_gguf] layer 'w' has group_size=64; Q1_0 blocks hold 128 weights"


def test_row_length_not_a_multiple_of_128_is_rejected(rng, tmp_path):
    # K = 96: a symmetric layer can hold it at group size 32, Q1_0 cannot.
    w = rng.standard_normal((2, 96)).astype(np.float16)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=1, group_size=32, mode="symmetric")
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(tmp_path / "m.gguf", {"w": layer})
    assert str(err.value) == "[save_gguf] layer 'w' has group_size=32; Q1_0 blocks hold 128 weights"
    # A file claiming a Q1_0 row of 96 weights: the reader refuses it.
    path = tmp_path / "bad.gguf"
    write_with_gguf_py(path, [("w.weight", np.zeros((2, 18), np.uint8), Q1_0)])
    data = bytearray(path.read_bytes())
    ne0 = data.index(struct.pack("<QQ", 128, 2))  # the tensor info's ne[0], ne[1]
    data[ne0 : ne0 + 8] = struct.pack("<Q", 96)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == (
        f"[load_gguf] {str(path)!r} is not a readable GGUF file: "
        "tensor 'w.weight' (Q1_0, ne = [96, 2]): ne[0] is not a multiple of the type's block of 128"
    )


def test_bias_of_the_wrong_shape_and_clashing_layer_names(tmp_path):
    path = tmp_path / "m.gguf"
    q1 = np.zeros((2, 18), np.uint8)
    write_with_gguf_py(path, [("w.weight", q1, Q1_0), ("w.bias", np.zeros(3, np.float32), None)])
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == (
        f"[load_gguf] {str(path)!r}: tensor 'w.bias' has shape (3,); as the bias of layer 'w' it must have shape (2,)"
    )

    write_with_gguf_py(path, [("w.weight", q1, Q1_0), ("w", q1, Q1_0)])
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == f"[load_gguf] {str(path)!r}: two Q1_0 tensors map to the layer name 'w'"


def test_q1_0_tensor_that_is_not_2d_is_rejected(tmp_path):
    # GGUF allows up to 4 dimensions (e.g. stacked MoE experts, ne = [K, N, E]);
    # QuantizedLinear is 2-D, so load_gguf says so instead of guessing a split.
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path, [("blk.0.ffn_up_exps.weight", np.zeros((2, 3, 18), np.uint8), Q1_0)])
    assert raw_tensor(path, "blk.0.ffn_up_exps.weight")[1] == [128, 3, 2]
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == (
        f"[load_gguf] {str(path)!r}: Q1_0 tensor 'blk.0.ffn_up_exps.weight' has 3 dimensions (ne = [128, 3, 2]); "
        "layers are 2-D, so only 2-D Q1_0 tensors can be loaded"
    )


def test_scale_beyond_float16_is_rejected(rng, tmp_path):
    w = np.full((1, 128), 1e5, np.float32)
    layer = pyonebit.QuantizedLinear.from_float(w, bits=1, group_size=128, mode="symmetric")
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(tmp_path / "m.gguf", {"w": layer})
    assert str(err.value) == (
        "[save_gguf] layer 'w' has the scale 100000, which float16 cannot hold (Q1_0 stores each scale as float16)"
    )


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == f"[load_gguf] no file at {str(path)!r}"


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGML" + bytes(60))
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == f"[load_gguf] {str(path)!r} is not a readable GGUF file: GGUF magic invalid"


def test_big_endian_file_is_rejected(tmp_path):
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path, [("v", np.ones(4, np.float32), None)], endianess=gguf.GGUFEndian.BIG)
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == (
        f"[load_gguf] {str(path)!r} is a big-endian GGUF file; only little-endian files are supported"
    )


def test_type_gguf_cannot_dequantize(tmp_path):
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path, [("blk.0.q81", np.zeros((2, 40), np.uint8), GGMLQuantizationType.Q8_1)])
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    assert str(err.value) == (
        f"[load_gguf] {str(path)!r}: tensor 'blk.0.q81' has type Q8_1, which the gguf package cannot dequantize"
    )


def test_bad_tensors_and_names(rng, tmp_path):
    path = tmp_path / "m.gguf"
    layer = symmetric_layer(rng, 2, 128, bias=np.zeros(2, np.float32))
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(path, {"w": layer}, {"w.bias": np.zeros(2, np.float32)})
    assert str(err.value) == "[save_gguf] two tensors would be named 'w.bias'"
    with pytest.raises(TypeError) as err:
        pyonebit.save_gguf(path, {"w": np.zeros((2, 4), np.uint32)})
    assert str(err.value) == "[save_gguf] layers['w'] is a ndarray, not a pyonebit.QuantizedLinear"
    with pytest.raises(TypeError) as err:
        pyonebit.save_gguf(path, {}, {"t": np.zeros(3, np.uint16)})
    assert str(err.value) == (
        "[save_gguf] tensors['t'] has dtype uint16; GGUF plain tensors are "
        "float32, float16, bfloat16, float64, int8, int16, int32 or int64"
    )
    with pytest.raises(ValueError) as err:
        pyonebit.save_gguf(path, {}, {"t": np.float32(1.0)})
    assert str(err.value) == "[save_gguf] tensors['t'] has 0 dimensions; GGUF tensors have 1 to 4"
    assert not path.exists()


def test_alignment_from_metadata(rng, tmp_path):
    path = tmp_path / "m.gguf"
    layer = symmetric_layer(rng, 3, 128)
    pyonebit.save_gguf(path, {"w": layer}, {"v": np.ones(3, np.float32)}, {"general.alignment": 64})
    reader = GGUFReader(path)
    assert reader.alignment == 64
    assert all(t.data_offset % 64 == 0 for t in reader.tensors)
    loaded = pyonebit.load_gguf(path)
    assert type(loaded.metadata["general.alignment"]) is np.uint32
    np.testing.assert_array_equal(loaded.layers["w"].wq, layer.wq)


def test_bad_metadata(tmp_path):
    path = tmp_path / "m.gguf"
    cases = [
        ({"general.architecture": "x"}, "llama", ValueError,
         "[save_gguf] arch='llama' disagrees with metadata['general.architecture']='x'"),
        ({"general.architecture": 3}, None, TypeError, "[save_gguf] the architecture must be a str, got int"),
        ({"general.alignment": 48}, None, ValueError,
         "[save_gguf] metadata['general.alignment'] must be a power of two below 2**32, got 48"),
        ({"k": None}, None, TypeError,
         "[save_gguf] metadata 'k' is a NoneType; GGUF stores bool, int, float, str, NumPy scalars, "
         "1-D NumPy arrays and lists of one of these"),
        ({"k": []}, None, ValueError, "[save_gguf] metadata 'k' is empty; gguf-py's writer cannot store empty arrays"),
        ({"k": [1, "a"]}, None, TypeError,
         "[save_gguf] metadata 'k' mixes item types ['INT32', 'STRING']; a GGUF array has one item type"),
        ({"k": [[1]]}, None, TypeError, "[save_gguf] metadata 'k' is a nested list; only flat lists are supported"),
        ({"k": np.zeros((2, 2), np.int32)}, None, ValueError,
         "[save_gguf] metadata 'k' is a 2-D array; GGUF arrays are 1-D"),
        ({"k": 2**64}, None, ValueError,
         "[save_gguf] metadata 'k' holds an integer outside the range of INT64 and UINT64"),
        ({"k": np.float16(1)}, None, TypeError,
         "[save_gguf] metadata 'k' is a NumPy float16 scalar, which GGUF cannot store"),
        ({"k": np.zeros(2, np.float16)}, None, TypeError,
         "[save_gguf] metadata 'k' is a NumPy float16 array, which GGUF cannot store"),
    ]
    for metadata, arch, error, message in cases:
        with pytest.raises(error) as err:
            pyonebit.save_gguf(path, {}, None, metadata, arch=arch)
        assert str(err.value) == message
    assert not path.exists()
