"""The streaming safetensors writer: what it writes is what safetensors and
MLX read, every tensor is aligned to its element size, and a file left
incomplete is removed."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import BF16
from mlx_peer import mx, to_np
from pyonebit.io._safetensors import StreamingWriter, read_header, read_tensor

SPECS = {"odd": (np.float16, (3,)), "words": (np.uint32, (2, 3)), "half": (BF16, (5,)),
         "empty": (np.float32, (0, 4)), "scalar": (np.int64, ()), "bytes": (np.uint8, (7,))}


def arrays(rng):
    def sample(dtype, shape):
        if dtype == np.uint32:
            return rng.integers(0, 2**32, shape, dtype=np.uint32)
        return rng.standard_normal(shape).astype(np.float32).astype(dtype)

    return {name: sample(dtype, shape) for name, (dtype, shape) in SPECS.items()}


def test_round_trip_through_safetensors_and_mlx(tmp_path, rng):
    data = arrays(rng)
    path = tmp_path / "t.safetensors"
    with StreamingWriter(path, SPECS, {"format": "mlx"}) as w:
        for name in reversed(list(data)):  # any order
            w.write(name, data[name])
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert header_len % 8 == 0
    header = json.loads(raw[8:8 + header_len])
    assert header.pop("__metadata__") == {"format": "mlx"}
    for name, entry in header.items():
        assert entry["data_offsets"][0] % np.dtype(SPECS[name][0]).itemsize == 0, name
    mlx_read, meta = mx.load(str(path), return_metadata=True)
    assert meta == {"format": "mlx"}
    infos, _ = read_header(path)
    plain = load_file(str(path))  # BF16 works here because ml_dtypes is imported
    for name, a in data.items():
        for got in (to_np(mlx_read[name]), read_tensor(infos[name]), plain[name]):
            assert got.dtype == a.dtype and got.shape == a.shape, name
            assert got.tobytes() == a.tobytes(), name


def test_incomplete_file_is_removed(tmp_path):
    path = tmp_path / "t.safetensors"
    w = StreamingWriter(path, {"a": (np.float32, (2,)), "b": (np.float32, (2,))})
    w.write("a", np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"t.safetensors: tensors never written: b"):
        w.close()
    assert not path.exists()
    with pytest.raises(RuntimeError, match="boom"):
        with StreamingWriter(path, {"a": (np.float32, (2,))}):
            raise RuntimeError("boom")
    assert not path.exists()


def test_write_checks_the_header(tmp_path):
    with StreamingWriter(tmp_path / "t.safetensors", {"a": (np.float16, (2, 2))}) as w:
        with pytest.raises(ValueError, match=r"tensor 'a': the header says float16 \(2, 2\), "
                                             r"got float32 \(2, 2\)"):
            w.write("a", np.zeros((2, 2), np.float32))
        with pytest.raises(ValueError, match=r"tensor 'z' is not in the header"):
            w.write("z", np.zeros(2, np.float16))
        w.write("a", np.zeros((2, 2), np.float16))
        with pytest.raises(ValueError, match=r"tensor 'a' was already written"):
            w.write("a", np.zeros((2, 2), np.float16))
