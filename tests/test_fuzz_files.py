"""Fuzzing load_gguf and load_mlx with structured mutations of small valid
files (see fuzz_files.py), every case in a worker interpreter with an
address-space cap, a traced-memory budget and a timeout.

Short profile (the default, for CI): PYONEBIT_FUZZ_CASES=3000 cases per
format. Long profile: e.g. PYONEBIT_FUZZ_CASES=20000 PYONEBIT_FUZZ_SEED=7
pytest tests/test_fuzz_files.py (SECURITY.md)."""
import os
import random
import sys

import pytest

import fuzz_files

CASES = int(os.environ.get("PYONEBIT_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("PYONEBIT_FUZZ_SEED", "0"))

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, RLIMIT_AS and FIFOs")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return fuzz_files.make_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("fmt", ["gguf", "mlx"])
def test_fuzz(fmt, seeds, tmp_path):
    make = fuzz_files.gguf_cases if fmt == "gguf" else fuzz_files.mlx_cases
    cases = make(seeds, random.Random(SEED), CASES)
    verdicts = fuzz_files.run(cases, seeds, tmp_path)
    assert len(verdicts) == len(cases)
    bad = [f"{cases[i]} -> {v}" for i, v in sorted(verdicts.items()) if v.startswith("BAD")]
    assert not bad, f"{len(bad)} of {len(cases)} cases failed:\n" + "\n".join(bad[:20])
    # The mutations must exercise both outcomes, or the harness tests nothing.
    outcomes = set(verdicts.values())
    assert {"ok", "error"} <= outcomes, outcomes
