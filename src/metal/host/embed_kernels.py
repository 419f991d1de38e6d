"""Embeds the Metal kernels in a generated C++ header for library.cpp.

Run by setup.py on macOS (and by the Linux compile check). Each
``src/metal/kernels/*.metal`` file becomes one self-contained source string:
its ``#include "..."`` lines are replaced by the included files' text, so the
run-time compile (``newLibraryWithSource``) needs no file system and works on
a Mac with only the Command Line Tools. When ``xcrun metal`` works, the same
texts are also compiled into a metallib that is embedded next to them.
"""
import os
import re
import shutil
import subprocess
import tempfile

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


def build_metallib(sources):
    """The metallib of `sources` built with ``xcrun metal``, or None when that
    toolchain is missing (Command Line Tools only) or fails."""
    if shutil.which("xcrun") is None or not sources:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        airs = []
        for name, text in sources:
            src = os.path.join(tmp, name)
            with open(src, "w", encoding="utf-8") as f:
                f.write(text)
            airs.append(src + ".air")
            # -fno-fast-math: the same math as the run-time compile (library.cpp).
            cmd = ["xcrun", "-sdk", "macosx", "metal", "-fno-fast-math", "-c", src, "-o", airs[-1]]
            if not _run(cmd):
                return None
        lib = os.path.join(tmp, "onebit.metallib")
        if not _run(["xcrun", "-sdk", "macosx", "metallib", *airs, "-o", lib]):
            return None
        with open(lib, "rb") as f:
            return f.read()


def _run(cmd):
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"pyonebit: {cmd[3]} unavailable ({e}); kernels compile at run time")
        return False
    if result.returncode != 0:
        print(f"pyonebit: {' '.join(cmd[:4])} failed; kernels compile at run time\n{result.stderr}")
    return result.returncode == 0


def _bytes_literal(data):
    # Octal escapes are always three digits, so no escape swallows the next
    # character (as a hex escape followed by a hex digit would).
    lines = []
    for i in range(0, len(data), 64):
        lines.append('"' + "".join(f"\\{b:03o}" for b in data[i:i + 64]) + '"')
    return "\n    ".join(lines)


def write_header(out_path, sources, metallib=None):
    """Writes the header library.cpp includes as "onebit_metal_sources.h"."""
    entries = []
    for name, text in sources:
        if f"){DELIMITER}\"" in text:
            raise ValueError(f"{name} contains the raw string delimiter {DELIMITER}")
        entries.append(f'    Source{{"{name}", R"{DELIMITER}(\n{text}\n){DELIMITER}"}},')
    lib = f"\n    {_bytes_literal(metallib)}" if metallib else "nullptr"
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
        "};",
        f"inline constexpr std::array<Source, {len(sources)}> kSources{{{{",
        *entries,
        "}};",
        f"inline constexpr const char* kMetallib = {lib};",
        f"inline constexpr std::size_t kMetallibSize = {len(metallib) if metallib else 0};",
        "}  // namespace embedded",
        "}  // namespace metal",
        "}  // namespace onebit",
        "",
    ])
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(header)
