"""The C++ core under AddressSanitizer and UndefinedBehaviorSanitizer: the
standalone-core program and the CPU kernel sweep (tests/native/neon_check.cpp,
every tail and bit width against the scalar reference) for each SIMD variant
this CPU runs. Any report fails the test: reads past the end of wq, scales,
biases or x at any tail size, use after free, signed overflow, misaligned
loads. (The Metal emulator's fibers switch stacks, which the sanitizers do
not follow; the emulator is covered by its lockstep checks instead.)"""
import glob
import os
import shutil
import subprocess

import pytest

import pyonebit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXX = os.environ.get("CXX", "g++")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
SIMD = [name for name in pyonebit.cpu_kernels()["supported"] if name not in ("scalar", "neon")]


def core_sources():
    return sorted(glob.glob(os.path.join(ROOT, "src", "common", "*.cpp"))
                  + glob.glob(os.path.join(ROOT, "src", "cpu", "*.cpp")))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if shutil.which(CXX) is None:
        pytest.skip(f"{CXX} not installed")
    out = tmp_path_factory.mktemp("sanitized")

    def compile(main):
        exe = str(out / os.path.basename(main).replace(".cpp", ""))
        cmd = [CXX, "-std=c++17", "-O1", "-g", *SANITIZE, "-I", os.path.join(ROOT, "include"),
               os.path.join(ROOT, "tests", "native", main), *core_sources(), "-o", exe, "-pthread"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        return exe

    return compile


def run_clean(cmd):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    assert "Sanitizer" not in r.stderr, r.stderr[-6000:]
    return r.stdout


def test_standalone_core(build):
    assert "ok:" in run_clean([build("standalone_core.cpp")])


@pytest.mark.parametrize("isa", SIMD)
def test_kernel_sweep(build, isa):
    out = run_clean([build("neon_check.cpp"), isa])
    assert out.strip().startswith("ok:"), out
