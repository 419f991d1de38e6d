"""The Metal host code, linked and run on Linux against a recording fake of
Metal (tests/metal_fake): device gating and caps (NAX), zero-copy binding at
page offsets, the copy fallback, dtype widening, symmetric binding, empty
shapes, every error path, the pipeline cache under threads, and the choice
between an embedded metallib and run-time compilation. The fake GPU computes
the matmul through the buffers as bound; the results are compared with the
same product computed from the caller's arrays. What the fake cannot show, a Mac must: that real Metal accepts
these calls and that the kernels are right (.github/workflows/macos.yml)."""
import glob
import os
import subprocess

import pytest

from metal_host_support import ROOT, host_flags, require_clang, require_metal_cpp, write_kernel_header

FAKE = os.path.join(ROOT, "tests", "metal_fake")
# The kernel names the driver's stand-in planner asks for.
FAKE_KERNELS = "// fake_qmm_float32 fake_qmm_float16 fake_qmm_bfloat16\n"


def _compile(clang, flags, source, obj):
    result = subprocess.run([clang, *flags, "-O1", "-c", source, "-o", str(obj)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return str(obj)


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    """Executables keyed by library variant: embedded sources only, plus a
    loadable metallib, plus a metallib Metal rejects."""
    clang, metal_cpp = require_clang(), require_metal_cpp()
    tmp = tmp_path_factory.mktemp("fake")
    (tmp / "kernels").mkdir()
    (tmp / "kernels" / "fake.metal").write_text(FAKE_KERNELS)
    metallibs = {"sources": None, "metallib": b"FAKELIB" + FAKE_KERNELS.encode(), "bad_metallib": b"NOTLIB"}
    # The host code without library.cpp (built per variant below), the plan
    # validation and dtype conversion it uses, and the fake.
    shared = [s for s in sorted(glob.glob(os.path.join(ROOT, "src", "metal", "host", "*.cpp")))
              if not s.endswith("library.cpp")]
    shared += [os.path.join(ROOT, "src", "common", "plan.cpp"), os.path.join(ROOT, "src", "cpu", "reference.cpp"),
               # reference.cpp runs interleaved16 weights through these
               os.path.join(ROOT, "src", "cpu", "row_slabs.cpp"), os.path.join(ROOT, "src", "common", "layout.cpp"),
               os.path.join(ROOT, "src", "metal", "no_kernel.cpp"),
               *sorted(glob.glob(os.path.join(FAKE, "*.cpp")))]
    base_flags = host_flags(metal_cpp, write_kernel_header(tmp / "gen_sources", tmp / "kernels", tmp)) + ["-I", FAKE]
    objects = [_compile(clang, base_flags, s, tmp / f"{i}.o") for i, s in enumerate(shared)]
    exes = {}
    for variant, metallib in metallibs.items():
        gen = write_kernel_header(tmp / f"gen_{variant}", tmp / "kernels", tmp, metallib)
        lib = _compile(clang, host_flags(metal_cpp, gen), os.path.join(ROOT, "src", "metal", "host", "library.cpp"),
                       tmp / f"library_{variant}.o")
        exe = tmp / f"driver_{variant}"
        link = subprocess.run([clang, *objects, lib, "-o", str(exe), "-pthread", "-ldl"],
                              capture_output=True, text=True, timeout=300)
        assert link.returncode == 0, link.stderr
        exes[variant] = str(exe)
    return exes


def run(drivers, *args, variant="sources", **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_METAL_")}
    full_env.update({f"FAKE_METAL_{k.upper()}": v for k, v in env.items()})
    result = subprocess.run([drivers[variant], *args], capture_output=True, text=True, timeout=120, env=full_env)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


@pytest.mark.parametrize("family, os_version, nax", [
    ("8", "14.0", "0"),    # M2-class on macOS 14
    ("10", "26.2", "1"),   # M5-class on macOS 26.2: neural accelerators
    ("10", "26.1", "0"),   # M5-class, OS too old for them
    ("9", "26.2", "0"),    # new OS, older GPU
])
def test_device_caps_and_nax(drivers, family, os_version, nax):
    run(drivers, "caps", nax, family=family, os=os_version)


def test_gpus_below_apple7_are_not_offered(drivers):
    run(drivers, "unavailable", family="6")


@pytest.mark.parametrize("scenario", ["zero_copy", "symmetric", "widen", "empty", "missing_kernel", "threads"])
def test_scenario(drivers, scenario):
    run(drivers, scenario)


def test_refused_memory_is_copied_and_copied_back(drivers):
    run(drivers, "fallback", refuse_nocopy="1")


def test_compile_errors_raise_with_metal_description(drivers):
    run(drivers, "compile_error", fail_compile="1")


def test_command_buffer_errors_raise_with_metal_description(drivers):
    run(drivers, "gpu_error", fail_command="1")


@pytest.mark.parametrize("variant, compiles, loads", [
    ("sources", "1", "0"),       # no metallib: run-time compile
    ("metallib", "0", "1"),      # the embedded metallib, no compile
    ("bad_metallib", "1", "1"),  # a metallib Metal rejects: fall back to the sources
])
def test_library_from_metallib_or_sources(drivers, variant, compiles, loads):
    run(drivers, "library_source", compiles, loads, variant=variant)
