"""Small checkpoint files for the hostile-input tests and the fuzz harness:
GGUF files assembled field by field (so a test knows where every count,
length and offset lies and can set it to anything), and MLX checkpoints
written without MLX."""
from __future__ import annotations

import json
import os
import struct
import sys
import textwrap
from dataclasses import dataclass, field

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

import pyonebit
from conftest import run_in_process_group
from safetensors.numpy import save_file

GGUF_ALIGNMENT = 32

# Run first in every capped interpreter: the imports, then the cap on top of
# the address space they took (one BLAS thread: each reserves its own buffers).
_CAP_PRELUDE = """
import os, resource, sys
import numpy as np, pyonebit, pyonebit.io.gguf_file, pyonebit.io.mlx_checkpoint
vm = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (vm + {cap_mib} * 2**20, resource.RLIM_INFINITY))
"""


def run_capped(code: str, cap_mib: int = 512, timeout: float = 30, args: tuple = ()):
    """Runs ``code`` in a fresh interpreter, in its own process group, limited
    to ``cap_mib`` MiB of address space beyond its imports. Returns the
    CompletedProcess; on a timeout the whole group is killed and
    subprocess.TimeoutExpired raised."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    source = _CAP_PRELUDE.format(cap_mib=cap_mib) + textwrap.dedent(code)
    return run_in_process_group([sys.executable, "-c", source, *args], timeout, env)


@dataclass
class GGUFBuilder:
    """Appends GGUF fields and remembers the offset and width of each numeric
    field that is a count, length, dimension, type or offset (``fields``),
    for mutators. ``build()`` returns the file's bytes."""

    kvs: list = field(default_factory=list)  # (key, encoder) pairs
    infos: list = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    fields: list = field(default_factory=list)  # (offset, struct format, label)
    alignment: int = GGUF_ALIGNMENT

    def kv(self, key: str, vtype: GGUFValueType, value) -> "GGUFBuilder":
        self.kvs.append((key, vtype, value))
        return self

    def tensor(self, name: str, ne: list[int], ggml_type: GGMLQuantizationType, raw: bytes,
               offset: int | None = None) -> "GGUFBuilder":
        """A tensor of ``raw`` bytes; by default placed at the next aligned offset."""
        if offset is None:
            self.data += bytes(-len(self.data) % self.alignment)
            offset = len(self.data)
            self.data += raw
        self.infos.append((name, ne, ggml_type, offset))
        return self

    def build(self, n_kv: int | None = None, n_tensors: int | None = None, version: int = 3) -> bytes:
        self.fields = []
        out = bytearray(b"GGUF")
        self._num(out, "<I", version, "version")
        self._num(out, "<Q", len(self.infos) if n_tensors is None else n_tensors, "tensor count")
        self._num(out, "<Q", len(self.kvs) if n_kv is None else n_kv, "kv count")
        for key, vtype, value in self.kvs:
            self._str(out, key, "key length")
            self._num(out, "<I", vtype, f"type of {key}")
            self._value(out, vtype, value, key)
        for name, ne, ggml_type, offset in self.infos:
            self._str(out, name, "tensor name length")
            self._num(out, "<I", len(ne), f"n_dims of {name}")
            for i, n in enumerate(ne):
                self._num(out, "<Q", n, f"ne[{i}] of {name}")
            self._num(out, "<I", ggml_type, f"type of {name}")
            self._num(out, "<Q", offset, f"offset of {name}")
        out += bytes(-len(out) % self.alignment)
        return bytes(out + self.data)

    def _num(self, out, fmt, value, label):
        self.fields.append((len(out), fmt, label))
        out += struct.pack(fmt, value)

    def _str(self, out, text, label):
        raw = text.encode() if isinstance(text, str) else text
        self._num(out, "<Q", len(raw), label)
        out += raw

    def _value(self, out, vtype, value, key):
        if vtype == GGUFValueType.STRING:
            self._str(out, value, f"string length of {key}")
        elif vtype == GGUFValueType.ARRAY:
            item_type, items = value
            self._num(out, "<I", item_type, f"item type of {key}")
            self._num(out, "<Q", len(items), f"array length of {key}")
            for item in items:
                self._value(out, item_type, item, key)
        elif vtype == GGUFValueType.BOOL:
            out += struct.pack("<?", value)
        else:
            out += np.array([value], dtype=SCALAR_DTYPES[vtype]).tobytes()


