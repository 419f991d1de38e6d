"""python -m pyonebit bench --cold runs end to end and reports what it
promises: per matrix, the cold and hot times and the fraction of the memory
bandwidth it measured itself; per block, tokens per second."""
import re

import pytest

import pyonebit

from pyonebit.cli import bench_decode
from pyonebit.cli.args import UsageError


def test_decode_benchmark_reports_each_matrix(capsys):
    threads = pyonebit.get_num_threads()
    assert bench_decode.main(["--blocks", "1", "--rounds", "1", "--threads", "1",
                              "--paths", "layer,raw,fused"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"memory read bandwidth \d+\.\d GB/s", out)
    for path in ("layer", "raw", "fused"):
        for name, N, K in bench_decode.FUSED_BLOCK if path == "fused" else bench_decode.BLOCK:
            row = re.search(rf"^{path}\s+1\s+{name}\s.*$", out, re.M)
            assert row, (path, name)
            # path M name NxK cold (range) GB/s of-bw hot (range) stall hot/cache
            assert len(row.group(0).split()) == 12 and float(row.group(0).split()[-1]) > 0, row.group(0)
            assert row.group(0).split()[3] == f"{N}x{K}", row.group(0)
        assert re.search(rf"^{path}\s+1\s+block: \d+ us, .* tokens/s", out, re.M)
    assert "hot/cache" in out
    assert pyonebit.get_num_threads() == threads  # the benchmark leaves the pool as it found it


@pytest.mark.parametrize("argv, message", [(["--paths", "gpu"], "--paths"),
                                           (["--bits", "7"], "--bits"),
                                           (["--m", "0"], "--m")])
def test_decode_benchmark_rejects_bad_options(argv, message):
    # UsageError: __main__ prints "error: ..." and exits 2.
    with pytest.raises(UsageError, match=message):
        bench_decode.main(argv)


def test_bench_cold_runs_the_decode_benchmark(monkeypatch):
    from pyonebit.cli import bench

    seen = []
    monkeypatch.setattr(bench_decode, "main", lambda argv: seen.append(argv) or 0)
    assert bench.main(["--cold", "--blocks", "2"]) == 0
    assert seen == [["--blocks", "2"]]


def test_fused_path_concatenates_each_blocks_projections():
    rng = __import__("numpy").random.default_rng(0)
    small = {name: (N // 32, K // 16) for name, N, K in bench_decode.BLOCK}  # same ratios, small
    layers = [pyonebit.QuantizedLinear(*bench_decode.random_weights(rng, *small[name], 1, 64), group_size=64)
              for _ in range(2) for name, _, _ in bench_decode.BLOCK]
    fused = bench_decode.fused_blocks(layers)
    shapes = [(layer.out_features, layer.in_features) for layer in fused]
    assert shapes == [(N // 32, K // 16) for name, N, K in bench_decode.FUSED_BLOCK] * 2
    q, k, v = layers[7:10]  # the second block's q, k, v
    assert fused[4].wq.tobytes() == q.wq.tobytes() + k.wq.tobytes() + v.wq.tobytes()
    assert fused[5] is layers[10]  # o_proj as it is
