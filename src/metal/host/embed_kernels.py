"""Embeds the Metal kernels in a generated C++ header for library.cpp.

Run by setup.py on macOS (and by the Linux compile check). Each
``src/metal/kernels/*.metal`` file becomes one self-contained source string:
its ``#include "..."`` lines are replaced by the included files' text, so the
run-time compile (``newLibraryWithSource``) needs no file system and works on
a Mac with only the Command Line Tools. When ``xcrun metal`` works, the same
texts are also compiled into metallibs embedded next to them: the main one at
Metal 3.1 for macOS 14+, and the Metal 4 (NAX) sources at 4.0 for macOS 26+.
"""
import os
import re
import shutil
import subprocess
import tempfile
from typing import NamedTuple, Optional

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\b")
CONDITIONAL_END = re.compile(r"^\s*#\s*(endif|else|elif)\b")
DELIMITER = "onebit_msl"  # raw string literal delimiter; must not occur in a source


def _resolve(name, including_dir, roots):
    for base in (including_dir, *roots):
        path = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(path):
            return path
    return None


def inline_includes(path, roots, base, stack=()):
    """The text of `path` with its quoted includes inlined, recursively.

    Each inlined file sits in a guard macro of its own (standing in for its
    ``#pragma once``, which only works across real files), so conditional
    includes keep their preprocessor meaning. ``#line`` markers make compile
    errors name the original file and line. `<...>` includes are kept: the
    Metal compiler provides them (metal_stdlib and friends). So is a quoted
    include found nowhere (with a warning): it may sit in a branch the Metal
    compiler never takes (an emulator-only header, say); if it is reached, the
    run-time compile reports it with the file and line.
    """
    rel = os.path.relpath(path, base).replace(os.sep, "/")
    if path in stack:  # an include cycle: the outer guard already covers it
        return ""
    out = [f'#line 1 "{rel}"']
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f.read().splitlines(), start=1):
            match = INCLUDE.match(line)
            child = match and _resolve(match.group(1), os.path.dirname(path), roots)
            if match and not child:
                print(f"pyonebit: {rel}:{number}: {match.group(1)} not found; include kept as is")
            if child:
                guard = "ONEBIT_EMBEDDED_" + re.sub(r"\W", "_", os.path.relpath(child, base)).upper()
                out += [f"#ifndef {guard}", f"#define {guard}",
                        inline_includes(child, roots, base, stack + (path,)),
                        "#endif", f'#line {number + 1} "{rel}"']
            elif PRAGMA_ONCE.match(line):
                out.append("")  # keeps line numbers; the guard above replaces it
            elif CONDITIONAL_END.match(line):
                # A #line inside a skipped branch is ignored; resynchronise
                # where the branch ends.
                out += [line, f'#line {number + 1} "{rel}"']
            else:
                out.append(line)
    return "\n".join(out)


def kernel_sources(kernels_dir, roots, base):
    """[(file name, self-contained text)] for every .metal file, sorted.
    Quoted includes resolve against the including file's directory, then
    `roots`; `base` (the project root) is what #line paths are relative to."""
    names = sorted(n for n in os.listdir(kernels_dir) if n.endswith(".metal")) \
        if os.path.isdir(kernels_dir) else []
    return [(n, inline_includes(os.path.join(kernels_dir, n), roots, base)) for n in names]


# The sources that need Metal 4 (tensor ops, __HAVE_TENSOR__): compiled into
# a metallib of their own and, at run time, only on macOS 26 (library.cpp).
METAL4_SOURCES = frozenset({"qmm_nax.metal"})

# (-std, -mmacosx-version-min) of each prebuilt metallib. Main: Metal 3.1 is
# the first with bfloat (__HAVE_BFLOAT__), so every dtype is in it; it loads
# from macOS 14 on, and macOS 13 compiles the sources at run time at Metal 3.0
# (no bfloat16: the planner says so). NAX: Metal 4.0, macOS 26. The language
# strings are embedded too, for `python -m pyonebit info`.
MAIN_TARGET = ("metal3.1", "14.0")
METAL4_TARGET = ("metal4.0", "26.0")


class Metallibs(NamedTuple):
    """The prebuilt libraries embedded by write_header (None: not built)."""
    main: Optional[bytes] = None   # every source but METAL4_SOURCES, at MAIN_TARGET
    metal4: Optional[bytes] = None  # METAL4_SOURCES, at METAL4_TARGET


