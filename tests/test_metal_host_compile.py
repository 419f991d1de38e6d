"""The Metal host code (src/metal/host, macOS only) compiles: every file is
checked with clang's parser on Linux against Apple's real metal-cpp headers
and the stub system headers of tests/metal_stubs. test_metal_host_fake.py
links and runs it against a fake Metal; real runs need a Mac
(.github/workflows/macos.yml)."""
import glob
import os
import subprocess

import pytest

from metal_host_support import HOST, ROOT, STUBS, host_flags, require_clang, require_metal_cpp, write_kernel_header

HOST_SOURCES = sorted(glob.glob(os.path.join(HOST, "*.cpp")))


@pytest.fixture(scope="module")
def clang():
    return require_clang()


@pytest.fixture(scope="module")
def metal_cpp():
    return require_metal_cpp()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The header from this tree's kernels. A small stand-in metallib
    exercises the embedded-bytes form too (parsed only)."""
    return write_kernel_header(tmp_path_factory.mktemp("generated"), os.path.join(ROOT, "src", "metal", "kernels"),
                               ROOT, b"MTLB\0\1\2\377")


def test_host_sources_exist():
    names = {os.path.basename(p) for p in HOST_SOURCES}
    assert {"metal_impl.cpp", "device.cpp", "library.cpp", "buffers.cpp", "encoder.cpp",
            "backend.cpp"} <= names


@pytest.mark.parametrize("source", HOST_SOURCES, ids=os.path.basename)
def test_host_file_compiles(clang, metal_cpp, generated, source):
    cmd = [clang, "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *host_flags(metal_cpp, generated), source]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_host_files_refuse_builds_without_metal(clang, metal_cpp):
    # Without ONEBIT_WITH_METAL a host file stops at its #error, so a build
    # that picks these sources up by accident fails loudly.
    cmd = [clang, "-std=c++17", "-fsyntax-only", "-I", metal_cpp, "-I", STUBS, os.path.join(HOST, "device.cpp")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "ONEBIT_WITH_METAL" in result.stderr
