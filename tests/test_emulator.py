"""The Metal emulator itself: self-test kernels (tests/emulator/selftest.metal)
with known answers for every emulated MSL feature, and deliberately broken
kernels that the lockstep checks must reject (divergent collectives,
mismatched barriers, reads of lanes that returned). Built with each fiber
switch implementation: the assembly one (x86-64 natively, aarch64 under
qemu) and the portable ucontext one."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMU = os.path.join(ROOT, "src", "metal", "emulator")

VARIANTS = {
    "native-asm": ([os.environ.get("CXX", "g++")], [], []),
    "native-ucontext": ([os.environ.get("CXX", "g++")], ["-DONEBIT_EMU_UCONTEXT"], []),
    "aarch64-asm": (["aarch64-linux-gnu-g++"], ["-static"], ["qemu-aarch64-static"]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_emulator_selftest(tmp_path, variant):
    compiler, flags, runner = VARIANTS[variant]
    missing = [tool for tool in compiler + runner if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {missing} (see .ci/run)")
        pytest.skip(f"{missing} not installed")
    exe = tmp_path / "selftest"
    # C++20: the emulated Metal 4 tensor ops take class-type template arguments.
    cmd = [*compiler, "-std=c++20", "-O1", "-Wno-attributes", "-Wno-volatile", *flags, "-I",
           os.path.join(EMU, "include"), "-x", "c++",
           os.path.join(ROOT, "tests", "emulator", "selftest.metal"),
           os.path.join(ROOT, "tests", "emulator", "selftest_tensor.metal"), "-x", "none",
           os.path.join(ROOT, "tests", "emulator", "selftest.cpp"),
           os.path.join(EMU, "scheduler.cpp"), os.path.join(EMU, "context_switch.cpp"),
           "-o", str(exe), "-pthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([*runner, str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "ALL OK"
    # Every check ran (a silently skipped check would shorten this list).
    assert sum(line.startswith("ok ") for line in lines) == 14, run.stdout


def test_every_kernel_source_is_compiled_for_the_emulator():
    """Each src/metal/kernels/*.metal reaches the metal-emulated backend through
    exactly one emulated_kernels_<name>.cpp (build_tools/sources.py), which
    includes that file and nothing else: a new kernel source without one would
    be missing from the emulator, and one file of several would compile them
    one after another."""
    kernels = os.path.join(ROOT, "src", "metal", "kernels")
    names = sorted(f[:-len(".metal")] for f in os.listdir(kernels) if f.endswith(".metal"))
    units = sorted(f for f in os.listdir(os.path.join(ROOT, "src", "metal")) if f.startswith("emulated_kernels"))
    assert units == [f"emulated_kernels_{name}.cpp" for name in names]
    for name in names:
        with open(os.path.join(ROOT, "src", "metal", f"emulated_kernels_{name}.cpp")) as f:
            includes = [line.strip() for line in f if line.startswith("#")]
        assert includes == [f'#include "kernels/{name}.metal"'], (name, includes)
