"""load_gguf and save_gguf against hostile and careless files: every bad
field is a ValueError naming the file and the field, in bounded time and
memory; a loaded file saves back with its quantized tensors' own bytes; a
failed save leaves the old file. Cases that could hang or exhaust memory
run in a subprocess with an address-space cap and a timeout."""
import os
import struct
import sys

import gguf.quants
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFValueType

import pyonebit
from hostile_files import GGUFBuilder, run_capped, seed_gguf
from pyonebit.io import gguf_file

T = GGMLQuantizationType
V = GGUFValueType


def load_error(path) -> str:
    with pytest.raises(ValueError) as err:
        pyonebit.load_gguf(path)
    message = str(err.value)
    assert message.startswith(f"[load_gguf] {str(path)!r} is not a readable GGUF file: "), message
    return message.split("file: ", 1)[1]


def field_offset(builder, label):
    return next(o for o, _, name in builder.fields if name == label)


@pytest.fixture
def seed(rng):
    return seed_gguf(rng)


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and RLIMIT_AS")
def test_huge_array_in_a_tiny_file_is_refused_in_bounded_memory(tmp_path):
    # 2**62 uint8 items declared, none present: gguf-py looped, growing to the cap.
    path = tmp_path / "m.gguf"
    b = GGUFBuilder().kv("a", V.ARRAY, (V.UINT8, []))
    raw = b.build()
    at = field_offset(b, "array length of a")
    path.write_bytes(raw[:at] + struct.pack("<Q", 2**62) + raw[at + 8:])
    assert len(path.read_bytes()) <= 64
    out = run_capped(f"""
        try:
            pyonebit.load_gguf({str(path)!r})
        except ValueError as e:
            print(e)
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the length of array 'a' = 4611686018427387904 at byte" in out.stdout, out.stdout
    assert "cannot fit" in out.stdout


@pytest.mark.parametrize("count_field", ["tensor count", "kv count"])
def test_huge_counts_are_refused(tmp_path, seed, count_field):
    raw = bytearray(seed.build())
    at = field_offset(seed, count_field)
    raw[at:at + 8] = struct.pack("<Q", 2**63)
    (tmp_path / "m.gguf").write_bytes(raw)
    assert "cannot fit" in load_error(tmp_path / "m.gguf")


def test_string_running_past_the_end_is_refused(tmp_path):
    raw = GGUFBuilder().kv("general.name", V.STRING, "abcdef").build()
    at = raw.index(b"abcdef") - 8
    path = tmp_path / "m.gguf"
    path.write_bytes(raw[:at] + struct.pack("<Q", 10**6) + raw[at + 8:])
    assert load_error(path).startswith("the value of key 'general.name' (1000000 bytes) at byte ")
    path.write_bytes(raw[: raw.index(b"abcdef") + 3])  # cut inside the string
    assert "needs 6 bytes but only 3 are left" in load_error(path)


def test_offset_that_would_wrap_is_refused(tmp_path):
    # 2**64 - 64 added to the data start wraps, in 64-bit arithmetic, to a
    # point inside the header: the tensor must not be read from there.
    b = GGUFBuilder().tensor("t", [4], T.F32, bytes(16))
    b.infos[0] = ("t", [4], T.F32, 2**64 - 64)
    path = tmp_path / "m.gguf"
    path.write_bytes(b.build())
    assert load_error(path) == (
        f"tensor 't' (F32, ne = [4]) needs 16 bytes at offset {2**64 - 64} of the data "
        f"(byte {2**64 - 64 + 64}), past the end of the {path.stat().st_size}-byte file")


def test_misaligned_offset_is_refused(tmp_path):
    b = GGUFBuilder().tensor("t", [4], T.F32, bytes(64))
    b.infos[0] = ("t", [4], T.F32, 4)
    (tmp_path / "m.gguf").write_bytes(b.build())
    assert load_error(tmp_path / "m.gguf") == (
        "tensor 't' (F32, ne = [4]) has the offset 4, not a multiple of the alignment 32")


def test_overlapping_tensors_are_refused(tmp_path):
    b = GGUFBuilder().tensor("a", [16], T.F32, bytes(64))
    b.tensor("b", [8], T.F32, b"", offset=32)
    (tmp_path / "m.gguf").write_bytes(b.build())
    assert load_error(tmp_path / "m.gguf") == "tensors 'a' and 'b' overlap in the file"


def test_bad_alignment_key_is_refused(tmp_path):
    for vtype, value in ((V.UINT32, 48), (V.UINT32, 0), (V.UINT64, 32)):
        (tmp_path / "m.gguf").write_bytes(GGUFBuilder().kv("general.alignment", vtype, value).build())
        assert load_error(tmp_path / "m.gguf").startswith("general.alignment must be a UINT32 power of two")


def test_duplicate_keys_and_tensor_names_are_value_errors(tmp_path):
    b = GGUFBuilder().kv("k", V.UINT8, 1).kv("k", V.UINT8, 2)
    (tmp_path / "m.gguf").write_bytes(b.build())
    assert load_error(tmp_path / "m.gguf") == "key 'k' at byte 38 appears twice"
    b = GGUFBuilder().tensor("t", [4], T.F32, bytes(16)).tensor("t", [4], T.F32, bytes(16))
    (tmp_path / "m.gguf").write_bytes(b.build())
    assert load_error(tmp_path / "m.gguf") == "tensor name 't' appears twice"


def test_nested_arrays_are_value_errors(tmp_path):
    # gguf-py recursed once per level: 100000 levels were a RecursionError.
    depth = 100_000
    b = GGUFBuilder().kv("deep", V.ARRAY, (V.UINT8, []))
    raw = b.build()
    at = field_offset(b, "item type of deep")
    nested = struct.pack("<IQ", V.ARRAY, 1) * depth + struct.pack("<IQ", V.UINT8, 0)
    (tmp_path / "m.gguf").write_bytes(bytes(raw[:at]) + nested + bytes(raw[at + 12:]))
    assert load_error(tmp_path / "m.gguf") == (
        "key 'deep' is an array of arrays, which GGUF readers do not support")


@pytest.mark.parametrize("mutation, message", [
    (("version", 1), "GGUF version 1 is not supported (pyonebit reads versions 2 and 3)"),
    (("n_dims of norm", 5), "tensor 'norm' at byte"),
    (("ne[0] of norm", 2**63), "has a dimension beyond INT64_MAX"),
    (("type of norm", 9999), "has the unknown GGML type 9999"),
    (("type of general.flag", 77), "key 'general.flag' has the unknown value type 77"),
])
def test_field_mutations(tmp_path, seed, mutation, message):
    raw = bytearray(seed.build())
    label, value = mutation
    at, fmt, _ = next(f for f in seed.fields if f[2] == label)
    raw[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    (tmp_path / "m.gguf").write_bytes(raw)
    assert message in load_error(tmp_path / "m.gguf")


def test_non_utf8_and_bad_bool(tmp_path):
    (tmp_path / "m.gguf").write_bytes(GGUFBuilder().kv("k", V.STRING, b"\xff\xfe").build())
    assert load_error(tmp_path / "m.gguf").startswith("the value of key 'k' at byte")
    raw = bytearray(GGUFBuilder().kv("k", V.BOOL, True).build())
    raw[raw.index(b"k") + 1 + 4] = 7  # the value, after the key and its type
    (tmp_path / "m.gguf").write_bytes(raw)
    assert "holds a bool byte other than 0 or 1" in load_error(tmp_path / "m.gguf")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_directory_are_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.gguf")
    (tmp_path / "dir.gguf").mkdir()
    out = run_capped(f"""
        for name in ("pipe.gguf", "dir.gguf"):
            try:
                pyonebit.load_gguf(os.path.join({str(tmp_path)!r}, name))
            except ValueError as e:
                print(e)
    """, timeout=20)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        f"[load_gguf] {str(tmp_path / name)!r} is not a readable GGUF file: {str(tmp_path / name)!r} "
        "is not a regular file" for name in ("pipe.gguf", "dir.gguf")]


# ---- save_gguf: fidelity and atomic replacement ------------------------------------


def test_round_trip_keeps_every_tensor_type_in_the_file(tmp_path, seed):
    # Read back with gguf-py, independently of pyonebit's reader.
    from gguf import GGUFReader

    src, dst = tmp_path / "a.gguf", tmp_path / "b.gguf"
    src.write_bytes(seed.build())
    m = pyonebit.load_gguf(src)
    pyonebit.save_gguf(dst, m.layers, m.tensors, m.metadata)
    types = lambda path: {t.name: (t.tensor_type, np.array(t.data).tobytes()) for t in GGUFReader(path).tensors}
    assert types(dst) == types(src)


def test_quantized_tensors_are_saved_in_their_own_type_and_bytes(tmp_path, seed):
    src, dst = tmp_path / "a.gguf", tmp_path / "b.gguf"
    src.write_bytes(seed.build())
    m = pyonebit.load_gguf(src)
    assert isinstance(m.tensors["q8"], gguf_file.GGUFQuantized) and m.tensors["q8"].dtype == np.float32
    pyonebit.save_gguf(dst, m.layers, m.tensors, m.metadata)
    again = pyonebit.load_gguf(dst)
    assert again.tensors["q8"].ggml_type == T.Q8_0
    assert again.tensors["q8"].raw.tobytes() == m.tensors["q8"].raw.tobytes()
    np.testing.assert_array_equal(again.tensors["q8"], m.tensors["q8"])
    assert again.metadata.keys() == m.metadata.keys()


def test_changed_quantized_tensor_is_not_saved_as_stale_bytes(tmp_path, seed):
    src = tmp_path / "a.gguf"
    src.write_bytes(seed.build())
    m = pyonebit.load_gguf(src)
    m.tensors["q8"][0, 0] += 1
    with pytest.raises(ValueError, match=r"\[save_gguf\] tensors\['q8'\] was loaded as Q8_0 and its values "
                                         r"changed since; pyonebit cannot re-quantize Q8_0"):
        pyonebit.save_gguf(tmp_path / "b.gguf", m.layers, m.tensors, m.metadata)
    # A derived array, or np.asarray, is plain float32 data: saved as F32.
    tensors = dict(m.tensors, q8=np.asarray(m.tensors["q8"]), q8x2=m.tensors["q8"] * 2)
    pyonebit.save_gguf(tmp_path / "b.gguf", m.layers, tensors, m.metadata)
    again = pyonebit.load_gguf(tmp_path / "b.gguf")
    assert type(again.tensors["q8"]) is np.ndarray and type(again.tensors["q8x2"]) is np.ndarray
    np.testing.assert_array_equal(again.tensors["q8"], m.tensors["q8"])


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_file(tmp_path, seed, monkeypatch, failure):
    path = tmp_path / "m.gguf"
    path.write_bytes(seed.build())
    os.chmod(path, 0o640)
    before = path.read_bytes()
    m = pyonebit.load_gguf(path)

    def fail(self, *args, **kwargs):
        self.fout[0].write(b"partial")  # something already reached the temporary file
        raise failure

    monkeypatch.setattr(gguf_file.GGUFWriter, "write_tensors_to_file", fail)
    with pytest.raises(type(failure)):
        pyonebit.save_gguf(path, m.layers, m.tensors, m.metadata)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.gguf"]  # no temporary file left
    monkeypatch.undo()
    pyonebit.save_gguf(path, m.layers, m.tensors, m.metadata)
    assert (os.stat(path).st_mode & 0o777) == 0o640  # the replaced file's permissions
    assert os.listdir(tmp_path) == ["m.gguf"]


@pytest.mark.parametrize("item_type, items", [
    (V.BOOL, [True] * 100_000),  # the worst case: an 8-byte list slot per 1-byte item
    (V.STRING, ["ab"] * 50_000),
    (V.UINT8, [1] * 100_000),
])
def test_memory_is_a_small_multiple_of_the_file(tmp_path, item_type, items):
    import tracemalloc

    path = tmp_path / "m.gguf"
    path.write_bytes(GGUFBuilder().kv("a", V.ARRAY, (item_type, items)).build())
    tracemalloc.start()
    try:
        pyonebit.load_gguf(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * path.stat().st_size, (peak, path.stat().st_size)
