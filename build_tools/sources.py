"""The C++ sources of each part of pyonebit, in one place: setup.py and the
tests that build native programs (tests/native_build.py) both take them from
here, so a new source file needs no edit in either. Paths are relative to
``root`` (the repository), sorted."""
import glob
import os


def _glob(root, *patterns):
    found = []
    for pattern in patterns:
        found += glob.glob(pattern, root_dir=root)
    return sorted(os.path.normpath(p) for p in found)


def core_sources(root="."):
    """The C++ core every build compiles: the public entry points (src/api,
    where present), the shared plan and format code, the CPU backend and
    the Metal planner (pure C++, part of every build)."""
    return _glob(root, "src/api/*.cpp", "src/common/*.cpp", "src/cpu/*.cpp") + [
        f for f in _glob(root, "src/metal/*.cpp") if not os.path.basename(f).startswith("emulated")]


def emulator_sources(root="."):
    """The "metal-emulated" backend (builds without Metal): the same kernel
    sources run on the CPU through src/metal/emulator. Each kernel source
    (src/metal/kernels/*.metal) is compiled as C++20 through its own
    emulated_kernels_<name>.cpp, which only includes it: the very .metal file
    macOS compiles, with src/metal/emulator/include on the include path so
    <metal_stdlib> is the emulator's shim; each instantiation registers
    itself in the emulator's kernel table (kernels/instantiate.h). One file
    per kernel source, so they compile side by side (one file of all five
    was half the extension's build time)."""
    return _glob(root, "src/metal/emulated_*.cpp", "src/metal/emulator/*.cpp")


def emulated_kernel_sources(root="."):
    """The emulated_kernels_<name>.cpp files (C++20: the Metal 4 tensor ops of
    the NAX kernels take their descriptor as a class-type template argument)."""
    return _glob(root, "src/metal/emulated_kernels_*.cpp")


def metal_host_sources(root="."):
    """The Metal host code (macOS on Apple silicon)."""
    return _glob(root, "src/metal/host/*.cpp")
