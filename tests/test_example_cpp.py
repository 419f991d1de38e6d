"""The C++ library build (CMakeLists.txt) and its example program: configure
and build with cmake, run examples/quantized_matvec, and check that the
example is made of its own source plus the `onebit` library, both in the
source tree and against an installed (shared) library."""
import glob
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import pyonebit
from native_build import ROOT, sources
EXAMPLE = "quantized_matvec"


def cmake():
    path = shutil.which("cmake")
    if path is None:
        pytest.fail("cmake is not on PATH; it comes with the test extra: pip install -e '.[test]'")
    return path


def run(cmd, timeout=300):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}"
    return done


def configure_and_build(source, build, *options, build_type="Release"):
    run([cmake(), "-S", source, "-B", build, f"-DCMAKE_BUILD_TYPE={build_type}", *options])
    run([cmake(), "--build", build, "-j", "2"])


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """A Release build of the library and the example from the source tree,
    with a CMake file-API query so the test can read the build's targets."""
    build = tmp_path_factory.mktemp("cmake-build")
    query = build / ".cmake" / "api" / "v1" / "query"
    query.mkdir(parents=True)
    (query / "codemodel-v2").touch()
    configure_and_build(ROOT, build)
    return build


def run_example(exe):
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def check_output(lines):
    assert lines[0] == "backends: cpu"  # no Metal and no emulator in the library
    ok = [re.fullmatch(r"ok: max relative error (\S+) \(bound (\S+)\)", line) for line in lines]
    ok = [m for m in ok if m]
    assert len(ok) == 1, lines
    error, bound = float(ok[0].group(1)), float(ok[0].group(2))
    assert 0 <= error <= bound < 1e-4

    # The example's bad call (x of K/2 elements against a (512, 2048) W) is
    # reported as the Python binding reports the same call.
    wq, scales, biases = pyonebit.quantize(np.ones((512, 2048), np.float32))
    with pytest.raises(ValueError) as python_error:
        pyonebit.quantized_matmul(np.ones(1024, np.float32), wq, scales, biases)
    assert lines[-1] == f"caught onebit::ValueError: {python_error.value}"


def test_example_runs_and_checks_its_product(build_dir):
    check_output(run_example(build_dir / "examples" / EXAMPLE))


def codemodel_targets(build):
    """{target name: target description} from the CMake file-API reply."""
    reply = build / ".cmake" / "api" / "v1" / "reply"
    index = json.loads(max(reply.glob("index-*.json")).read_text())
    codemodel = json.loads((reply / index["reply"]["codemodel-v2"]["jsonFile"]).read_text())
    targets = {}
    for t in codemodel["configurations"][0]["targets"]:
        targets[t["name"]] = json.loads((reply / t["jsonFile"]).read_text())
    return targets


def test_example_is_its_source_linked_to_the_library(build_dir):
    targets = codemodel_targets(build_dir)
    example, library = targets[EXAMPLE], targets["onebit"]
    assert [s["path"] for s in example["sources"]] == [f"examples/{EXAMPLE}.cpp"]
    assert [d["id"] for d in example["dependencies"]] == [library["id"]]
    # It includes only the public headers, not the library's sources.
    includes = [i["path"] for g in example["compileGroups"] for i in g.get("includes", [])]
    assert includes == [os.path.join(ROOT, "include")]


def test_library_is_built_from_the_sources_of_setup_py(build_dir):
    library = codemodel_targets(build_dir)["onebit"]
    assert library["type"] == "STATIC_LIBRARY"  # the default
    # setup.py's core (build_tools/sources.py): the CPU backend and the Metal planner, no emulator.
    assert sorted(s["path"] for s in library["sources"]) == sources.core_sources(ROOT)
    flags = " ".join(f["fragment"] for g in library["compileGroups"] for f in g["compileCommandFragments"])
    for flag in ("-std=c++17", "-ffp-contract=off", "-fvisibility=hidden"):
        assert flag in flags.split()
    assert "-march" not in flags  # the SIMD files choose their targets by pragma


def test_installed_shared_library_builds_the_example(tmp_path):
    """Install a shared build, then build examples/ as a project of its own
    that finds the library with find_package(onebit): the example needs
    nothing but the installed headers and library. Built unoptimized (a
    build type with no flags of its own: -O0, no -g): this checks the
    packaging (exports, visibility, the CMake package); the Release code of
    the same sources is what build_dir's static build runs."""
    prefix = tmp_path / "prefix"
    configure_and_build(ROOT, tmp_path / "shared", "-DBUILD_SHARED_LIBS=ON", "-DONEBIT_BUILD_EXAMPLES=OFF",
                        build_type="Unoptimized")
    run([cmake(), "--install", tmp_path / "shared", "--prefix", prefix])
    assert (prefix / "include" / "onebit" / "onebit.h").is_file()
    assert [p for p in glob.glob(str(prefix / "lib*" / "libonebit.*")) if not p.endswith(".a")]

    configure_and_build(os.path.join(ROOT, "examples"), tmp_path / "example", f"-DCMAKE_PREFIX_PATH={prefix}")
    check_output(run_example(tmp_path / "example" / EXAMPLE))
