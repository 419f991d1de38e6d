"""python -m pyonebit [demo]: quantize a built-in weight matrix (seeded
Gaussian, the shape of a transformer's attention projection) to 1 bit, run
it as a QuantizedLinear layer (x @ W.T, weights in the layout each backend
reads fastest) on every backend this machine has, and print the error
against the dequantized float64 reference and the time against NumPy's
dense float32 matmul.

Each row is measured in --rounds rounds; a round times NumPy, then every
backend, each as the median of --repeats calls after 50 ms of warm-up. The
table shows the median over the rounds and their range (min-max); a range
wider than 1.5x is flagged with "!". Emulated backends (the Metal kernels on
a CPU emulator, a correctness check) are run and timed once. With the
defaults the demo took 10 s and 20 s in two runs on a busy 2-vCPU AMD EPYC
(Zen 4), 4 s and 12 s of it the emulated backend at M = 32.
"""
from __future__ import annotations

import time

import numpy as np

import pyonebit

from .args import WIDE_NOTE, int_list, is_wide, positive_int, spread
from .machine import machine_line, numpy_line
from .bench import let_blas_threads_sleep, median_us, print_table

DEFAULT_M = [1, 32]


def add_arguments(p) -> None:
    p.add_argument("--n", type=positive_int, default=4096,
                   help="output features: rows of the weight matrix W (default %(default)s)")
    p.add_argument("--k", type=positive_int, default=4096,
                   help="input features: columns of W, a multiple of --group-size "
                        "(default %(default)s)")
    p.add_argument("--m", type=int_list, nargs="+", metavar="M",
                   help="rows of x, comma- or space-separated: --m 1,32 or --m 1 32 (default "
                        f"{','.join(map(str, DEFAULT_M))})")
    p.add_argument("--group-size", type=positive_int, default=128,
                   help="weights per scale (default %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="timed calls per round; a round's time is their median (default %(default)s)")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="rounds per row; the table shows the median over rounds and the "
                        "range (default %(default)s)")


def _unit(seconds: float) -> tuple[float, str]:
    if seconds < 1e-3:
        return 1e6, "us"
    return (1e3, "ms") if seconds < 1 else (1.0, "s")


def fmt_times(values) -> str:
    """'85.2 us (80.1-92.3)', or '1.2 s (1 run)'; '!' marks a wide range."""
    med, lo, hi = spread(values)
    scale, unit = _unit(med)
    if len(values) == 1:
        return f"{med * scale:.1f} {unit} (1 run)"
    return f"{med * scale:.1f} {unit} ({lo * scale:.1f}-{hi * scale:.1f})" + " !" * is_wide(values)


def fmt_ratios(values) -> str:
    med, lo, hi = spread(values)
    if len(values) == 1:
        return f"{med:.2f}x"
    return f"{med:.2f}x ({lo:.2f}-{hi:.2f})" + " !" * is_wide(values)


def run(args) -> int:
    ms = [m for part in args.m for m in part] if args.m else DEFAULT_M
    rng = np.random.default_rng(0)
    N, K, gs = args.n, args.k, args.group_size
    w = rng.standard_normal((N, K), dtype=np.float32)
    t0 = time.perf_counter()
    wq, scales, biases = pyonebit.quantize(w, group_size=gs, bits=1)
    t_quant = time.perf_counter() - t0
    packed = wq.nbytes + scales.nbytes + (biases.nbytes if biases is not None else 0)
    print(f"pyonebit {pyonebit.__version__}: 1-bit affine quantized matmul demo")
    print(f"weights  {N} x {K} float32 ({w.nbytes / 2**20:.1f} MiB) -> 1 bit, group "
          f"{gs}: {packed / 2**20:.2f} MiB ({w.nbytes / packed:.1f}x smaller), "
          f"quantized in {t_quant * 1e3:.0f} ms")
    w_hat = pyonebit.dequantize(wq, scales, biases, group_size=gs, dtype=np.float32)
    layers = {b: pyonebit.QuantizedLinear(wq, scales, biases, group_size=gs, backend=b)
              for b in pyonebit.backends()}
    print(f"backends {', '.join(f'{b} ({layer.layout} layout)' for b, layer in layers.items())}; "
          f"CPU kernel {pyonebit.cpu_kernels()['active']}, {pyonebit.get_num_threads()} threads")
    print(machine_line())
    print(numpy_line())
    print()
    head = ["backend", "M", "pyonebit (range)", "numpy f32 (range)", "speed-up (range)",
            "max rel err"]
    body = []
    for M in ms:
        body += _rows(args, layers, w_hat, rng.standard_normal((M, K), dtype=np.float32))
    print_table(head, body, markdown=False, left_columns=1)
    print()
    print("error: max |out - x @ dequantize(w).T| / max |x @ dequantize(w).T|, float64 reference")
    print(f"times: median over {args.rounds} rounds (min-max), each round the median of "
          f"{args.repeats} calls; NumPy and pyonebit alternate within a round")
    if any("!" in cell for line in body for cell in line):
        print(WIDE_NOTE)
    return 0


def _rows(args, layers, w_hat, x) -> list[list[str]]:
    M = x.shape[0]
    ref = x.astype(np.float64) @ w_hat.T.astype(np.float64)
    errors, first_call = {}, {}
    for b, layer in layers.items():
        t0 = time.perf_counter()
        out = layer(x)
        first_call[b] = time.perf_counter() - t0
        errors[b] = float(np.abs(out - ref).max() / np.abs(ref).max())
    timed = [b for b in layers if not b.endswith("-emulated")]
    dense: list[float] = []
    ours: dict[str, list[float]] = {b: [] for b in timed}
    # Each round times NumPy, then every backend, so a slow spell of a shared
    # machine hits both sides of a speed-up.
    for _ in range(args.rounds):
        dense.append(median_us(lambda: x @ w_hat.T, args.repeats) * 1e-6)
        let_blas_threads_sleep()
        for b in timed:
            ours[b].append(median_us(lambda: layers[b](x), args.repeats) * 1e-6)
    rows = []
    for b in layers:
        if b in ours:
            rows.append([b, str(M), fmt_times(ours[b]), fmt_times(dense),
                         fmt_ratios([d / t for d, t in zip(dense, ours[b])]), f"{errors[b]:.2e}"])
        else:  # the Metal kernels on the CPU emulator: a correctness check, timed once
            rows.append([b, str(M), fmt_times([first_call[b]]), "", "emulated",
                         f"{errors[b]:.2e}"])
    return rows
