"""The emulator is honest: a deliberately broken line in a shader makes the
kernels' results wrong, and the check that runs them notices.

For each mutation: copy src/ to a temporary directory, break one line of a
kernel there, compile that kernel family with the emulator into a small
driver (tests/native/shader_check.cpp) that compares it with the CPU
reference, and see it report MISMATCH, while the same driver built from the
untouched sources reports that every case matches. The drivers are built
sanitized (native_build.py: the core's objects are test_sanitizers.py's), so a
mutation must fail by its results, with no sanitizer report."""
import os
import shutil

import pytest

from native_build import CXX, ROOT, require, run_under_sanitizers, shader_check_program

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


def check(native_builds, src_root, family, seed):
    """shader_check with the family's kernels from src_root, run under the
    seed (the untouched build is made once per family and shared)."""
    require(CXX, "the C++ compiler")
    exe = shader_check_program(native_builds, os.path.join(src_root, "metal", "kernels", FAMILY_SOURCE[family]))
    return run_under_sanitizers([exe, family], timeout=600, env={"PYONEBIT_EMU_SEED": seed})


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_broken_shader_line_fails(tmp_path, native_builds, mutation):
    family, header, line, broken, seed = MUTATIONS[mutation]
    clean = check(native_builds, os.path.join(ROOT, "src"), family, seed)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    copy = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "src"), copy)
    path = copy / "metal" / "kernels" / header
    text = path.read_text()
    assert text.count(line) == 1, f"mutation target not found in {header}"
    path.write_text(text.replace(line, broken))
    mutated = check(native_builds, str(copy), family, seed)
    assert mutated.returncode == 1, mutated.stdout + mutated.stderr
    assert "MISMATCH" in mutated.stdout
