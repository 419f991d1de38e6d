"""Native programs built against the C++ core outside the extension
(tests/native/*.cpp), for test_native.py, test_sanitizers.py,
test_avx512_simde.py, test_neon.py, test_shader_mutation.py and the ODR check
in test_cpu_kernels.py.

Every (compiler, flags, source) is compiled once per test session, whichever
test asks first, as many at a time as there are cores, and the object is
shared by every program built with those flags; pytest-xdist workers share
the same directory (a lock per object). docs/testing.md lists the flag sets
and what each builds."""
import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "tests", "native")
INCLUDE = os.path.join(ROOT, "include")
SRC = os.path.join(ROOT, "src")

sys.path.insert(0, os.path.join(ROOT, "build_tools"))
import sources  # noqa: E402  (the one list of sources setup.py compiles)

from error_bound import cpp_macros  # noqa: E402

CXX = os.environ.get("CXX", "g++")
AARCH64_CXX = os.environ.get("ONEBIT_AARCH64_CXX", "aarch64-linux-gnu-g++")


def core_sources():
    """The library's C++ core, as setup.py compiles it (build_tools/sources.py)."""
    return [os.path.join(ROOT, p) for p in sources.core_sources(ROOT)]


def emulator_sources():
    """The emulated Metal backend with every kernel (build_tools/sources.py)."""
    return [os.path.join(ROOT, p) for p in sources.emulator_sources(ROOT)]


def native(name):
    return os.path.join(NATIVE, name)


def has_simde(cxx):
    """Whether cxx finds SIMDe's AVX-512 header (Debian: libsimde-dev), on
    which the AVX-512 kernels are checked where the CPU lacks AVX-512."""
    probe = subprocess.run([cxx, "-x", "c++", "-E", "-", "-o", os.devnull],
                           input="#include <simde/x86/avx512.h>\n", capture_output=True, text=True)
    return probe.returncode == 0


# ---------------------------------------------------------------- flag sets
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
# Every sanitized program (the kernel sweeps, the standalone program of
# test_native.py, the SIMDe AVX-512 run, the emulated Metal kernels and the
# shader mutations): the core and the emulator under ASan and UBSan, C++20
# for the emulator's tensor ops, ucontext fibers (AddressSanitizer follows
# swapcontext, not the emulator's own switch), the error bound's constants
# from tests/error_bound.py; -g1: line tables only, which is all a sanitizer
# report's stack needs (file and line), in 3/4 of -g's compile time.
# sanitized_jobs() varies it per source.
SANITIZED = ["-std=c++20", "-O1", "-g1", "-ffp-contract=off", *SANITIZE, "-DONEBIT_EMU_UCONTEXT",
             "-Wno-attributes", "-Wno-volatile", "-I", INCLUDE, "-I", SRC,
             "-I", os.path.join(SRC, "metal", "emulator", "include"), *cpp_macros()]
# Builds avx512.cpp on SIMDe (tests/native/avx512_on_simde.h); -Wno-psabi:
# SIMDe passes 64-byte vectors by value without AVX-512.
AVX512_ON_SIMDE = ["-DONEBIT_AVX512_ON_SIMDE", "-I", NATIVE, "-Wno-psabi"]
# The NEON kernels, cross-compiled for aarch64 and run under qemu (static).
AARCH64 = ["-std=c++17", "-O2", "-ffp-contract=off", "-I", INCLUDE, *cpp_macros()]
# The ODR check: -O0 inlines nothing, so every shared inline function an ISA
# file uses is emitted as a weak symbol there and can be inspected.
ODR_CHECK = ["-std=c++17", "-O0", "-ffp-contract=off", "-fPIC", "-w", "-I", INCLUDE]


def sanitized_jobs(sources, emulator=False, avx512_on_simde=False):
    """[(source, SANITIZED flags for it)]: Metal kernels (*.metal and
    the emulated_kernels_*.cpp that include them) and the ISA kernel files
    (avx2.cpp, avx512.cpp; not on SIMDe, whose emulation needs the optimizer)
    at -O0, which compiles them in a fraction of -O1's time with the sanitizers
    while their cases run as fast either way (the sweeps' time is the
    reference and the checks, not the kernels); backend.cpp registering the emulated
    backend in emulator programs (the one source the macro changes);
    avx512.cpp on SIMDe if avx512_on_simde (test_avx512_simde.py, on CPUs
    without AVX-512)."""
    jobs = []
    for src in sources:
        flags, name = list(SANITIZED), os.path.basename(src)
        metal = src.endswith(".metal") or name.startswith("emulated_kernels_")
        if metal or name == "avx2.cpp" or (name == "avx512.cpp" and not avx512_on_simde):
            flags = ["-O0" if f == "-O1" else f for f in flags]
        if metal:
            flags = ["-x", "c++"] + flags
        if emulator and name == "backend.cpp":
            flags.append("-DONEBIT_WITH_METAL_EMULATOR")
        if avx512_on_simde and name == "avx512.cpp":
            flags += AVX512_ON_SIMDE
        jobs.append((src, flags))
    return jobs


