"""The kernel embedding setup.py uses on macOS (src/metal/host/embed_kernels.py):
inlined sources preprocess exactly like the originals, and the generated
header gives back every source text and metallib byte unchanged."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src", "metal", "host"))
import embed_kernels  # noqa: E402

FILES = {
    # A header included twice (directly and through another header), a
    # conditional include, a path resolved against an include root.
    "src/common/layout.h": "#pragma once\nconstexpr int kLayout = 7;\n",
    "src/metal/kernels/util.h": '#pragma once\n#include "common/layout.h"\nint util() { return kLayout; }\n',
    "src/metal/kernels/extra.h": "int extra() { return 3; }\n",
    "src/metal/kernels/qmv.metal": ('#include "util.h"\n#include "../../common/layout.h"\n'
                                    '#if WANT_EXTRA\n#include "extra.h"\n#endif\n'
                                    "int qmv() { return util() + kLayout; }\n"
                                    "int line = __LINE__;\n"),  # #line markers keep it right
    "src/metal/kernels/qmm.metal": '#include "util.h"\nint qmm() { return util(); }\n',
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def sources(tree):
    return embed_kernels.kernel_sources(str(tree / "src/metal/kernels"), [str(tree / "src")], str(tree))


def preprocess(cxx, path, *flags):
    cmd = [cxx, "-E", "-P", "-x", "c++", *flags, str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def compiler():
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    return cxx


def test_one_self_contained_source_per_metal_file(tree):
    got = dict(sources(tree))
    assert sorted(got) == ["qmm.metal", "qmv.metal"]
    text = got["qmv.metal"]
    assert '#include "' not in text and "#pragma once" not in text
    assert '#line 1 "src/metal/kernels/qmv.metal"' in text
    assert '#line 2 "src/metal/kernels/qmv.metal"' in text  # resumes after the include


@pytest.mark.parametrize("want_extra", ["0", "1"])
def test_inlined_source_preprocesses_like_the_original(tree, want_extra):
    cxx = compiler()
    inlined = tree / "inlined.metal"
    inlined.write_text(dict(sources(tree))["qmv.metal"])
    flag = f"-DWANT_EXTRA={want_extra}"
    original = preprocess(cxx, tree / "src/metal/kernels/qmv.metal", "-I", str(tree / "src"), flag)
    assert preprocess(cxx, inlined, flag) == original
    assert ("int extra()" in "\n".join(original)) == (want_extra == "1")


def test_include_found_nowhere_is_kept_for_the_metal_compiler(tree, capsys):
    (tree / "src/metal/kernels/other.metal").write_text('#ifndef __METAL_VERSION__\n#include "nowhere.h"\n#endif\n')
    text = dict(sources(tree))["other.metal"]
    assert '#include "nowhere.h"' in text
    assert "src/metal/kernels/other.metal:2: nowhere.h not found" in capsys.readouterr().out


def test_header_round_trips_sources_and_metallib(tree, tmp_path):
    cxx = compiler()
    srcs = sources(tree) + [("tricky.metal", 'const char* s = "quote \\" )\\n";\n\\\n// ??=\n')]
    metallib = bytes(range(256)) * 3 + b"9\0" + b"7"
    embed_kernels.write_header(str(tmp_path / "gen" / "onebit_metal_sources.h"), srcs, metallib)
    program = tmp_path / "dump.cpp"
    program.write_text(
        '#include <cstdio>\n#include "onebit_metal_sources.h"\n'
        "using namespace onebit::metal::embedded;\n"
        "int main(int, char** argv) {\n"
        "  for (const Source& s : kSources) {\n"
        '    std::FILE* f = std::fopen((std::string(argv[1]) + "/" + s.name).c_str(), "wb");\n'
        "    std::fputs(s.text, f); std::fclose(f);\n"
        "  }\n"
        '  std::FILE* f = std::fopen((std::string(argv[1]) + "/lib").c_str(), "wb");\n'
        "  std::fwrite(kMetallib, 1, kMetallibSize, f); std::fclose(f);\n"
        "}\n")
    exe = tmp_path / "dump"
    build = subprocess.run([cxx, "-std=c++17", "-include", "string", "-I", str(tmp_path / "gen"),
                            str(program), "-o", str(exe)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([str(exe), str(out)], check=True, timeout=60)
    for name, text in srcs:
        # The literal starts and ends with a newline so #line stays first on its line.
        assert (out / name).read_text() == "\n" + text + "\n"
    assert (out / "lib").read_bytes() == metallib


def test_no_sources_and_no_metallib(tmp_path):
    assert embed_kernels.kernel_sources(str(tmp_path / "absent"), [], str(tmp_path)) == []
    assert embed_kernels.build_metallib([]) is None
