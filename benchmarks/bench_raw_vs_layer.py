"""The raw call on MLX-order arrays against QuantizedLinear on the same
weights, cache-hot, M = 1: how much the per-call reordering of mlx order
costs (docs/decode.md). Calls alternate, so both see the same machine; the
minimum over the calls is printed with the median.

    python benchmarks/bench_raw_vs_layer.py [NxK ...] [--threads T] [--calls C]
"""
import argparse
import time

import numpy as np

import pyonebit as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shapes", nargs="*", default=["1024x4096", "1024x4224", "4096x4224"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=80)
    args = ap.parse_args()
    pb.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"CPU kernels: {pb.cpu_kernels()['active']}, {args.threads} thread(s), 1 bit, group 128, float16")
    for shape in args.shapes:
        n, k = map(int, shape.split("x"))
        wq, s, b = pb.quantize(rng.standard_normal((n, k)).astype(np.float16), bits=1, group_size=128)
        x = rng.standard_normal((1, k)).astype(np.float16)
        layer = pb.QuantizedLinear(wq, s, b, bits=1, group_size=128)
        raw = lambda: pb.quantized_matmul(x, wq, s, b, bits=1, group_size=128, transpose=True)  # noqa: E731
        lay = lambda: layer(x)  # noqa: E731
        raw(), lay()
        t_raw, t_lay = [], []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            raw()
            t1 = time.perf_counter()
            lay()
            t_lay.append(time.perf_counter() - t1)
            t_raw.append(t1 - t0)
        r, l = np.array(t_raw) * 1e6, np.array(t_lay) * 1e6
        print(f"{shape:>10}: raw min {r.min():6.0f} us (median {np.median(r):6.0f}), "
              f"layer min {l.min():6.0f} us (median {np.median(l):6.0f}), raw/layer {r.min() / l.min():.2f}")


if __name__ == "__main__":
    main()