def metallib_commands(sources, tmp, target, name):
    """The ``xcrun`` command lines that build `sources` (already written to
    `tmp`) into ``tmp/name``: one ``metal -c`` per source, one ``metallib``."""
    std, macos = target
    # -fno-fast-math: the same math as the run-time compile (library.cpp).
    # -mmacosx-version-min: without it the metallib takes the build host's
    # SDK version and older macOS refuses to load it.
    flags = ["-fno-fast-math", f"-std={std}", f"-mmacosx-version-min={macos}"]
    airs, cmds = [], []
    for source_name, _ in sources:
        src = os.path.join(tmp, source_name)
        airs.append(src + ".air")
        cmds.append(["xcrun", "-sdk", "macosx", "metal", *flags, "-c", src, "-o", airs[-1]])
    cmds.append(["xcrun", "-sdk", "macosx", "metallib", *airs, "-o", os.path.join(tmp, name)])
    return cmds


def _build_one(sources, tmp, target, name):
    for source_name, text in sources:
        with open(os.path.join(tmp, source_name), "w", encoding="utf-8") as f:
            f.write(text)
    for cmd in metallib_commands(sources, tmp, target, name):
        if not _run(cmd):
            return None
    with open(os.path.join(tmp, name), "rb") as f:
        return f.read()


def build_metallib(sources):
    """The metallibs of `sources` built with ``xcrun metal`` (a Metallibs), or
    None when that toolchain is missing (Command Line Tools only) or builds
    neither. The Metal 4 sources are a library of their own, so an SDK
    without Metal 4 still gives the main one; whatever is missing compiles
    at run time."""
    if shutil.which("xcrun") is None or not sources:
        return None
    main = [s for s in sources if s[0] not in METAL4_SOURCES]
    metal4 = [s for s in sources if s[0] in METAL4_SOURCES]
    with tempfile.TemporaryDirectory() as tmp:
        libs = Metallibs(main and _build_one(main, tmp, MAIN_TARGET, "onebit.metallib"),
                         metal4 and _build_one(metal4, tmp, METAL4_TARGET, "onebit_metal4.metallib"))
    libs = Metallibs(libs.main or None, libs.metal4 or None)
    return libs if (libs.main or libs.metal4) else None


def _run(cmd):
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"pyonebit: {cmd[3]} unavailable ({e}); kernels compile at run time")
        return False
    if result.returncode != 0:
        print(f"pyonebit: {' '.join(cmd)} failed; those kernels compile at run time\n{result.stderr}")
    return result.returncode == 0


def _bytes_literal(data):
    # Octal escapes are always three digits, so no escape swallows the next
    # character (as a hex escape followed by a hex digit would).
    lines = []
    for i in range(0, len(data), 64):
        lines.append('"' + "".join(f"\\{b:03o}" for b in data[i:i + 64]) + '"')
    return "\n    ".join(lines)


def _language(target):
    return target[0][len("metal"):]  # "metal3.1" -> "3.1"


def write_header(out_path, sources, metallib=None):
    """Writes the header library.cpp includes as "onebit_metal_sources.h".
    `metallib`: a Metallibs, bytes (the main metallib only), or None."""
    if not isinstance(metallib, Metallibs):
        metallib = Metallibs(metallib or None, None)
    entries = []
    for name, text in sources:
        if f"){DELIMITER}\"" in text:
            raise ValueError(f"{name} contains the raw string delimiter {DELIMITER}")
        metal4 = "true" if name in METAL4_SOURCES else "false"
        entries.append(f'    Source{{"{name}", R"{DELIMITER}(\n{text}\n){DELIMITER}", {metal4}}},')

    def lib(data):
        return f"\n    {_bytes_literal(data)}" if data else "nullptr"

    header = "\n".join([
        "// Generated by src/metal/host/embed_kernels.py (from setup.py). Do not edit.",
        "#pragma once",
        "#include <array>",
        "#include <cstddef>",
        "namespace onebit {",
        "namespace metal {",
        "namespace embedded {",
        "struct Source {",
        "  const char* name;",
        "  const char* text;  // one translation unit, includes inlined",
        "  bool metal4;       // needs Metal 4 (macOS 26): built into kMetal4Metallib",
        "};",
        f"inline constexpr std::array<Source, {len(sources)}> kSources{{{{",
        *entries,
        "}};",
        "// Every source but the Metal 4 ones, and the Metal 4 ones; nullptr when not built.",
        f"inline constexpr const char* kMetallib = {lib(metallib.main)};",
        f"inline constexpr std::size_t kMetallibSize = {len(metallib.main) if metallib.main else 0};",
        f'inline constexpr const char* kMetallibLanguage = "{_language(MAIN_TARGET)}";',
        f"inline constexpr const char* kMetal4Metallib = {lib(metallib.metal4)};",
        f"inline constexpr std::size_t kMetal4MetallibSize = {len(metallib.metal4) if metallib.metal4 else 0};",
        f'inline constexpr const char* kMetal4MetallibLanguage = "{_language(METAL4_TARGET)}";',
        "}  // namespace embedded",
        "}  // namespace metal",
        "}  // namespace onebit",
        "",
    ])
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(header)
