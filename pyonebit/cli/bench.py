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
after 50 ms of warm-up calls; each cell is measured ``--rounds`` times, NumPy
and pyonebit alternating, and the median over rounds is reported with the
range (min-max) of the 1-bit speed-up; "!" flags a range wider than 1.5x.
Progress goes to stderr (a bar on a terminal, else a line per step).

Time with the defaults: EXPECTED_TIME;
the 512-row cells of the FFN shapes take most of it. Quick run (11 s on the same machine)::

    python -m pyonebit bench --shapes attn_proj --m 1,32 --repeats 5

NumPy's BLAS may read OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; for a fair dense
baseline run with them unset, e.g. ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""
import argparse
import statistics
import sys
import time

import numpy as np
from tqdm import tqdm

import pyonebit
from pyonebit import _testing

from .args import WIDE_NOTE, Formatter, Parser, int_list, is_wide, positive_int
from .machine import machine_line, numpy_line

SHAPES = {  # name: (N, K) of the weight matrix
    "attn_proj": (4096, 4096),
    "ffn_gate": (11008, 4096),
    "ffn_down": (4096, 11008),
}


def parse_args(argv):
    p = build_parser()
    args = p.parse_args(argv)
    if args.plot and not _have_matplotlib():  # checked before minutes of measuring, not after
        p.error("--plot needs matplotlib, which is not installed: pip install matplotlib")
    return args


def build_parser():
    p = Parser(prog="python -m pyonebit bench", formatter_class=Formatter,
               description=__doc__.replace("EXPECTED_TIME", EXPECTED_TIME))
    p.add_argument("--cold", action="store_true",
                   help="run the decode benchmark instead: M = 1 over a stream of distinct layers "
                        "read from DRAM, against the memory bandwidth measured in the same run "
                        "(its options: python -m pyonebit bench --cold --help)")
    p.add_argument("--shapes", default=",".join(SHAPES), type=shape_list,
                   help="comma-separated shape names (%s) or NxK sizes of the weight matrix "
                        "(default %%(default)s)" % ", ".join(f"{k} = {n}x{m}" for k, (n, m) in SHAPES.items()))
    p.add_argument("--m", default="1,32,512", type=int_list,
                   help="rows of x, comma-separated (default %(default)s)")
    p.add_argument("--bits", default="1,2,4,8", type=int_list,
                   help="pyonebit bit widths, comma-separated (default %(default)s)")
    p.add_argument("--group-size", default=128, type=positive_int,
                   help="weights per scale (default %(default)s)")
    p.add_argument("--threads", default=str(pyonebit.get_num_threads()), type=int_list,
                   help="pyonebit thread counts to time, comma-separated (default %(default)s, "
                        "pyonebit.get_num_threads() here)")
    p.add_argument("--repeats", default=5, type=positive_int,
                   help="timed calls per measurement; a measurement is their median "
                        "(default %(default)s)")
    p.add_argument("--rounds", default=3, type=positive_int,
                   help="measure every cell this many times, interleaving NumPy and pyonebit, "
                        "and report the median over rounds with the range of the 1-bit "
                        "speed-up (default %(default)s)")
    p.add_argument("--isa", default=None,
                   help="force a CPU kernel variant, one of pyonebit.cpu_kernels()['supported'] "
                        "(default: the best this CPU runs)")
    p.add_argument("--no-mlx", action="store_true",
                   help="skip MLX even if it is importable (default: time MLX when it is)")
    p.add_argument("--mlx-bits", default="1", type=int_list,
                   help="bit widths timed with MLX too (default %(default)s)")
    p.add_argument("--mlx-max-m", default=32, type=positive_int,
                   help="largest M timed with MLX, whose CPU path is slow (default %(default)s)")
    p.add_argument("--markdown", action="store_true",
                   help="print a markdown table (default: aligned plain text)")
    p.add_argument("--plot", metavar="PNG",
                   help="also save a bar chart of the speed-ups to PNG (needs matplotlib; "
                        "default: no chart)")
    return p


