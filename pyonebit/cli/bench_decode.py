"""python -m pyonebit bench --cold: decode as a model runs it.

A decode step reads every weight matrix of the model once, one token at a
time (M = 1), so the weights come from DRAM, not from a cache. This benchmark
keeps a stream of distinct layers of an 8B-like decoder (several transformer
blocks' worth of q/k/v/o and MLP matrices, far larger than the last-level
cache), runs each once per pass, and reports per matrix shape:

  * cold: the median time per call over the stream, its read rate (bytes of
    wq, scales and biases per second) and that rate as a fraction of the
    memory read bandwidth measured in the same run (a streaming read of a
    buffer 8x the size of the weights set, by the same threads);
  * hot: the same matrix called again and again (cache-resident), and
    "hot/cache": that time over the time its bytes take at the cache read
    bandwidth, measured as the memory bandwidth is but over a buffer of the
    matrix's size read again and again (1.0: as fast as the cache delivers;
    a larger ratio is the kernel's arithmetic);
  * stall: cold / max(bytes / bandwidth, hot). 1.0 means no time is lost to
    memory stalls: the call runs at the memory limit or at its own cache-hot
    speed, whichever is slower.

Three paths: "layer" (QuantizedLinear, weights in the CPU's preferred layout),
"raw" (quantized_matmul on MLX-order arrays, as loader-free users call it) and
"fused" (as "layer", with each block's q/k/v and gate/up one layer each:
QuantizedLinear.concatenate, 4 calls a block instead of 7). Tokens per second
for the whole model at M = 1 is the sum of the cold times of one block's
matrices times the number of blocks: the quantized matrix products alone (no
attention, norms or sampling).

Weights are random codes with float16 scales and biases (speed does not
depend on their values). Expected time: about 1-2 minutes with the defaults.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import _core
from .args import Formatter, Parser, int_list, positive_int, spread
from .machine import machine_line

# One block of an 8B-like decoder (Llama-3-8B / Qwen3-8B shapes): (name, N, K).
BLOCK = [("q_proj", 4096, 4096), ("k_proj", 1024, 4096), ("v_proj", 1024, 4096),
         ("o_proj", 4096, 4096), ("gate_proj", 14336, 4096), ("up_proj", 14336, 4096),
         ("down_proj", 4096, 14336)]
MODEL_BLOCKS = 32
# The "fused" path's block: projections of one input as one matrix (rows concatenated).
FUSED_PARTS = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
FUSED_BLOCK = [("qkv_proj", 6144, 4096), ("o_proj", 4096, 4096), ("gate_up_proj", 28672, 4096),
               ("down_proj", 4096, 14336)]
PATHS = ("layer", "raw", "fused")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blocks", type=positive_int, default=4,
                   help="transformer blocks in the stream (default 4: 28 matrices, about "
                        "180 MB at 1 bit, several times a 32 MB L3)")
    p.add_argument("--bits", type=int_list, default=[1], help="code widths, e.g. 1,2,4,8 (default 1)")
    p.add_argument("--m", type=int_list, default=[1], help="rows of x per call, e.g. 1,4,8 (default 1)")
    p.add_argument("--threads", type=int_list, default=None,
                   help="thread counts, e.g. 1,2 (default: 1 and the pool's size)")
    p.add_argument("--paths", default="layer,raw",
                   help="any of layer, raw, fused, comma-separated (default layer,raw)")
    p.add_argument("--rounds", type=positive_int, default=7,
                   help="passes over the stream; medians and ranges over them (default 7)")
    p.add_argument("--group-size", type=positive_int, default=128, help="default 128")


def main(argv=None) -> int:
    p = Parser(prog="python -m pyonebit bench --cold", description=__doc__, formatter_class=Formatter)
    add_arguments(p)
    args = p.parse_args(argv)
    paths = [s.strip() for s in args.paths.split(",") if s.strip()]
    for path in paths:
        if path not in PATHS:
            p.error(f"--paths: each entry must be one of {', '.join(PATHS)}, got {path!r}")
    for bits in args.bits:
        if bits not in _core.supported_bits():
            p.error(f"--bits: each entry must be one of {list(_core.supported_bits())}, got {bits}")
    threads = args.threads or sorted({1, _core.get_num_threads()})
    before = _core.get_num_threads()
    try:
        run(args.blocks, args.bits, args.m, threads, paths, args.rounds, args.group_size)
    finally:
        _core.set_num_threads(before)
    return 0


def fused_blocks(layers):
    """The stream's layers as FUSED_BLOCK: each block's FUSED_PARTS concatenated (copies)."""
    from .._linear import QuantizedLinear

    out = []
    for b in range(0, len(layers), len(BLOCK)):
        by_name = {name: layer for (name, _, _), layer in zip(BLOCK, layers[b:b + len(BLOCK)])}
        out += [QuantizedLinear.concatenate([by_name[p] for p in FUSED_PARTS[name]])
                if name in FUSED_PARTS else by_name[name] for name, _, _ in FUSED_BLOCK]
    return out


def random_weights(rng, N, K, bits, gs):
    wq = rng.integers(0, 2**32, (N, K * bits // 32), dtype=np.uint32)
    scales = (rng.random((N, K // gs), np.float32) * 0.1 + 0.01).astype(np.float16)
    biases = (rng.random((N, K // gs), np.float32) * -0.1).astype(np.float16)
    return wq, scales, biases


def read_bandwidth(nbytes: int, rounds: int, reps: int = 1) -> list[float]:
    """Bytes per second of a streaming read of nbytes, one value per round of
    `reps` reads (several: a buffer small enough stays in the caches)."""
    buf = np.ones(nbytes, np.uint8)
    _core._read_memory(buf)  # fault the pages in
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            _core._read_memory(buf)
        rates.append(nbytes * reps / (time.perf_counter() - t))
    return rates


def cache_read_bandwidth(nbytes: int, rounds: int) -> float:
    """The median read rate of one nbytes buffer read again and again, rounds of ~2 ms."""
    return float(np.median(read_bandwidth(nbytes, rounds, reps=max(4, int(2e-3 * 50e9 / nbytes)))))


def timed_passes(calls, rounds):
    """Per-call seconds of each call in `calls`, one list per call, over
    `rounds` passes that run every call once in turn."""
    per_call = [[] for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            t = time.perf_counter()
            call()
            per_call[i].append(time.perf_counter() - t)
    return per_call


def hot_time(call, rounds, reps=20):
    call()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            call()
        times.append((time.perf_counter() - t) / reps)
    return times


def run(blocks, bits_list, m_list, threads_list, paths, rounds, gs):
    from .._linear import QuantizedLinear

    print(machine_line())
    print(f"CPU kernels: {_core.cpu_kernels()['active']}; stream: {blocks} blocks x "
          f"{len(BLOCK)} matrices of an 8B-like decoder; group size {gs}, float16 scales and x; "
          f"{rounds} rounds (median, range)")
    rng = np.random.default_rng(0)
    for bits in bits_list:
        mats = [(name, N, K, random_weights(rng, N, K, bits, gs)) for _ in range(blocks)
                for name, N, K in BLOCK]
        nbytes = {name: sum(a.nbytes for a in w) for name, _, _, w in mats}
        if "fused" in paths:
            nbytes.update({name: sum(nbytes[p] for p in parts) for name, parts in FUSED_PARTS.items()})
        total = sum(sum(a.nbytes for a in w) for _, _, _, w in mats)
        layers = [QuantizedLinear(*w, group_size=gs, bits=bits) for _, _, _, w in mats] \
            if {"layer", "fused"} & set(paths) else []
        fused = fused_blocks(layers) if "fused" in paths else []
        for T in threads_list:
            _core.set_num_threads(T)
            bw = read_bandwidth(max(8 * total, 256 << 20), rounds)
            bw_med, bw_lo, bw_hi = spread(bw)
            print(f"\n{bits} bit, {T} thread(s): {total / 1e6:.0f} MB of weights; memory read "
                  f"bandwidth {bw_med / 1e9:.1f} GB/s ({bw_lo / 1e9:.1f}-{bw_hi / 1e9:.1f})")
            by_size = {size: cache_read_bandwidth(size, rounds) for size in set(nbytes.values())}
            cache_bw = {name: by_size[size] for name, size in nbytes.items()}
            print(f"{'path':5s} {'M':>3s} {'matrix':>10s} {'N x K':>13s} {'cold us':>16s} "
                  f"{'GB/s':>5s} {'of bw':>5s} {'hot us':>14s} {'stall':>5s} {'hot/cache':>9s}")
            for M in m_list:
                x = rng.standard_normal((M, max(K for _, _, K in BLOCK))).astype(np.float16)
                for path in paths:
                    block = FUSED_BLOCK if path == "fused" else BLOCK
                    names = [name for _ in range(blocks) for name, _, _ in block]
                    if path == "raw":
                        calls = [lambda w=w, K=K: _core.quantized_matmul(x[:, :K], *w, True, gs, bits)
                                 for _, _, K, w in mats]
                    else:
                        calls = [lambda l=l: l(x[:, :l.in_features])
                                 for l in (fused if path == "fused" else layers)]
                    assert len(calls) == len(names), (path, len(calls), len(names))
                    cold = timed_passes(calls, rounds)
                    step = 0.0
                    for name, N, K in block:
                        idx = [i for i, n in enumerate(names) if n == name]
                        times = [t for i in idx for t in cold[i]]
                        c_med, c_lo, c_hi = spread(times)
                        h_med, h_lo, h_hi = spread(hot_time(calls[idx[0]], rounds))
                        floor = nbytes[name] / bw_med
                        step += c_med
                        print(f"{path:5s} {M:3d} {name:>10s} {N:>6d}x{K:<6d} "
                              f"{c_med * 1e6:6.0f} ({c_lo * 1e6:.0f}-{c_hi * 1e6:.0f}) "
                              f"{nbytes[name] / c_med / 1e9:5.1f} {floor / c_med:5.2f} "
                              f"{h_med * 1e6:5.0f} ({h_lo * 1e6:.0f}-{h_hi * 1e6:.0f}) "
                              f"{c_med / max(floor, h_med):5.2f} "
                              f"{h_med / (nbytes[name] / cache_bw[name]):9.2f}")
                    block_bytes = sum(nbytes[name] for name, _, _ in block)
                    print(f"{path:5s} {M:3d} {'block':>10s}: {step * 1e6:.0f} us, "
                          f"{block_bytes / step / 1e9:.1f} GB/s = {block_bytes / step / bw_med:.2f} "
                          f"of bandwidth; {MODEL_BLOCKS}-block model: "
                          f"{M / (step * MODEL_BLOCKS):.1f} tokens/s (matrix products only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
