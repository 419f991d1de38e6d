"""convert and save_gguf leave nothing behind when they fail or are
interrupted (SIGINT, SIGTERM), and convert does not copy what IN's symlinks
point at outside IN."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import save_file

import pyonebit
from pyonebit.io import convert
from pyonebit.__main__ import main


def float_checkpoint(directory, n_tensors=3):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    save_file({f"l{i}.weight": rng.standard_normal((8, 256)).astype(np.float32) for i in range(n_tensors)},
              str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (directory / "tokenizer.json").write_text("{}")
    return directory


def test_failed_run_removes_the_parents_it_created(tmp_path):
    src = float_checkpoint(tmp_path / "in")
    bad = np.zeros((4, 128), np.float32)
    bad[0, 0] = np.nan
    save_file({"a.weight": bad}, str(src / "model.safetensors"))
    with pytest.raises(ValueError, match="NaN"):
        convert.convert_checkpoint(src, tmp_path / "new" / "deeper" / "out")
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_output_appears_complete_or_not_at_all(tmp_path, monkeypatch):
    src = float_checkpoint(tmp_path / "in")
    (tmp_path / "out").mkdir()  # an empty directory may be the destination
    seen = []

    def spy(writer, info, *args):
        seen.append(sorted(os.listdir(tmp_path / "out")))  # nothing appears in OUT while converting
        return real(writer, info, *args)

    real = convert._convert_tensor
    monkeypatch.setattr(convert, "_convert_tensor", spy)
    convert.convert_checkpoint(src, tmp_path / "out")
    assert seen == [[]] * 3
    assert sorted(os.listdir(tmp_path / "out")) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]  # no staging directory left


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_leaves_nothing(tmp_path, signum):
    # The process signals itself after the first tensor; it must end as the
    # signal ends it, with neither OUT, a staging directory nor the parents
    # it created left behind.
    src = float_checkpoint(tmp_path / "in")
    # Python raises KeyboardInterrupt only where SIGINT was not ignored at
    # startup (a shell's background job starts with it ignored): restore it.
    code = textwrap.dedent(f"""
        import os, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pyonebit.io import convert
        real = convert._convert_tensor
        def once(*args):
            n = real(*args)
            os.kill(os.getpid(), {int(signum)})
            return n
        convert._convert_tensor = once
        from pyonebit.__main__ import main
        sys.exit(main(["convert", {str(src)!r}, {str(tmp_path / "a" / "b" / "out")!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if signum == signal.SIGTERM:
        assert out.returncode == -signal.SIGTERM, out
    else:
        assert out.returncode != 0 and "KeyboardInterrupt" in out.stderr, out
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_symlinks_to_files_outside_in_are_not_copied(tmp_path, capsys):
    src = float_checkpoint(tmp_path / "in")
    (tmp_path / "private").write_text("secret")
    os.symlink(tmp_path / "private", src / "notes.txt")
    os.symlink("tokenizer.json", src / "tokenizer_copy.json")  # inside IN: an ordinary file of IN
    assert main(["convert", str(src), str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert sorted(os.listdir(tmp_path / "out")) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_copy.json"]
    assert not os.path.islink(tmp_path / "out" / "tokenizer_copy.json")
    assert err == f"not copied (symlinks to files outside {src}): notes.txt\n"
    s = convert.convert_checkpoint(src, tmp_path / "out2")
    assert s.skipped == ["notes.txt"] and "notes.txt" not in s.files


def test_interrupted_save_gguf_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.gguf"
    layer = pyonebit.QuantizedLinear.from_float(np.ones((2, 128), np.float16), bits=1, group_size=128,
                                                mode="symmetric")
    pyonebit.save_gguf(path, {"w": layer})
    before = path.read_bytes()
    code = textwrap.dedent(f"""
        import os, signal
        import numpy as np, pyonebit
        from pyonebit.io import gguf_file
        real = gguf_file.GGUFWriter.write_tensors_to_file
        def interrupted(self, *a, **k):
            self.fout[0].write(b"partial")
            os.kill(os.getpid(), signal.SIGTERM)
        gguf_file.GGUFWriter.write_tensors_to_file = interrupted
        layer = pyonebit.QuantizedLinear.from_float(np.zeros((4, 128), np.float16), bits=1, group_size=128,
                                                    mode="symmetric")
        pyonebit.save_gguf({str(path)!r}, {{"other": layer}})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGTERM, out
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.gguf"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_as_input_is_refused(tmp_path, capsys):
    os.mkfifo(tmp_path / "m.safetensors")
    assert main(["convert", str(tmp_path / "m.safetensors"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: [convert] {tmp_path / 'm.safetensors'} is not a regular file or a directory\n")
