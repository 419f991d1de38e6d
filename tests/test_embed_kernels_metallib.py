"""The offline metallib build of src/metal/host/embed_kernels.py, on any
machine: the ``xcrun`` command lines it would run (caught by replacing
subprocess.run and shutil.which), and the header that embeds the two
metallibs. Whether Apple's compiler accepts these flags only a Mac shows
(the macOS workflow builds the package with them)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src", "metal", "host"))
import embed_kernels  # noqa: E402

SOURCES = [("qmm.metal", "// qmm\n"), ("qmm_nax.metal", "// nax\n"), ("qmv.metal", "// qmv\n")]


class FakeXcrun:
    """Records every command; `metallib` writes the library named by -o
    (its bytes name the .air inputs). Commands containing `fail` fail."""

    def __init__(self, fail=None):
        self.commands, self.fail = [], fail

    def __call__(self, cmd, **kwargs):
        self.commands.append(cmd)
        if self.fail and self.fail in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "error: unknown -std value")
        if cmd[3] == "metal":
            assert os.path.isfile(cmd[cmd.index("-c") + 1])  # the source was written first
        if cmd[3] == "metallib":
            airs = [os.path.basename(a) for a in cmd[4:cmd.index("-o")]]
            with open(cmd[cmd.index("-o") + 1], "wb") as f:
                f.write(("LIB " + " ".join(airs)).encode())
        return subprocess.CompletedProcess(cmd, 0, "", "")


@pytest.fixture
def xcrun(monkeypatch):
    def install(fail=None):
        fake = FakeXcrun(fail)
        monkeypatch.setattr(embed_kernels.shutil, "which", lambda name: "/usr/bin/" + name)
        monkeypatch.setattr(embed_kernels.subprocess, "run", fake)
        return fake
    return install


def compiles(commands):
    """{source file name: its `metal` command}."""
    return {os.path.basename(c[c.index("-c") + 1]): c for c in commands if c[3] == "metal"}


def test_two_metallibs_with_language_and_deployment_target(xcrun):
    fake = xcrun()
    libs = embed_kernels.build_metallib(SOURCES)
    assert libs == embed_kernels.Metallibs(b"LIB qmm.metal.air qmv.metal.air", b"LIB qmm_nax.metal.air")
    by_source = compiles(fake.commands)
    assert set(by_source) == {"qmm.metal", "qmv.metal", "qmm_nax.metal"}
    for name in ("qmm.metal", "qmv.metal"):
        cmd = by_source[name]
        assert cmd[:4] == ["xcrun", "-sdk", "macosx", "metal"]
        assert {"-fno-fast-math", "-std=metal3.1", "-mmacosx-version-min=14.0"} <= set(cmd)
    nax = by_source["qmm_nax.metal"]
    assert {"-fno-fast-math", "-std=metal4.0", "-mmacosx-version-min=26.0"} <= set(nax)
    assert not any("metal3" in a or "=14.0" in a for a in nax)
    assert [c[3] for c in fake.commands].count("metallib") == 2


def test_an_sdk_without_metal_4_still_gives_the_main_metallib(xcrun):
    xcrun(fail="-std=metal4.0")
    libs = embed_kernels.build_metallib(SOURCES)
    assert libs.main == b"LIB qmm.metal.air qmv.metal.air" and libs.metal4 is None


def test_no_metallib_when_nothing_builds_or_no_xcrun(xcrun, monkeypatch):
    xcrun(fail="metal")  # every command names the metal compiler or metallib
    assert embed_kernels.build_metallib(SOURCES) is None
    monkeypatch.setattr(embed_kernels.shutil, "which", lambda name: None)
    assert embed_kernels.build_metallib(SOURCES) is None


def test_header_embeds_both_metallibs_and_marks_metal4_sources(tmp_path):
    out = tmp_path / "onebit_metal_sources.h"
    embed_kernels.write_header(str(out), SOURCES, embed_kernels.Metallibs(b"AB", b"CDE"))
    text = out.read_text()
    assert "kMetallibSize = 2;" in text and "kMetal4MetallibSize = 3;" in text
    assert 'kMetallibLanguage = "3.1";' in text and 'kMetal4MetallibLanguage = "4.0";' in text
    assert text.count(", true},") == 1 and "// nax\n\n)onebit_msl\", true}," in text
    # The older form, main metallib bytes only, still works (setup.py passes
    # build_metallib's result straight through).
    embed_kernels.write_header(str(out), SOURCES, b"AB")
    text = out.read_text()
    assert "kMetallibSize = 2;" in text and "kMetal4Metallib = nullptr;" in text
