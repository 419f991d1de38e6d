"""Benchmark of the quantized matmul: pyonebit at 1/2/4/8 bits on every
available backend against a NumPy float32 dense matmul and MLX's
``quantized_matmul`` (1-bit, on the CPU). Emulated backends are skipped: they
run the Metal kernels on a CPU emulator, a correctness check, not a speed.

The shapes are the seed's layers (weights N x K, group size 128), at M = 1
(token generation), 32 and 512 (prompt processing); activations are float32.
pyonebit is timed as ``QuantizedLinear`` calls (no bias), whose weights are
in the layout the backend reads fastest (``cpu_preferred_layout``), as in a
model loaded with ``load_mlx``.
Every number is the median of ``--repeats`` timed calls in this process,
after 50 ms of warm-up calls; with ``--rounds R`` each cell is measured R times,
NumPy and pyonebit alternating, and the median over rounds is reported with
the range of the 1-bit speed-up.

Quick run (well under a minute)::

    python -m pyonebit.bench --shapes attn_proj --m 1,32 --repeats 5

NumPy's BLAS may read OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; for a fair dense
baseline run with them unset, e.g. ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import pyonebit
from pyonebit import _core

SHAPES = {  # name: (N, K) of the weight matrix
    "attn_proj": (4096, 4096),
    "ffn_gate": (11008, 4096),
    "ffn_down": (4096, 11008),
}


def _int_list(text):
    return [int(v) for v in text.split(",") if v]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="pyonebit bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES),
                   help="comma-separated names (%s) or NxK sizes" % ", ".join(SHAPES))
    p.add_argument("--m", default="1,32,512", type=_int_list, help="rows of x (default 1,32,512)")
    p.add_argument("--bits", default="1,2,4,8", type=_int_list, help="pyonebit bit widths")
    p.add_argument("--group-size", default=128, type=int)
    p.add_argument("--threads", default=str(pyonebit.get_num_threads()), type=_int_list,
                   help="pyonebit thread counts to time (default: %(default)s)")
    p.add_argument("--repeats", default=10, type=int, help="timed calls per measurement")
    p.add_argument("--rounds", default=1, type=int,
                   help="measure every cell this many times, interleaving NumPy and pyonebit, "
                        "and report the median over rounds with the range of the 1-bit "
                        "speed-up (default %(default)s; use 3+ on a shared machine)")
    p.add_argument("--isa", default=None, help="force a CPU kernel variant (see pyonebit.cpu_kernels())")
    p.add_argument("--no-mlx", action="store_true", help="skip MLX even if importable")
    p.add_argument("--mlx-bits", default="1", type=_int_list,
                   help="bit widths timed with MLX too (default %(default)s)")
    p.add_argument("--mlx-max-m", default=32, type=int,
                   help="largest M timed with MLX, whose CPU path is slow (default %(default)s)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--plot", metavar="PNG", help="save a bar chart (needs matplotlib)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1:
        p.error("--rounds and --repeats must be at least 1")
    return args


def shape_list(text):
    out = []
    for name in text.split(","):
        if name in SHAPES:
            out.append((name, *SHAPES[name]))
        else:
            n, k = (int(v) for v in name.lower().split("x"))
            out.append((name, n, k))
    return out


def median_us(fn, repeats, warmup_s=0.05):
    """Median time of `repeats` calls, after calling fn for at least
    `warmup_s` seconds (at least once): page faults, lazy initialisation,
    caches, and idle cores and sleeping worker threads (NumPy's, MLX's,
    pyonebit's) coming back, which on a shared VM takes milliseconds."""
    end = time.perf_counter() + warmup_s
    fn()
    while time.perf_counter() < end:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def let_blas_threads_sleep():
    """BLAS worker threads spin for a while after a call; timing anything
    else on the same cores before they sleep measures the spinning too."""
    time.sleep(0.3)


def load_mlx(no_mlx):
    if no_mlx:
        return None
    try:
        import mlx.core as mx
    except ImportError:
        return None
    return mx


def timed_backends():
    """(backends to time, emulated backends skipped), in backends() order."""
    skipped = [b for b in pyonebit.backends() if b.endswith("-emulated")]
    return [b for b in pyonebit.backends() if b not in skipped], skipped


def measure(args, backends):
    mx = load_mlx(args.no_mlx)
    if args.isa:
        _core._set_cpu_isa(args.isa)
    rng = np.random.default_rng(0)
    gs = args.group_size
    rows = []
    for name, N, K in shape_list(args.shapes):
        w = rng.standard_normal((N, K), dtype=np.float32)
        packed = {b: pyonebit.quantize(w, gs, b) for b in args.bits}
        # As a loaded model runs: each backend's layer keeps the weights in
        # the layout that backend reads fastest, prepared here, untimed.
        layers = {backend: {b: pyonebit.QuantizedLinear(*q, group_size=gs, bits=b, backend=backend)
                            for b, q in packed.items()} for backend in backends}
        mlx_packed = {}
        if mx is not None:
            with mx.stream(mx.cpu):
                for b in args.mlx_bits:
                    mlx_packed[b] = mx.quantize(mx.array(w), group_size=gs, bits=b)
                    mx.eval(*mlx_packed[b])
        for M in args.m:
            x = rng.standard_normal((M, K), dtype=np.float32)
            row = {"shape": f"{name} ({N}x{K})", "M": M}
            if M <= args.mlx_max_m:
                mxx = mx.array(x) if mlx_packed else None
                for b, mw in mlx_packed.items():

                    def run_mlx():
                        with mx.stream(mx.cpu):
                            mx.eval(mx.quantized_matmul(mxx, *mw, transpose=True, group_size=gs,
                                                        bits=b))

                    row[f"mlx{b}"] = median_us(run_mlx, max(1, min(args.repeats, 3)))
            # Each round times NumPy, then every pyonebit variant, so that a
            # slow spell of a shared machine hits both sides of a ratio.
            cells = {}  # (backend, threads) -> {"numpy": [...], "ob1": [...], ...}
            for _ in range(args.rounds):
                dense = median_us(lambda: x @ w.T, args.repeats)
                let_blas_threads_sleep()
                for backend in backends:
                    # The thread count is the CPU pool's; other backends are timed once.
                    for threads in args.threads if backend == "cpu" else [None]:
                        if threads is not None:
                            pyonebit.set_num_threads(threads)
                        cell = cells.setdefault((backend, threads), {"numpy": []})
                        cell["numpy"].append(dense)
                        for b, layer in layers[backend].items():
                            cell.setdefault(f"ob{b}", []).append(median_us(lambda: layer(x),
                                                                           args.repeats))
            for (backend, threads), times in cells.items():
                r = dict(row, backend=backend, threads=threads)
                r.update({k: statistics.median(v) for k, v in times.items()})
                if "ob1" in times:
                    r["speedups"] = [d / t for d, t in zip(times["numpy"], times["ob1"])]
                rows.append(r)
    return rows


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 10000 else f"{v:.0f} us"


def table(rows, bits, mlx_bits):
    head = ["shape", "M", "backend", "thr", "numpy f32"] + [f"{b}-bit" for b in bits]
    head += [f"mlx {b}-bit" for b in mlx_bits] + ["numpy/1-bit"] + [f"mlx/{b}-bit" for b in mlx_bits]
    body = []
    for r in rows:
        one = r.get("ob1")
        line = [r["shape"], str(r["M"]), r["backend"], str(r["threads"] or "-"), fmt_us(r["numpy"])]
        line += [fmt_us(r.get(f"ob{b}")) for b in bits]
        line += [fmt_us(r.get(f"mlx{b}")) for b in mlx_bits]
        spread = r.get("speedups", [])
        ratio = f"{r['numpy'] / one:.1f}x" if one else "-"
        if len(spread) > 1:
            ratio += f" ({min(spread):.1f}-{max(spread):.1f})"
        line.append(ratio)
        for b in mlx_bits:
            ours, theirs = r.get(f"ob{b}"), r.get(f"mlx{b}")
            line.append(f"{theirs / ours:.0f}x" if ours and theirs else "-")
        body.append(line)
    return head, body


def print_table(head, body, markdown):
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for line in body:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(c) for c in col) for col in zip(head, *body)]
    for line in [head] + body:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))


def plot(rows, bits, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed", file=sys.stderr)
        return
    labels = [f"{r['shape'].split()[0]}\nM={r['M']} {r['backend']} t={r['threads'] or '-'}"
              for r in rows]
    series = [(f"{b}-bit", [r["numpy"] / r[f"ob{b}"] for r in rows]) for b in bits]
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 1.2), 4))
    width = 0.8 / len(series)
    for i, (name, vals) in enumerate(series):
        ax.bar(np.arange(len(rows)) + i * width, vals, width, label=name)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("speed-up over NumPy float32")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    backends, skipped = timed_backends()
    for name in skipped:
        print(f"skipping {name}: it runs the kernels on pyonebit's CPU emulator, a correctness "
              f"check far too slow to time")
    rows = measure(args, backends)
    info = pyonebit.cpu_kernels()
    rounds = f", median over {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"pyonebit {pyonebit.__version__}, CPU kernel {info['active']}, "
          f"group size {args.group_size}, median of {args.repeats}{rounds}, float32 activations")
    head, body = table(rows, args.bits, args.mlx_bits if load_mlx(args.no_mlx) else [])
    print_table(head, body, args.markdown)
    if args.plot:
        plot(rows, args.bits, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