# Measured with the defaults (docs/performance.md): 110 s with MLX installed.
EXPECTED_TIME = "about 2 minutes on 2 cores (110 s on a 2-vCPU AMD EPYC, Zen 4)"


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def shape_list(text):
    """"attn_proj,64x256" -> [(name, N, K), ...]: SHAPES names or NxK sizes."""
    out = []
    for name in text.split(","):
        if name in SHAPES:
            out.append((name, *SHAPES[name]))
            continue
        parts = name.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(
                f"{name!r} is neither a shape name ({', '.join(SHAPES)}) nor a size NxK of "
                "positive integers such as 4096x4096")
        out.append((name, int(parts[0]), int(parts[1])))
    return out


class Progress:
    """One step per (shape, M, round) on stderr: a bar on a terminal, else a
    line per step, so a long run is never silent."""

    def __init__(self, total):
        self.total, self.done = total, 0
        self.bar = (tqdm(total=total, desc="bench", unit="step", file=sys.stderr, leave=False)
                    if sys.stderr.isatty() else None)

    def start(self, what):
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(what)
        else:
            print(f"bench: step {self.done}/{self.total}: {what}", file=sys.stderr, flush=True)

    def finish_step(self):
        if self.bar is not None:
            self.bar.update()

    def close(self):
        if self.bar is not None:
            self.bar.close()


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
        _testing.set_cpu_isa(args.isa)
    rng = np.random.default_rng(0)
    gs = args.group_size
    rows = []
    progress = Progress(len(args.shapes) * len(args.m) * args.rounds)
    for name, N, K in args.shapes:
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
            for r in range(args.rounds):
                progress.start(f"{name} M={M} round {r + 1}/{args.rounds}")
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
                progress.finish_step()
            for (backend, threads), times in cells.items():
                r = dict(row, backend=backend, threads=threads)
                r.update({k: statistics.median(v) for k, v in times.items()})
                if "ob1" in times:
                    r["speedups"] = [d / t for d, t in zip(times["numpy"], times["ob1"])]
                rows.append(r)
    progress.close()
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
            ratio += f" ({min(spread):.1f}-{max(spread):.1f})" + " !" * is_wide(spread)
        line.append(ratio)
        for b in mlx_bits:
            ours, theirs = r.get(f"ob{b}"), r.get(f"mlx{b}")
            line.append(f"{theirs / ours:.0f}x" if ours and theirs else "-")
        body.append(line)
    return head, body


def print_table(head, body, markdown, left_columns=0):
    """Columns aligned right, but for the first ``left_columns`` (names)."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for line in body:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(c) for c in col) for col in zip(head, *body)]
    for line in [head] + body:
        print("  ".join(c.ljust(w) if i < left_columns else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths))).rstrip())


def plot(rows, bits, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # parse_args checked; only a broken installation gets here
        raise ValueError("--plot needs matplotlib, which cannot be imported") from None
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--cold" in argv:  # the decode benchmark, with options of its own
        from . import bench_decode

        return bench_decode.main([a for a in argv if a != "--cold"])
    args = parse_args(argv)
    backends, skipped = timed_backends()
    for name in skipped:
        print(f"skipping {name}: it runs the kernels on pyonebit's CPU emulator, a correctness "
              f"check far too slow to time")
    rows = measure(args, backends)
    info = pyonebit.cpu_kernels()
    rounds = f", median over {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"pyonebit {pyonebit.__version__}, CPU kernel {info['active']}, "
          f"group size {args.group_size}, median of {args.repeats}{rounds}, float32 activations")
    print(machine_line())
    print(numpy_line())
    head, body = table(rows, args.bits, args.mlx_bits if load_mlx(args.no_mlx) else [])
    print_table(head, body, args.markdown, left_columns=1)
    if any(cell.endswith("!") for line in body for cell in line):
        print(WIDE_NOTE)
    if args.plot:
        plot(rows, args.bits, args.plot)
    return 0


if __name__ == "__main__":  # python -m pyonebit.cli.bench: as python -m pyonebit bench
    from pyonebit.__main__ import main as cli

    sys.exit(cli(["bench", *sys.argv[1:]]))
