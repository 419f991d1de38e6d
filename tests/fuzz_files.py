"""A structured fuzzer for the checkpoint loaders (load_gguf, load_mlx).

Cases are mutations of small valid files made by :mod:`hostile_files`:
truncation, a known field (count, length, dimension, type, offset) set to an
interesting value, random bytes, and for MLX checkpoints hostile JSON values
in config.json and the index, edits of the safetensors header, and special
files. The parent (``run``) hands batches of cases to a worker interpreter
(``python fuzz_files.py CASES RESULTS``) that caps its own address space,
then builds, loads and judges each case, appending one result line per
case. A case with no result line crashed or hung its worker: the parent
kills the worker's process group, records that case, and starts a new
worker after it.

A case passes when the load succeeds (a truncated GGUF file must then be
the seed itself) or raises ValueError (FileNotFoundError for a missing
shard) whose message starts with ``[load_gguf] '<path>'`` or
``[load_mlx]``; and its traced Python memory peak stays under
``MEMORY_BUDGET``. Anything else (another exception type, a slow case, a
crash, a hang) fails.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDRESS_CAP_MIB = 384  # beyond the worker's imports
SLOW_S = 5.0  # one case; the loaders take milliseconds on these files
MEMORY_BUDGET = lambda size: 2**20 + 32 * size  # noqa: E731  traced bytes, for a file set of `size` bytes

# Values a count, length, dimension or offset is set to.
INTERESTING = [0, 1, 2, 7, 31, 32, 33, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1,
               2**63, 2**64 - 64, 2**64 - 1]
# Values a config.json field is set to.
HOSTILE_JSON = ["1", "", 6e9, 6000000000, 2**64, -1, 0, 1.5, None, True, False, [], {}, [1], {"bits": 1},
                "affine", "symmetric", 1, 2, 3, 4, 8, 32, 64, 128, 256]
HOSTILE_FILE_NAMES = ["../outside.safetensors", "/etc/passwd", "", ".", "..", "a\u0000b", "sub/x.safetensors",
                      "missing.safetensors", 5, None, [], {}]


# ---- seeds ----------------------------------------------------------------------------------


def make_seeds(directory: Path) -> dict:
    """Writes the seed files into ``directory``; returns their description."""
    import numpy as np

    from hostile_files import seed_gguf, write_mlx_checkpoint

    builder = seed_gguf(np.random.default_rng(1))
    raw = builder.build()
    (directory / "seed.gguf").write_bytes(raw)
    write_mlx_checkpoint(directory / "mlx1", np.random.default_rng(2))
    write_mlx_checkpoint(directory / "mlx2", np.random.default_rng(3), shards=2)
    (directory / "outside.safetensors").write_bytes((directory / "mlx1" / "model.safetensors").read_bytes())
    return {"gguf": str(directory / "seed.gguf"), "gguf_size": len(raw),
            "gguf_fields": [(o, fmt, label) for o, fmt, label in builder.fields],
            "mlx1": str(directory / "mlx1"), "mlx2": str(directory / "mlx2")}


# ---- cases ----------------------------------------------------------------------------------


def gguf_cases(seeds: dict, rng: random.Random, budget: int) -> list[dict]:
    size = seeds["gguf_size"]
    structured = [{"fmt": "gguf", "kind": "truncate", "at": n} for n in range(size)]
    for offset, fmt, label in seeds["gguf_fields"]:
        limit = 2 ** (8 * struct.calcsize(fmt))
        for value in INTERESTING + [size]:
            structured.append({"fmt": "gguf", "kind": "field", "at": offset, "struct": fmt,
                               "value": value % limit, "label": label})
    cases = _fit(structured, rng, budget * 2 // 3)
    while len(cases) < budget:
        cases.append({"fmt": "gguf", "kind": "bytes", "edits": _random_edits(rng, size)})
    return cases


def mlx_cases(seeds: dict, rng: random.Random, budget: int) -> list[dict]:
    structured = []
    for where in (["quantization", "bits"], ["quantization", "group_size"], ["quantization", "mode"],
                  ["quantization", "lm_head"], ["quantization", "lm_head", "bits"],
                  ["quantization", "lm_head", "group_size"], ["quantization", "lm_head", "mode"],
                  ["quantization", "model.layers.0.q_proj"], ["quantization"], ["hidden_size"]):
        for value in HOSTILE_JSON:
            structured.append({"fmt": "mlx", "seed": "mlx1", "kind": "config", "path": where, "value": value})
    for depth in (10, 1000, 100_000):
        structured.append({"fmt": "mlx", "seed": "mlx1", "kind": "nested", "file": "config.json", "depth": depth})
        structured.append({"fmt": "mlx", "seed": "mlx2", "kind": "nested", "depth": depth,
                           "file": "model.safetensors.index.json"})
    for value in HOSTILE_FILE_NAMES:
        structured.append({"fmt": "mlx", "seed": "mlx2", "kind": "weight_map_entry", "value": value})
    for value in ([], "x", 5, None, {"lm_head.weight": []}, [{"a": "b"}]):
        structured.append({"fmt": "mlx", "seed": "mlx2", "kind": "weight_map", "value": value})
    for special in ("fifo", "dir"):
        for file in ("model.safetensors", "config.json"):
            structured.append({"fmt": "mlx", "seed": "mlx1", "kind": "special", "file": file, "special": special})
    st_size = os.path.getsize(Path(seeds["mlx1"]) / "model.safetensors")
    structured += [{"fmt": "mlx", "seed": "mlx1", "kind": "st_truncate", "at": n} for n in range(0, st_size, 7)]
    for value in INTERESTING:
        structured.append({"fmt": "mlx", "seed": "mlx1", "kind": "st_header_len", "value": value})
    for key in ("shape", "data_offsets", "dtype"):
        for value in HOSTILE_JSON + [[2**62, 2], [-1, 4], [0, 2**64], [8, 4]]:
            structured.append({"fmt": "mlx", "seed": "mlx1", "kind": "st_entry", "key": key, "value": value})
    cases = _fit(structured, rng, budget * 2 // 3)
    with open(Path(seeds["mlx1"]) / "model.safetensors", "rb") as f:
        header_end = 8 + struct.unpack("<Q", f.read(8))[0]
    while len(cases) < budget:  # random bytes in the header: the data region is any bytes anyway
        cases.append({"fmt": "mlx", "seed": "mlx1", "kind": "st_bytes", "edits": _random_edits(rng, header_end)})
    return cases


def _fit(cases: list, rng: random.Random, budget: int) -> list:
    """All of ``cases`` if they fit the budget, else an even-handed sample."""
    return cases if len(cases) <= budget else rng.sample(cases, budget)


def _random_edits(rng: random.Random, size: int) -> list:
    """1 to 4 overwrites of 1 to 8 random bytes at random offsets below ``size``."""
    return [(rng.randrange(size), [rng.randrange(256) for _ in range(rng.randint(1, 8))])
            for _ in range(rng.randint(1, 4))]


# ---- the worker: build, load, judge ---------------------------------------------------------


def _build_gguf(case: dict, seeds: dict, scratch: Path) -> Path:
    raw = bytearray(Path(seeds["gguf"]).read_bytes())
    if case["kind"] == "truncate":
        raw = raw[: case["at"]]
    elif case["kind"] == "field":
        raw[case["at"]: case["at"] + struct.calcsize(case["struct"])] = struct.pack(case["struct"], case["value"])
    else:
        _apply_edits(raw, case["edits"])
    path = scratch / "case.gguf"
    path.write_bytes(raw)
    return path


def _apply_edits(raw: bytearray, edits: list) -> None:
    for at, data in edits:
        at %= max(len(raw), 1)
        raw[at: at + len(data)] = bytes(data)


def _build_mlx(case: dict, seeds: dict, scratch: Path) -> Path:
    d = scratch / "ckpt"
    shutil.copytree(seeds[case["seed"]], d)
    kind = case["kind"]
    if kind == "config":
        config = json.loads((d / "config.json").read_text())
        *parents, last = case["path"]
        node = config
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[last] = case["value"]
        (d / "config.json").write_text(json.dumps(config))
    elif kind == "nested":
        (d / case["file"]).write_text("[" * case["depth"] + "]" * case["depth"])
    elif kind in ("weight_map", "weight_map_entry"):
        index = json.loads((d / "model.safetensors.index.json").read_text())
        if kind == "weight_map":
            index["weight_map"] = case["value"]
        else:
            index["weight_map"]["lm_head.weight"] = case["value"]
        (d / "model.safetensors.index.json").write_text(json.dumps(index))
    elif kind == "special":
        (d / case["file"]).unlink()
        os.mkfifo(d / case["file"]) if case["special"] == "fifo" else (d / case["file"]).mkdir()
    else:
        _edit_safetensors(d / "model.safetensors", case)
    return d


def _edit_safetensors(path: Path, case: dict) -> None:
    raw = bytearray(path.read_bytes())
    kind = case["kind"]
    if kind == "st_truncate":
        raw = raw[: case["at"]]
    elif kind == "st_header_len":
        raw[:8] = struct.pack("<Q", case["value"])
    elif kind == "st_entry":
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8: 8 + n])
        name = sorted(k for k in header if k != "__metadata__")[0]
        header[name][case["key"]] = case["value"]
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        raw = bytearray(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    else:
        _apply_edits(raw, case["edits"])
    path.write_bytes(raw)


def _files_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file() and not f.is_symlink())


def judge(case: dict, seeds: dict, scratch: Path, expected_gguf) -> str:
    """'ok', 'error' or 'BAD: why' for one case."""
    import tracemalloc

    import pyonebit

    path = _build_gguf(case, seeds, scratch) if case["fmt"] == "gguf" else _build_mlx(case, seeds, scratch)
    size = _files_size(path)
    tracemalloc.start()
    try:
        result = (pyonebit.load_gguf if case["fmt"] == "gguf" else pyonebit.load_mlx)(path)
        verdict = "ok"
    except (ValueError, FileNotFoundError) as e:
        result = None
        prefix = f"[load_gguf] {str(path)!r}" if case["fmt"] == "gguf" else "[load_mlx] "
        allowed = ValueError if case["fmt"] == "gguf" else (ValueError, FileNotFoundError)
        ok = isinstance(e, allowed) and str(e).startswith(prefix)
        verdict = "error" if ok else f"BAD: {type(e).__name__} without the file/field: {e}"
    except BaseException as e:  # noqa: BLE001  any other type is what the fuzzer looks for
        result = None
        verdict = f"BAD: {type(e).__name__}: {str(e)[:300]}"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if peak > MEMORY_BUDGET(size):
        verdict = f"BAD: traced peak {peak} bytes for {size} bytes of files ({verdict})"
    if verdict == "ok" and case["fmt"] == "gguf" and case["kind"] == "truncate":
        verdict = "BAD: a truncated file loaded" if case["at"] < seeds["gguf_size"] else \
            _same_gguf(result, expected_gguf)
    if verdict == "ok" and case["fmt"] == "mlx":
        verdict = _within_files(result, size) if case["kind"] != "st_truncate" else "BAD: a truncated file loaded"
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return verdict


def _same_gguf(a, b) -> str:
    import numpy as np

    same = (a.layers.keys() == b.layers.keys() and a.tensors.keys() == b.tensors.keys()
            and all(np.array_equal(a.layers[k].wq, b.layers[k].wq) for k in a.layers)
            and all(a.tensors[k].tobytes() == b.tensors[k].tobytes() for k in a.tensors))
    return "ok" if same else "BAD: loaded data differs from the file's"


def _within_files(checkpoint, size: int) -> str:
    """A loaded checkpoint holds no more bytes than its files: nothing was
    made up (load_mlx keeps weights packed)."""
    arrays = [a for layer in checkpoint.layers.values()
              for a in (layer.wq, layer.scales, layer.biases, layer.bias) if a is not None]
    held = sum(a.nbytes for a in arrays + list(checkpoint.tensors.values()))
    return "ok" if held <= size else f"BAD: {held} bytes of arrays from {size} bytes of files"


def worker(cases_path: str, results_path: str) -> None:
    import resource

    import pyonebit  # noqa: F401  imported before the cap is measured
    import pyonebit.io.gguf_file  # noqa: F401
    import pyonebit.io.mlx_checkpoint  # noqa: F401

    vm = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (vm + ADDRESS_CAP_MIB * 2**20, resource.RLIM_INFINITY))
    job = json.loads(Path(cases_path).read_text())
    seeds, scratch = job["seeds"], Path(job["scratch"])
    expected = pyonebit.load_gguf(seeds["gguf"])
    with open(results_path, "a") as out:
        for i, case in job["cases"]:
            t0 = time.perf_counter()
            verdict = judge(case, seeds, scratch, expected)
            elapsed = time.perf_counter() - t0
            if elapsed > SLOW_S and not verdict.startswith("BAD"):
                verdict = f"BAD: took {elapsed:.1f} s"
            out.write(json.dumps([i, verdict]) + "\n")
            out.flush()


# ---- the parent -----------------------------------------------------------------------------


def run(cases: list[dict], seeds: dict, workdir: Path, batch_timeout_s: float = 120) -> dict[int, str]:
    """Verdict of every case, by index; a crash or hang is charged to the
    case its worker was on."""
    verdicts: dict[int, str] = {}
    pending = list(enumerate(cases))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    while pending:
        scratch = workdir / f"scratch{len(verdicts)}"
        scratch.mkdir()
        (workdir / "job.json").write_text(json.dumps({"seeds": seeds, "scratch": str(scratch), "cases": pending}))
        results = workdir / "results.jsonl"
        results.write_text("")
        proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(workdir / "job.json"), str(results)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=batch_timeout_s)
            how = f"worker exited {proc.returncode}: {stderr[-500:]}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            how = f"hung (worker killed after {batch_timeout_s} s)"
        done = [json.loads(line) for line in results.read_text().splitlines()]
        verdicts.update({i: v for i, v in done})
        pending = pending[len(done):]
        if pending:  # the worker stopped on this case
            i, _ = pending.pop(0)
            verdicts[i] = f"BAD: {how}"
        shutil.rmtree(scratch, ignore_errors=True)
    return verdicts


if __name__ == "__main__":
    worker(*sys.argv[1:3])
