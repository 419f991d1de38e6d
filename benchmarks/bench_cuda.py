"""CUDA backend benchmark (needs PyTorch with CUDA): limits and peers measured in the same run.

1. HBM bandwidth: a read-only streaming kernel (a sum over 2 GiB) and a device-to-device
   copy (bytes read + written), medians of several rounds.
2. Decode: M = 1 over a model-sized stream of distinct 1-bit layers (Llama-3-8B shapes,
   32 layers, past the L2), captured in one CUDA graph, as a fraction of (1).
3. Per call from PyTorch, eager, cache-hot (one matrix): pyonebit 1-bit (float16 x, and
   bfloat16 x; both take the tensor-core kernels from M = 2) vs torch float16
   (cuBLAS) and gemlite's 1-bit layer (where gemlite imports) at M = 1 / 16 / 512 for
   4096x4096, 11008x4096, 14336x4096; pyonebit's time against the bandwidth floor (the bytes
   it must read or write at the measured read bandwidth).
4. Host overhead per call: wall time of back-to-back calls whose kernels are tiny.

    python benchmarks/bench_cuda.py [--json FILE] [--layers 32] [--group-size 128]
"""
import argparse
import json
import statistics
import time

import torch

import pyonebit


def event_time(fn, iters, rounds=7):
    """Per-iteration milliseconds: median and range over rounds of `iters` back-to-back calls."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / iters)
    return statistics.median(times), min(times), max(times)


def bandwidth():
    n = 2**29  # 2 GiB of float32
    a = torch.rand(n, device="cuda")
    b = torch.empty_like(a)
    read = event_time(lambda: a.sum(), 10)
    copy = event_time(lambda: b.copy_(a), 10)
    gbs = lambda ms, nbytes: nbytes / (ms * 1e-3) / 1e9  # noqa: E731
    return {"read_GBps": gbs(read[0], a.nbytes), "read_range_GBps": (gbs(read[2], a.nbytes), gbs(read[1], a.nbytes)),
            "copy_GBps": gbs(copy[0], 2 * a.nbytes), "copy_range_GBps": (gbs(copy[2], 2 * a.nbytes), gbs(copy[1], 2 * a.nbytes))}


def random_layer(N, K, group_size, bits=1, dtype=torch.float16):
    words = K * bits // 32
    wq = torch.randint(-2**31, 2**31 - 1, (N, words), dtype=torch.int32, device="cuda").view(torch.uint32)
    scales = (torch.rand(N, K // group_size, device="cuda") + 0.5).to(dtype)
    biases = (torch.rand(N, K // group_size, device="cuda") - 1.0).to(dtype)
    return wq, scales, biases


def nbytes(*ts):
    return sum(t.numel() * t.element_size() for t in ts)


LLAMA3_8B = [(4096, 4096), (1024, 4096), (1024, 4096), (4096, 4096),  # q, k, v, o
             (14336, 4096), (14336, 4096), (4096, 14336)]  # gate, up, down


def gemlite_layer(N, K, group_size):
    """gemlite's 1-bit (A16W1, float16) layer over random codes, or None where gemlite is missing."""
    try:
        import gemlite
    except ImportError:
        return None
    codes = torch.randint(0, 2, (N, K), dtype=torch.uint8, device="cuda")
    scales = (torch.rand(N, K // group_size, device="cuda") + 0.5).half()
    zeros = torch.rand(N, K // group_size, device="cuda").half()
    return gemlite.helper.A16Wn(device="cuda", dtype=torch.float16).from_weights(
        codes, scales, zeros, W_nbits=1, group_size=group_size)


def graph_time(call):
    """Median (and range) ms of one replay of `call` captured in a CUDA graph, with its outputs."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = call()
    return event_time(graph.replay, 5), outs


def decode_stream(layers, group_size, read_gbps):
    mats = [random_layer(N, K, group_size) for _ in range(layers) for N, K in LLAMA3_8B]
    xs = {K: torch.randn(1, K, dtype=torch.float16, device="cuda") for K in (4096, 14336)}
    ms, outs = graph_time(lambda: [pyonebit.quantized_matmul(xs[w[0].shape[1] * 32], *w,
                                                             group_size=group_size, backend="cuda")
                                   for w in mats])
    total = sum(nbytes(*w) for w in mats) + sum(nbytes(o) for o in outs) + sum(
        nbytes(xs[w[0].shape[1] * 32]) for w in mats)
    gbps = total / (ms[0] * 1e-3) / 1e9
    result = {"layers": layers, "matrices": len(mats), "bytes": total, "ms": ms, "GBps": gbps,
              "fraction_of_read_bw": gbps / read_gbps}
    return result


def gemlite_decode(layers, group_size):
    """The decode stream through gemlite's 1-bit layers in one graph, where gemlite runs."""
    xs = {K: torch.randn(1, K, dtype=torch.float16, device="cuda") for K in (4096, 14336)}
    try:
        glayers = [gemlite_layer(N, K, group_size) for _ in range(layers) for N, K in LLAMA3_8B]
        if glayers[0] is None:
            return {}
        return {"gemlite_ms": graph_time(lambda: [g(xs[g.in_features]) for g in glayers])[0]}
    except Exception as e:  # noqa: BLE001 (a peer's failure is reported, not fatal)
        return {"gemlite_error": repr(e)[:300]}


def per_call(shapes, Ms, group_size, read_gbps):
    rows = []
    for N, K in shapes:
        w = random_layer(N, K, group_size)
        dense = torch.randn(N, K, dtype=torch.float16, device="cuda")
        glayer, gerror = None, None
        try:
            glayer = gemlite_layer(N, K, group_size)
        except Exception as e:  # noqa: BLE001 (a peer's failure is reported, not fatal)
            gerror = repr(e)[:300]
        for M in Ms:
            x = torch.randn(M, K, dtype=torch.float16, device="cuda")
            ours = event_time(lambda: pyonebit.quantized_matmul(x, *w, group_size=group_size, backend="cuda"), 50)
            xb, wb = x.bfloat16(), (w[0], w[1].bfloat16(), w[2].bfloat16())
            ours_bf16 = event_time(lambda: pyonebit.quantized_matmul(xb, *wb, group_size=group_size, backend="cuda"), 50)
            cublas = event_time(lambda: torch.matmul(x, dense.t()), 50)
            floor_us = (nbytes(*w) + nbytes(x) + M * N * 2) / (read_gbps * 1e9) * 1e6
            row = {"N": N, "K": K, "M": M, "pyonebit_us": [t * 1e3 for t in ours],
                   "pyonebit_bf16_us": [t * 1e3 for t in ours_bf16],
                   "cublas_f16_us": [t * 1e3 for t in cublas], "speedup": cublas[0] / ours[0],
                   "floor_us": floor_us, "fraction_of_floor": floor_us / (ours[0] * 1e3)}
            if glayer is not None:
                try:
                    row["gemlite_us"] = [t * 1e3 for t in event_time(lambda: glayer(x), 50)]
                except Exception as e:  # noqa: BLE001
                    row["gemlite_error"] = repr(e)[:300]
            elif gerror:
                row["gemlite_error"] = gerror
            rows.append(row)
    return rows


def host_overhead(group_size):
    """Wall time per call with the GPU never the bottleneck (tiny matrix), minus nothing."""
    w = random_layer(64, 256, group_size)
    x = torch.randn(1, 256, dtype=torch.float16, device="cuda")
    dense = torch.randn(64, 256, dtype=torch.float16, device="cuda")
    res = {}
    for name, fn in (("pyonebit", lambda: pyonebit.quantized_matmul(x, *w, group_size=group_size, backend="cuda")),
                     ("torch_matmul", lambda: torch.matmul(x, dense.t()))):
        fn()
        torch.cuda.synchronize()
        samples = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(2000):
                fn()
            samples.append((time.perf_counter() - t0) / 2000 * 1e6)
            torch.cuda.synchronize()
        res[name + "_us"] = (statistics.median(samples), min(samples), max(samples))
    return res


def print_decode(dec):
    if "ms" in dec:
        print(f"decode, M=1, {dec['matrices']} distinct matrices ({dec['bytes'] / 1e9:.2f} GB) in one CUDA graph: "
              f"{dec['ms'][0] * 1e3:.0f} us (range {dec['ms'][1] * 1e3:.0f}-{dec['ms'][2] * 1e3:.0f}), "
              f"{dec['GBps']:.0f} GB/s = {100 * dec['fraction_of_read_bw']:.0f}% of the measured read bandwidth")
    if "gemlite_ms" in dec:
        g = dec["gemlite_ms"]
        print(f"  gemlite 1-bit, same stream in one graph: {g[0] * 1e3:.0f} us (range {g[1] * 1e3:.0f}-{g[2] * 1e3:.0f})")
    elif "gemlite_error" in dec:
        print(f"  gemlite: {dec['gemlite_error']}")


def print_calls(calls):
    print("| N x K | M | pyonebit us (median, range) | % of floor | cuBLAS f16 us (median, range) | speedup "
          "| pyonebit, bfloat16 x, us | gemlite 1-bit us |")
    print("|---|---|---|---|---|---|---|---|")
    for r in calls:
        o, c = r["pyonebit_us"], r["cublas_f16_us"]
        g = r.get("gemlite_us")
        gtext = f"{g[0]:.1f} ({g[1]:.1f}-{g[2]:.1f})" if g else r.get("gemlite_error", "-")[:60]
        ob = r["pyonebit_bf16_us"]
        print(f"| {r['N']}x{r['K']} | {r['M']} | {o[0]:.1f} ({o[1]:.1f}-{o[2]:.1f}) | {100 * r['fraction_of_floor']:.0f}% "
              f"| {c[0]:.1f} ({c[1]:.1f}-{c[2]:.1f}) | {r['speedup']:.2f}x | {ob[0]:.1f} ({ob[1]:.1f}-{ob[2]:.1f}) | {gtext} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--decode-only", action="store_true", help="only (1) and (2)")
    args = p.parse_args()
    gs = args.group_size
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "group_size": gs, "bits": 1}
    print(f"device: {result['device']}, torch {result['torch']}, 1-bit, group size {gs}, float16 activations")
    result["bandwidth"] = bw = bandwidth()
    print(f"HBM read (sum over 2 GiB): {bw['read_GBps']:.0f} GB/s; D2D copy (read+write): {bw['copy_GBps']:.0f} GB/s")
    result["decode_graph"] = dec = decode_stream(args.layers, gs, bw["read_GBps"])
    torch.cuda.empty_cache()
    print_decode(dec)
    if not args.decode_only:
        dec.update(gemlite_decode(args.layers, gs))
        torch.cuda.empty_cache()
        print_decode({k: v for k, v in dec.items() if k.startswith("gemlite")})
    if not args.decode_only:
        result["per_call"] = calls = per_call([(4096, 4096), (11008, 4096), (14336, 4096)], [1, 16, 512], gs,
                                              bw["read_GBps"])
        print_calls(calls)
        result["host_overhead"] = host = host_overhead(gs)
        po, to = host["pyonebit_us"], host["torch_matmul_us"]
        print(f"host time per call (tiny matrix, back to back): pyonebit {po[0]:.1f} us ({po[1]:.1f}-{po[2]:.1f}), "
              f"torch.matmul {to[0]:.1f} us ({to[1]:.1f}-{to[2]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