def is_slow(src):
    """The sources that take longest to compile: the ISA kernels and the Metal kernels."""
    name = os.path.basename(src)
    return name in ("avx512.cpp", "avx2.cpp", "neon.cpp") or name.startswith("emulated_kernels_") \
        or name.endswith(".metal")


class NativeBuilds:
    """Objects and programs in one directory, each built once: a build
    asked for again (by any test, in any pytest-xdist worker) is reused."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)

    def _once(self, kind, key, name, make):
        """The output for key, made by make(path) the first time it is asked for."""
        digest = hashlib.sha1(json.dumps([kind, *key]).encode()).hexdigest()[:16]
        path = os.path.join(self.dir, f"{name}-{digest}")
        with open(path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(path):
                make(path + ".tmp")
                os.replace(path + ".tmp", path)
        return path

    @staticmethod
    def _run(cmd, timeout=1200):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr[-8000:]

    def objects(self, compiler, jobs):
        """[(source, flags)] -> their objects, compiled in parallel."""
        def one(job):
            src, flags = job
            return self._once("object", [compiler, list(flags), src], os.path.basename(src) + ".o",
                              lambda out: self._run([compiler, *flags, "-c", src, "-o", out]))

        # The kernels take longest: started first, not last with a core idle.
        order = sorted(range(len(jobs)), key=lambda i: not is_slow(jobs[i][0]))
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            built = dict(zip(order, pool.map(one, [jobs[i] for i in order])))
        return [built[i] for i in range(len(jobs))]

    def program(self, name, compiler, jobs, link_flags=()):
        """The program linked from [(source, flags)] with link_flags."""
        objs = self.objects(compiler, jobs)
        return self._once("program", [compiler, objs, list(link_flags)], name,
                          lambda out: self._run([compiler, *objs, "-o", out, *link_flags]))


def sanitized_program(builds, main, avx512_on_simde=False):
    """tests/native/<main> with the core, sanitized; avx512.cpp on SIMDe if
    avx512_on_simde (see sanitized_jobs; the other objects are shared)."""
    name = main.replace(".cpp", "") + ("_simde" if avx512_on_simde else "")
    jobs = sanitized_jobs([native(main), *core_sources()], avx512_on_simde=avx512_on_simde)
    return builds.program(name, CXX, jobs, [*SANITIZE, "-pthread"])


def shader_check_program(builds, kernels=None):
    """tests/native/shader_check.cpp with the core and the emulated Metal
    backend, sanitized: every kernel family (the emulated_kernels_*.cpp), or
    only the family instantiated by the kernel source `kernels` (a .metal file)."""
    sources = [native("shader_check.cpp"), *core_sources(), *emulator_sources()]
    if kernels is not None:
        sources = [s for s in sources if not os.path.basename(s).startswith("emulated_kernels_")] + [kernels]
    name = "shader_check" + ("_" + os.path.basename(kernels).replace(".metal", "") if kernels else "")
    return builds.program(name, CXX, sanitized_jobs(sources, emulator=True), [*SANITIZE, "-pthread"])


def run_under_sanitizers(cmd, timeout=900, env=None):
    """Runs a sanitized program (a report aborts it) and returns the
    CompletedProcess; fails on any sanitizer report."""
    env = dict(os.environ, **(env or {}), ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    # ASan's one caveat about swapcontext is a warning, not a report.
    reports = [line for line in r.stderr.splitlines() if "Sanitizer" in line and "swapcontext" not in line
               and "__asan_handle_no_return" not in line]
    assert not reports, r.stderr[-6000:]
    return r


def run_sanitized(cmd, timeout=900):
    """The stdout of a sanitized program that must exit 0 with no report."""
    r = run_under_sanitizers(cmd, timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return r.stdout


def require(tool, why):
    """The tool's path, or a skip naming what to install."""
    import pytest

    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed ({why})")
    return path
