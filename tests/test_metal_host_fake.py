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

from metal_host_support import ROOT, embed_kernels, host_flags, require_clang, require_metal_cpp, \
    write_kernel_header

FAKE = os.path.join(ROOT, "tests", "metal_fake")
# Three kernel families (fake_metal.h: a compile keeps an "@X.Y" line from
# Metal X.Y on, as __HAVE_BFLOAT__ and __HAVE_TENSOR__ do). fake_qmm_* are the
# kernels the driver's stand-in planner asks for; the real names are those
# library.cpp probes for (NAX and bfloat16 kernels present).
FAKE_FAMILIES = {
    "fake.metal": "// fake_qmm_float32 fake_qmm_float16 qmv_float16_gs_64_b_1\n"
                  "// @3.1 fake_qmm_bfloat16 qmv_bfloat16_gs_64_b_1\n",
    "other.metal": "// fake_other_float32\n",
    "qmm_nax.metal": "// @4.0 qmm_t_nax_float16_gs_64_b_1\n",
}
MAIN_LIB = "".join(v for k, v in FAKE_FAMILIES.items() if k != "qmm_nax.metal").replace("@3.1 ", "")


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
    for name, text in FAKE_FAMILIES.items():
        (tmp / "kernels" / name).write_text(text)
    # Deployment targets as embed_kernels sets them: main 14.0, Metal 4 26.0.
    metallibs = {"sources": None,
                 "metallib": embed_kernels.Metallibs(
                     f"FAKELIB min=14.0\n{MAIN_LIB}".encode(),
                     b"FAKELIB min=26.0\n// qmm_t_nax_float16_gs_64_b_1\n"),
                 "bad_metallib": b"NOTLIB"}
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
    # macOS 26.2 as told to a program linked against a pre-26 SDK: 16.2 is 26.2.
    ("10", "16.2", "1"),
    ("10", "16.1", "0"),
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


@pytest.mark.parametrize("variant, os_version, language, nax, bfloat, compiles, loads", [
    # Run-time compile at the OS's language version; qmm_nax.metal only from 26.
    ("sources", "13.6", "3.0", "0", "0", "2", "0"),   # Metal 3.0: no bfloat kernels
    ("sources", "14.0", "3.1", "0", "1", "2", "0"),
    ("sources", "15.3", "3.2", "0", "1", "2", "0"),
    ("sources", "26.0", "4.0", "1", "1", "3", "0"),
    ("sources", "16.2", "4.0", "1", "1", "3", "0"),   # 26.2 as a pre-26 SDK sees it
    # Embedded metallibs: the Metal 4 one is tried only on macOS 26.
    ("metallib", "14.0", "3.1", "0", "1", "0", "1"),
    ("metallib", "26.2", "4.0", "1", "1", "0", "2"),
    ("metallib", "13.6", "3.0", "0", "0", "2", "1"),  # below its deployment target: compile at 3.0
    ("bad_metallib", "14.0", "3.1", "0", "1", "2", "1"),  # a metallib Metal rejects: compile
])
def test_library_per_family(drivers, variant, os_version, language, nax, bfloat, compiles, loads):
    run(drivers, "library", language, nax, bfloat, compiles, loads, variant=variant, os=os_version)


def test_failed_family_costs_only_its_kernels_and_compiles_once(drivers):
    run(drivers, "family_failure", fail_compile="other.metal")


def test_misaligned_inputs_are_copied(drivers):
    run(drivers, "misaligned")


@pytest.mark.parametrize("static, outcome", [("32704", "fits"), ("32760", "too_much")])
def test_static_threadgroup_memory_counts(drivers, static, outcome):
    run(drivers, "static_threadgroup_memory", outcome, static_tg_memory=static)


def test_batch_dims_stay_small_however_many_batches(drivers):
    run(drivers, "many_batches")


def test_info_reports_each_family(monkeypatch):
    # `python -m pyonebit info` on a Mac, from what library.cpp publishes
    # (stats().library, as the fake runs above check): a macOS 14 machine
    # whose metallib was refused and whose qmm.metal failed to compile.
    import pyonebit
    from pyonebit import _core
    from pyonebit.cli import info

    library = {"loaded": True, "os": "14.5", "metallib_error": "prebuilt metallib: fake: needs macOS 15.0",
               "nax_kernels": False, "bfloat_kernels": True, "families": [
                   {"source": "qmm.metal", "origin": "compiled", "language": "3.1", "ok": False,
                    "error": "program_source:3:1: error:\n  unknown type"},
                   {"source": "qmm_nax.metal", "origin": "skipped", "language": "", "ok": False,
                    "error": "needs Metal 4 (macOS 26); this is macOS 14.5"},
                   {"source": "qmv.metal", "origin": "compiled", "language": "3.1", "ok": True, "error": ""}]}
    loads = []
    monkeypatch.setattr(pyonebit, "backends", lambda: ["metal", "cpu"])
    monkeypatch.setattr(_core, "_metal_load_library", lambda: loads.append(1) or True)
    monkeypatch.setattr(pyonebit, "metal_stats", lambda: {"built": True, "library": library})
    assert info.metal_library_lines() == [
        "  kernels on macOS 14.5: bfloat16 yes; NAX (qmm_t_nax) no (needs macOS 26, Metal 4)",
        "  prebuilt metallib not used: prebuilt metallib: fake: needs macOS 15.0",
        "  qmm.metal: FAILED at Metal 3.1 (its kernels are unavailable): program_source:3:1: error: unknown type",
        "  qmm_nax.metal: skipped: needs Metal 4 (macOS 26); this is macOS 14.5",
        "  qmv.metal: compiled, Metal 3.1",
    ]
    assert loads == [1]  # the library is loaded before it is described
    # Built, but no device: nothing was loaded.
    monkeypatch.setattr(pyonebit, "backends", lambda: ["cpu"])
    monkeypatch.setattr(pyonebit, "metal_stats", lambda: {"built": True, "library": {"loaded": False}})
    assert info.metal_library_lines() == ["  kernels: not loaded (no usable Metal device)"]
    # Not built (Linux): no library lines; the Metal line says why.
    monkeypatch.setattr(pyonebit, "metal_stats", lambda: {"built": False, "library": {"loaded": False}})
    assert info.metal_library_lines() == []


def test_metal_stats_reports_the_library_in_every_build():
    import pyonebit
    stats = pyonebit.metal_stats()
    assert {"copied_misaligned", "library"} <= set(stats)
    assert set(stats["library"]) == {"loaded", "os", "metallib_error", "nax_kernels", "bfloat_kernels", "families"}
    if not stats["built"]:  # Linux: nothing loads, and loading says so
        assert not pyonebit._core._metal_load_library()
        assert stats["library"]["families"] == [] and not stats["library"]["loaded"]
