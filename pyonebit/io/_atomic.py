"""Writing a user's file or directory so that it appears complete or not at
all: the output is written beside its destination and renamed onto it at
the end. A failure, SIGINT (KeyboardInterrupt) or SIGTERM removes what was
written, and the destination keeps what it held before."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator


class Terminated(BaseException):
    """SIGTERM arrived while writing (a BaseException, as KeyboardInterrupt is)."""


@contextlib.contextmanager
def sigterm_cleans_up() -> Iterator[None]:
    """SIGTERM's default action ends the process on the spot, before any
    cleanup. While the block runs it raises Terminated instead; once the
    block's cleanup has run, the signal is delivered again with its default
    action, so the process still ends as SIGTERM ends it. A handler the
    program set itself (or SIG_IGN) is left alone, and so is every thread but
    the main one (only it may set handlers)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def terminate(signum, frame):
        raise Terminated(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise  # only reached if the signal is blocked
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def replacing_file(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yields a temporary path beside ``path`` to write; when the block
    succeeds it replaces ``path`` in one rename, keeping the old file's
    permissions (a new one gets those open() would give)."""
    directory, name = os.path.split(os.path.abspath(path))
    with sigterm_cleans_up():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=directory)
        os.close(fd)
        try:
            yield tmp
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise


def _mode_for(path: str | os.PathLike[str]) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def staging_dir(dst: Path) -> Iterator[Path]:
    """Yields a new directory beside ``dst`` to write into, renamed to ``dst``
    (which must not exist, or be an empty directory) when the block succeeds.
    On failure the directory and the parents of ``dst`` this call created
    are removed."""
    with sigterm_cleans_up():
        made = _make_parents(dst.parent)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent))
            try:
                yield tmp
                os.replace(tmp, dst)  # POSIX rename replaces an empty directory too
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        except BaseException:
            for d in reversed(made):  # deepest first; each is empty again
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise


def _make_parents(directory: Path) -> list[Path]:
    """Creates ``directory`` and its missing parents; returns those created, outermost first."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    missing.reverse()
    for d in missing:
        d.mkdir()
    return missing
