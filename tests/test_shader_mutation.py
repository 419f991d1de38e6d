"""The emulator is honest: a deliberately broken line in a shader makes the
kernels' results wrong, and the check that runs them notices.

For each mutation: copy src/ to a temporary directory, break one line of a
kernel there, compile that kernel family with the emulator into a small
driver (tests/native/shader_check.cpp) that compares it with the CPU
reference, and see it report MISMATCH, while the same driver built from the
untouched sources reports that every case matches."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXX = os.environ.get("CXX", "g++")

# name: (family, header, line, broken line, emulator seed). The seed picks
# what the emulator varies (docs/metal.md); the untouched kernels pass under
# the same seed.
MUTATIONS = {
    # The seed's trap: 1-bit with group size 32 in the fast matrix-vector
    # kernel, where a lane's 64 values span two groups.
    "qmv": ("qmv", "qmv.h", "constexpr int seg = V < group_size ? V : group_size;",
            "constexpr int seg = V;", "1"),
    # The NAX epilogue: the row sum of x belongs to the element's row, not column.
    "nax": ("nax", "qmm_nax.h", "c.one * x_sums[ix[1]]", "c.one * x_sums[ix[0]]", "1"),
    # Relying on matmul2d's mode::multiply to overwrite its destination: seed 2
    # reads Apple's header the other way (the op adds to it).
    "nax_uncleared": ("nax", "qmm_nax.h", "    for (int i = 0; i < part.get_capacity(); ++i)\n"
                      "      if (part.is_valid_element(i)) part[i] = 0.0f;\n", "", "2"),
    # Reading other simdgroups' partial sums without the barrier: threads run
    # in a seeded order, so some read threadgroup memory before it is written.
    "qvm_no_barrier": ("qvm", "qvm.h", "  threadgroup_barrier(mem_flags::mem_threadgroup);\n", "", "1"),
}
FAMILY_SOURCE = {"qmv": "qmv.metal", "qvm": "qvm.metal", "nax": "qmm_nax.metal"}


def compile_cmd(out, *sources, std="c++17"):
    return [CXX, f"-std={std}", "-O1", "-Wno-attributes", "-Wno-volatile",
            "-DONEBIT_WITH_METAL_EMULATOR", "-I", os.path.join(ROOT, "include"),
            "-I", os.path.join(ROOT, "src"),
            "-I", os.path.join(ROOT, "src", "metal", "emulator", "include"), *sources,
            "-o", out]


@pytest.fixture(scope="module")
def core_objects(tmp_path_factory):
    if shutil.which(CXX) is None:
        pytest.skip(f"{CXX} not installed")
    build = tmp_path_factory.mktemp("core")
    sources = (glob.glob(os.path.join(ROOT, "src", "common", "*.cpp"))
               + glob.glob(os.path.join(ROOT, "src", "cpu", "*.cpp"))
               + glob.glob(os.path.join(ROOT, "src", "metal", "*.cpp"))
               + glob.glob(os.path.join(ROOT, "src", "metal", "emulator", "*.cpp"))
               + [os.path.join(ROOT, "tests", "native", "shader_check.cpp")])
    # The kernels come from the family under test, not from the full set.
    sources = [s for s in sources if not s.endswith("emulated_kernels.cpp")]
    objects = []
    for src in sources:
        obj = str(build / (os.path.basename(src) + ".o"))
        r = subprocess.run(compile_cmd(obj, "-c", src), capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        objects.append(obj)
    return objects


def build_and_run(tmp_path, core_objects, src_root, family, seed):
    kernel = os.path.join(src_root, "metal", "kernels", FAMILY_SOURCE[family])
    exe = str(tmp_path / f"check_{family}")
    cmd = compile_cmd(exe, "-x", "c++", kernel, "-x", "none", *core_objects, "-pthread",
                      std="c++20")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return subprocess.run([exe, family], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYONEBIT_EMU_SEED": seed})


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_broken_shader_line_fails(tmp_path, core_objects, mutation):
    family, header, line, broken, seed = MUTATIONS[mutation]
    clean = build_and_run(tmp_path, core_objects, os.path.join(ROOT, "src"), family, seed)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    copy = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "src"), copy)
    path = copy / "metal" / "kernels" / header
    text = path.read_text()
    assert text.count(line) == 1, f"mutation target not found in {header}"
    path.write_text(text.replace(line, broken))
    mutated = build_and_run(tmp_path, core_objects, str(copy), family, seed)
    assert mutated.returncode == 1, mutated.stdout + mutated.stderr
    assert "MISMATCH" in mutated.stdout
