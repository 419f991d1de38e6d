"""Locates Apple's metal-cpp headers without vendoring them.

Order: the METAL_CPP_DIR environment variable; a per-user cache; else the
``pymetal-cpp`` sdist from PyPI, which carries a copy of metal-cpp under
``thirdparty/metal-cpp``, downloaded with pip and unpacked into the cache.
Used by setup.py (macOS builds) and by tests/test_metal_host_compile.py.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "0.1.5"  # pymetal-cpp release; carries metal-cpp for the macOS 15 SDK
MEMBER = f"pymetal_cpp-{VERSION}/thirdparty/metal-cpp/"


def cache_dir():
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "pyonebit", f"metal-cpp-{VERSION}")


def _is_metal_cpp(path):
    return os.path.isfile(os.path.join(path, "Metal", "Metal.hpp"))


def _download_sdist(dest):
    # The sdist, never a wheel: only the sdist has the headers. pip prepares the
    # sdist's metadata; --no-build-isolation does that with the backend already
    # installed (no extra downloads) and the retry lets pip fetch it. Only this
    # package is taken as source: with ":all:" the retry built its backend's
    # build requirements from source too (CMake: over 10 minutes on 2 cores).
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "pymetal-cpp",
            f"pymetal-cpp=={VERSION}", "-d", dest]
    errors = []
    for extra in (["--no-build-isolation"], []):
        result = subprocess.run(base + extra, capture_output=True, text=True, timeout=600)
        if result.returncode == 0:
            return os.path.join(dest, f"pymetal_cpp-{VERSION}.tar.gz")
        errors.append(result.stderr.strip())
    raise RuntimeError("pip download of pymetal-cpp failed:\n" + "\n".join(errors))


def _extract(sdist, target):
    """Unpacks the metal-cpp directory of `sdist` to `target` atomically, so a
    concurrent or interrupted run never leaves a partial cache."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(MEMBER) and (m.isfile() or m.isdir())]
        for m in members:
            m.name = m.name[len(MEMBER):] or "."
        # The "data" filter (Python >= 3.12, and backports) refuses links and
        # absolute paths; the members are plain files and directories anyway.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(staging, members=members, **safe)
    try:
        os.replace(staging, target)
    except OSError:  # another process filled the cache first
        shutil.rmtree(staging, ignore_errors=True)
        if not _is_metal_cpp(target):
            raise


def metal_cpp_dir():
    """A directory containing Foundation/, Metal/ and QuartzCore/."""
    override = os.environ.get("METAL_CPP_DIR")
    if override:
        if not _is_metal_cpp(override):
            raise RuntimeError(f"METAL_CPP_DIR={override} does not contain Metal/Metal.hpp")
        return override
    target = cache_dir()
    if not _is_metal_cpp(target):
        with tempfile.TemporaryDirectory() as tmp:
            _extract(_download_sdist(tmp), target)
    return target


if __name__ == "__main__":  # CI: export METAL_CPP_DIR="$(python fetch_metal_cpp.py)"
    print(metal_cpp_dir())
