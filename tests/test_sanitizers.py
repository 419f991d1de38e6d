"""The C++ core under AddressSanitizer and UndefinedBehaviorSanitizer: the
standalone-core program and the CPU kernel sweep (tests/native/isa_check.cpp,
every tail and bit width against the scalar reference) for each SIMD variant
this CPU runs, and for AVX-512 on SIMDe where it does not. Any report fails the test: reads past the end of wq, scales,
biases or x at any tail size, use after free, signed overflow, misaligned
loads. And the emulated Metal kernels, every family, through the emulator
built on ucontext (AddressSanitizer follows swapcontext, not the emulator's
own assembly switch)."""
import concurrent.futures
import glob
import os
import shutil
import subprocess

import pytest

import pyonebit
from native_build import AVX512_ON_SIMDE, ROOT, core_sources, has_simde

CXX = os.environ.get("CXX", "g++")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
FAMILIES = ["qmv", "qvm", "qmm", "nax"]
SIMD = [name for name in pyonebit.cpu_kernels()["supported"] if name not in ("scalar", "neon")]
# AVX-512 compiled but not supported here: run it on SIMDe instead (see test_avx512_simde.py).
SIMDE_AVX512 = ("avx512" in pyonebit.cpu_kernels()["compiled"] and "avx512" not in SIMD
                and shutil.which(CXX) is not None and has_simde(CXX))


def emulator_sources():
    """The planner and the emulated backend with every kernel."""
    return sorted(glob.glob(os.path.join(ROOT, "src", "metal", "*.cpp"))
                  + glob.glob(os.path.join(ROOT, "src", "metal", "emulator", "*.cpp")))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(main, emulator=False, avx512_on_simde=False) -> the sanitized
    program tests/native/<main>.
    Every source is compiled to its own object, as many at a time as there
    are cores, and the core's objects are shared by the programs built with
    the same flags (a sanitized build of everything, one g++ call per
    program, took most of this module's minutes)."""
    if shutil.which(CXX) is None:
        pytest.skip(f"{CXX} not installed")
    out = tmp_path_factory.mktemp("sanitized")
    plain = ["-std=c++17", "-O1", "-I", os.path.join(ROOT, "include")]
    # C++20 for the tensor ops, ucontext fibers (see above); -O0 because the
    # one file that instantiates every Metal kernel took 4 minutes to compile
    # at -O1 with the sanitizers and takes under one at -O0, while the cases
    # run in well under a second either way.
    emulated = ["-std=c++20", "-O0", "-Wno-attributes", "-Wno-volatile", "-DONEBIT_EMU_UCONTEXT",
                "-DONEBIT_WITH_METAL_EMULATOR", "-I", os.path.join(ROOT, "include"),
                "-I", os.path.join(ROOT, "src"), "-I", os.path.join(ROOT, "src", "metal", "emulator", "include")]
    objects, built = {}, {}

    def run_compiler(*args):
        r = subprocess.run([CXX, *args], capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stderr

    def compile_one(source, flags, obj):
        run_compiler(*flags, "-g", *SANITIZE, "-c", source, "-o", obj)

    def compile_all(jobs):  # [(source, flags)] -> objects
        todo = [(src, flags, str(out / f"{len(objects) + i}_{os.path.basename(src)}.o"))
                for i, (src, flags) in enumerate(jobs) if (src, tuple(flags)) not in objects]
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(lambda job: compile_one(*job), todo))
        for src, flags, obj in todo:
            objects[(src, tuple(flags))] = obj
        return [objects[(src, tuple(flags))] for src, flags in jobs]

    def link(main, emulator=False, avx512_on_simde=False):
        key = (main, emulator, avx512_on_simde)
        if key in built:
            return built[key]
        flags = emulated if emulator else plain
        sources = [os.path.join(ROOT, "tests", "native", main), *core_sources()]
        if emulator:
            sources += emulator_sources()
        # Only avx512.cpp differs on SIMDe; the other objects are shared.
        jobs = [(src, flags + AVX512_ON_SIMDE if avx512_on_simde and src.endswith("avx512.cpp") else flags)
                for src in sources]
        exe = str(out / (os.path.basename(main).replace(".cpp", "") + ("_simde" if avx512_on_simde else "")))
        run_compiler(*SANITIZE, *compile_all(jobs), "-o", exe, "-pthread")
        built[key] = exe
        return exe

    return link


def run_clean(cmd):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    # ASan's one caveat about swapcontext is a warning, not a report.
    reports = [l for l in r.stderr.splitlines() if "Sanitizer" in l and "swapcontext" not in l
               and "__asan_handle_no_return" not in l]
    assert not reports, r.stderr[-6000:]
    return r.stdout


def test_standalone_core(build):
    assert "ok:" in run_clean([build("standalone_core.cpp")])


@pytest.mark.parametrize("isa", SIMD)
def test_kernel_sweep(build, isa):
    out = run_clean([build("isa_check.cpp"), isa])
    assert out.strip().startswith("ok:"), out


@pytest.mark.skipif(not SIMDE_AVX512, reason="AVX-512 runs natively here (or SIMDe is missing)")
def test_kernel_sweep_avx512_on_simde(build):
    out = run_clean([build("isa_check.cpp", avx512_on_simde=True), "avx512"])
    assert out.strip().startswith("ok:"), out


@pytest.mark.skipif("metal-emulated" not in pyonebit.backends(), reason="real Metal build")
@pytest.mark.parametrize("family", FAMILIES)
def test_emulated_kernels(build, family):
    out = run_clean([build("shader_check.cpp", emulator=True), family])
    assert "all cases match" in out, out
