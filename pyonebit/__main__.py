"""python -m pyonebit: the demo job (default) and the other commands
(bench, convert, info). Bad input ends with one line "error: ..." on stderr
and exit code 2.

The demo quantizes a built-in weight matrix (seeded Gaussian, the shape of a
transformer's attention projection) to 1 bit, runs it as a QuantizedLinear
layer (x @ W.T, weights in the layout each backend reads fastest) on every
backend this machine has, and prints the error against the dequantized
float64 reference and the time against NumPy's dense float32 matmul.
"""
import argparse
import sys
import time

import numpy as np

import pyonebit

from . import convert, info
from .bench import let_blas_threads_sleep, median_us


def _fmt_time(seconds):
    return f"{seconds * 1e6:9.1f} us" if seconds < 1e-2 else f"{seconds * 1e3:9.2f} ms"


def demo(args):
    rng = np.random.default_rng(0)
    N, K = args.n, args.k
    w = rng.standard_normal((N, K), dtype=np.float32)
    t0 = time.perf_counter()
    wq, scales, biases = pyonebit.quantize(w, group_size=args.group_size, bits=1)
    t_quant = time.perf_counter() - t0
    packed = wq.nbytes + scales.nbytes + biases.nbytes
    print(f"pyonebit {pyonebit.__version__}: 1-bit affine quantized matmul demo")
    print(f"weights  {N} x {K} float32 ({w.nbytes / 2**20:.1f} MiB) -> 1 bit, group "
          f"{args.group_size}: {packed / 2**20:.2f} MiB ({w.nbytes / packed:.1f}x smaller), "
          f"quantized in {t_quant * 1e3:.0f} ms")
    w_hat = pyonebit.dequantize(wq, scales, biases, group_size=args.group_size, dtype=np.float32)
    layers = {b: pyonebit.QuantizedLinear(wq, scales, biases, group_size=args.group_size, backend=b)
              for b in pyonebit.backends()}
    print(f"backends {', '.join(f'{b} ({layer.layout} layout)' for b, layer in layers.items())}")
    print()
    header = (f"{'backend':<16}{'M':>5}{'pyonebit':>14}{'numpy f32':>14}{'speedup':>10}"
              f"{'max rel err':>14}")
    print(header)
    print("-" * len(header))
    for M in args.m:
        x = rng.standard_normal((M, K), dtype=np.float32)
        ref = x.astype(np.float64) @ w_hat.T.astype(np.float64)
        t_dense = median_us(lambda: x @ w_hat.T, args.repeats) * 1e-6
        let_blas_threads_sleep()
        for backend, layer in layers.items():
            def run():
                return layer(x)
            t0 = time.perf_counter()
            out = run()
            err = float(np.abs(out - ref).max() / np.abs(ref).max())
            if backend.endswith("-emulated"):
                # The Metal kernels run on the CPU emulator: a correctness
                # check, not a speed; one run, timed for information only.
                t = time.perf_counter() - t0
                print(f"{backend:<16}{M:>5}{_fmt_time(t):>14}{'':>14}{'(emulated)':>10}"
                      f"{err:>14.2e}")
                continue
            t = median_us(run, args.repeats) * 1e-6
            print(f"{backend:<16}{M:>5}{_fmt_time(t):>14}{_fmt_time(t_dense):>14}"
                  f"{t_dense / t:>9.2f}x{err:>14.2e}")
    print()
    print("error: max |out - x @ dequantize(w).T| / max |x @ dequantize(w).T|, float64 reference;"
          f" times: median of {args.repeats} runs")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except (ValueError, TypeError, OSError) as e:  # bad input: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(argv):
    if argv[:1] == ["bench"]:  # its own options: python -m pyonebit bench --help
        from . import bench

        return bench.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m pyonebit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="quantize a built-in matrix and time it as a layer (default)")
    sub.add_parser("bench", help="benchmark of the seed's layer shapes on every non-emulated "
                                 "backend (see bench --help)")
    c = sub.add_parser("convert", help="quantize a float safetensors checkpoint into an MLX one",
                       description=convert.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_arguments(c)
    i = sub.add_parser("info", help="version, backends, CPU kernels, threads, Metal; "
                                    "with a checkpoint, its layers")
    info.add_arguments(i)
    for p in (parser, d):
        p.add_argument("--n", type=int, default=4096, help="output features (rows of W)")
        p.add_argument("--k", type=int, default=4096, help="input features (columns of W)")
        p.add_argument("--m", type=int, nargs="+", default=[1, 32], help="rows of x")
        p.add_argument("--group-size", type=int, default=128)
        p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    return {"convert": convert.run, "info": info.run}.get(args.command, demo)(args)


if __name__ == "__main__":
    sys.exit(main())
