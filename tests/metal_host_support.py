"""Shared by the Linux checks of the Metal host code (test_metal_host_compile.py,
test_metal_host_fake.py): compiler, metal-cpp headers, generated kernel header."""
import os
import platform
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "src", "metal", "host")
STUBS = os.path.join(ROOT, "tests", "metal_stubs")
sys.path.insert(0, HOST)
import embed_kernels  # noqa: E402
import fetch_metal_cpp  # noqa: E402


def require_clang():
    if sys.platform == "darwin":
        # The stubs would shadow the real SDK headers; on macOS the extension
        # build itself compiles (and links) the host code.
        pytest.skip("Linux check; macOS builds the host code for real")
    if platform.machine() not in ("x86_64", "AMD64"):
        # metal-cpp's message sending knows x86, 32-bit arm and Apple's arm64.
        pytest.skip(f"metal-cpp does not parse for {platform.machine()} Linux")
    cxx = shutil.which("clang++")
    if cxx is None:
        pytest.skip("clang++ is not installed (apt-get install clang)")
    return cxx


def require_metal_cpp():
    try:
        return fetch_metal_cpp.metal_cpp_dir()
    except Exception as e:  # network, pip or archive trouble
        if os.environ.get("CI"):
            raise
        pytest.skip(f"could not fetch metal-cpp: {e}")


def write_kernel_header(out_dir, kernels_dir, base, metallib=None):
    """The header setup.py generates (onebit_metal_sources.h), into out_dir."""
    sources = embed_kernels.kernel_sources(str(kernels_dir), [os.path.join(ROOT, "src"),
                                                              os.path.join(ROOT, "include")], str(base))
    embed_kernels.write_header(os.path.join(str(out_dir), "onebit_metal_sources.h"), sources, metallib)
    return str(out_dir)


def host_flags(metal_cpp, generated):
    """The flags of a macOS build, with the stubs standing in for the SDK.
    Third-party and stub headers are system headers: -Werror then judges our
    code only, not what a newer clang thinks of Apple's headers."""
    return ["-std=c++17", "-fblocks", "-DONEBIT_WITH_METAL", "-I", os.path.join(ROOT, "include"),
            "-I", os.path.join(ROOT, "src"), "-I", generated, "-isystem", metal_cpp, "-isystem", STUBS]


def embedded_kernel_sources(kernels_dir, base):
    """[(file name, text)] of every .metal file exactly as write_kernel_header
    embeds it (includes inlined, the same include roots)."""
    return embed_kernels.kernel_sources(str(kernels_dir), [os.path.join(ROOT, "src"),
                                                           os.path.join(ROOT, "include")], str(base))
