"""How much does a weight set's network amplify float32 rounding? The
evidence behind the q1-affine row of benchmarks/validate_lm.py (its packed vs
dequantized KL is above the issue's 1e-6 target, and so is float32 itself).

Only NumPy runs here, on the dequantized weights (no packed kernel), over
validate_lm's qmm chunks:

* f32 vs f64: the whole network in float32 vs float64;
* f32 vs f32: two float32 runs that differ only in the summation order of
  every product (K split in two halves, summed);
* rounding in one place: a float64 network whose products run in float32
  (as the kernels and BLAS do), or are exact but have their outputs rounded
  to float32 (all products, or one block's), or whose attention scores are
  rounded to float32;
* the residual stream's relative float32 error after blocks 1, 10, 20, 30,
  its largest RMS, and the largest attention score;
* which positions carry the f32-vs-f64 KL mean, and how close their top two
  logits are.

    python examples/decoder_lm/conditioning.py [q1-affine q1-symmetric gguf ...]
"""
import contextlib
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
import model  # noqa: E402
import validate_lm as vl  # noqa: E402
import weights  # noqa: E402
from gguf_llama import Checkpoint  # noqa: E402


class SplitK(model.Dense):
    """The same float32 product summed in another order: two halves of K."""

    def __call__(self, x):
        x, k = x.astype(self.weight.dtype, copy=False), self.weight.shape[1] // 2
        return x[..., :k] @ self.weight[:, :k].T + x[..., k:] @ self.weight[:, k:].T


class Float32Product(model.Dense):
    """A float32 product (float32 sums, as kernels and BLAS) handed on as float64."""

    def __call__(self, x):
        return super().__call__(x).astype(np.float64)


class RoundedOutput(model.Dense):
    """A float64 product whose result is rounded once to float32."""

    def __init__(self, weight):
        super().__init__(weight, np.float64)

    def __call__(self, x):
        return super().__call__(x).astype(np.float32).astype(np.float64)


@contextlib.contextmanager
def patched(name, wrap):
    """model.<name> replaced by wrap(original) inside the block."""
    original = getattr(model, name)
    setattr(model, name, wrap(original))
    try:
        yield
    finally:
        setattr(model, name, original)


def residuals(decoder, seq):
    """The residual stream at every RMSNorm of one forward pass (float64 copies)."""
    seen = []

    def record(norm):
        return lambda x, w, eps: (seen.append(x.astype(np.float64)), norm(x, w, eps))[1]

    with patched("rms_norm", record):
        decoder.forward(seq, decoder.new_cache(len(seq)))
    return seen


def largest_attention_score(decoder, seq):
    top = [0.0]

    def record(softmax):
        def f(x, axis=-1):
            top[0] = max(top[0], float(np.abs(x[np.isfinite(x)]).max()))
            return softmax(x, axis)
        return f

    with patched("softmax", record):
        decoder.forward(seq, decoder.new_cache(len(seq)))
    return top[0]


def report(ckpt, name, work):
    w = {n: layer.dequantize(np.float32) for n, layer in weights.weight_set(ckpt, name, "cpu").items()}
    c, norms = ckpt.config, ckpt.norms

    def decoder(layer_for, dtype=np.float64):
        return model.Decoder(c, norms, {n: layer_for(n, m) for n, m in w.items()}, dtype)

    d64 = decoder(lambda n, m: model.Dense(m, np.float64))
    d32 = decoder(lambda n, m: model.Dense(m), np.float32)
    exact, f32 = vl.run_qmm(d64, work.chunks), vl.run_qmm(d32, work.chunks)

    def kl(test_logits):
        s = vl.summarize(exact, test_logits)
        return f"KL {s['fwd_kl']:.1e}, top-1 min {s['top1_min']:.2%}"

    print(f"== {name}")
    print(f"  f32 vs f64: {kl(f32)}, max |dlogit| {vl.summarize(exact, f32)['max_dlogit']:.1e}")
    order = vl.summarize(f32, vl.run_qmm(decoder(lambda n, m: SplitK(m), np.float32), work.chunks))
    print(f"  f32 vs f32 (other summation order): KL {order['fwd_kl']:.1e}, top-1 min {order['top1_min']:.2%}")
    for label, layer in (("every product in f32", Float32Product), ("every product's output rounded to f32", RoundedOutput)):
        print(f"  f64, {label}: {kl(vl.run_qmm(decoder(lambda n, m: layer(m)), work.chunks))}")
    with patched("softmax", lambda sm: lambda x, axis=-1: sm(x.astype(np.float32).astype(np.float64), axis)):
        print(f"  f64, attention scores rounded to f32: {kl(vl.run_qmm(d64, work.chunks))}")
    for block in (0, 10, 20, 29):
        one = decoder(lambda n, m: RoundedOutput(m) if n.startswith(f"blk.{block}.") else model.Dense(m, np.float64))
        print(f"  f64, only block {block}'s product outputs rounded to f32: {kl(vl.run_qmm(one, work.chunks))}")
    seq = work.chunks[0]
    r64, r32 = residuals(d64, seq), residuals(d32, seq)
    rel = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(r32, r64)]
    # Two norms per block: norm 2b sees the stream after b blocks (2 n_layers: the output norm).
    after = {b: rel[2 * b] for b in (1, 10, 20, c.n_layers)}
    print("  residual relative f32 error after blocks " + ", ".join(f"{b}: {e:.1e}" for b, e in after.items()))
    print(f"  residual RMS, largest: {max(float(np.sqrt((r ** 2).mean(-1)).max()) for r in r64):.0f}; "
          f"largest attention score: {largest_attention_score(d64, seq):.0f}")
    per_pos = np.concatenate([vl.divergence(a, b)[0] for a, b in zip(exact, f32)])
    logits = np.concatenate(exact)
    top2 = np.sort(logits, -1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    worst = np.argsort(per_pos)[::-1]
    print(f"  KL per position (f32 vs f64): {len(per_pos)} positions, median {np.median(per_pos):.1e}, "
          f"worst {per_pos[worst[0]]:.1e} (gap between its top two logits {gap[worst[0]]:.2f}); "
          f"the worst 5 carry {per_pos[worst[:5]].sum() / per_pos.sum():.0%} of the mean")
    print(f"  smallest gap between a position's top two logits: {gap.min():.1e}", flush=True)


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or ["q1-affine", "q1-symmetric", "gguf"]
    unknown = sorted(set(names) - {"gguf", *weights.CONFIGS})
    if unknown:
        raise SystemExit(f"weight sets must be among {['gguf', *weights.CONFIGS]}, got {unknown}")
    ckpt = Checkpoint()
    work = vl.Workload(ckpt, len(vl.CHUNKS), 64, 1, 1)
    for name in names:
        report(ckpt, name, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