SCALAR_DTYPES = {
    GGUFValueType.UINT8: "<u1", GGUFValueType.INT8: "<i1", GGUFValueType.UINT16: "<u2",
    GGUFValueType.INT16: "<i2", GGUFValueType.UINT32: "<u4", GGUFValueType.INT32: "<i4",
    GGUFValueType.UINT64: "<u8", GGUFValueType.INT64: "<i8", GGUFValueType.FLOAT32: "<f4",
    GGUFValueType.FLOAT64: "<f8",
}


def seed_gguf(rng: np.random.Generator) -> GGUFBuilder:
    """A valid file with one of everything load_gguf reads: metadata of each
    kind, a Q1_0 layer with its bias, F32, F16 and Q8_0 tensors."""
    import gguf.quants

    from pyonebit.io.gguf_q1 import q1_0_blocks

    layer = pyonebit.QuantizedLinear.from_float(
        rng.standard_normal((4, 256)).astype(np.float16), bits=1, group_size=128, mode="symmetric")
    q8 = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), GGMLQuantizationType.Q8_0)
    b = GGUFBuilder()
    b.kv("general.architecture", GGUFValueType.STRING, "llama")
    b.kv("general.alignment", GGUFValueType.UINT32, GGUF_ALIGNMENT)
    b.kv("llama.block_count", GGUFValueType.UINT32, 1)
    b.kv("llama.rope.freq_base", GGUFValueType.FLOAT32, 10000.0)
    b.kv("general.flag", GGUFValueType.BOOL, True)
    b.kv("tokenizer.ggml.tokens", GGUFValueType.ARRAY, (GGUFValueType.STRING, ["a", "bc", ""]))
    b.kv("tokenizer.ggml.scores", GGUFValueType.ARRAY, (GGUFValueType.FLOAT32, [0.5, -1.0, 2.0]))
    b.tensor("blk.0.attn_q.weight", [256, 4], GGMLQuantizationType.Q1_0,
             q1_0_blocks(layer.wq, layer.scales).tobytes())
    b.tensor("blk.0.attn_q.bias", [4], GGMLQuantizationType.F32, rng.standard_normal(4).astype("<f4").tobytes())
    b.tensor("norm", [8], GGMLQuantizationType.F16, rng.standard_normal(8).astype("<f2").tobytes())
    b.tensor("q8", [64, 2], GGMLQuantizationType.Q8_0, q8.tobytes())
    return b


def write_mlx_checkpoint(directory, rng, shards: int = 1) -> dict:
    """A small MLX-format checkpoint (two affine 1-bit layers in groups of
    128, a bias and a norm), written with pyonebit.quantize and the
    safetensors package. Returns the config."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, out in (("model.layers.0.q_proj", 8), ("lm_head", 4)):
        wq, scales, biases = pyonebit.quantize(rng.standard_normal((out, 256)).astype(np.float32), 128, 1)
        tensors.update({f"{name}.weight": wq, f"{name}.scales": scales, f"{name}.biases": biases})
    tensors["model.layers.0.q_proj.bias"] = rng.standard_normal(8).astype(np.float32)
    tensors["model.norm.weight"] = np.ones(256, np.float32)
    config = {"model_type": "llama", "hidden_size": 256,
              "quantization": {"group_size": 128, "bits": 1, "lm_head": {"group_size": 128, "bits": 1}}}
    (directory / "config.json").write_text(json.dumps(config))
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, str(directory / "model.safetensors"))
        return config
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        save_file(part, str(directory / file))
        weight_map.update(dict.fromkeys(part, file))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return config
