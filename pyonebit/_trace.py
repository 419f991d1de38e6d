"""pyonebit.trace(): which kernels ran, with what geometry."""
from __future__ import annotations

import contextlib
from typing import Iterator

from . import cuda_backend
from ._core import _trace_start, _trace_stop


class Trace:
    """Dispatches recorded inside a ``with pyonebit.trace()`` block.

    ``dispatches`` is a list of dicts ``{"backend", "kernel", "grid",
    "threadgroup"}``: for Metal (real or emulated) the kernel name, threadgroups
    per grid and threads per threadgroup; for the CPU the kernel, the work
    split (N, M, batches) and the threads used. Calls from every Python thread
    are recorded. Available once the block exits."""

    def __init__(self) -> None:
        self.dispatches: list[dict] = []

    def kernels(self) -> list[str]:
        return [d["kernel"] for d in self.dispatches]

    def __repr__(self) -> str:
        return f"Trace({self.dispatches!r})"


@contextlib.contextmanager
def trace() -> Iterator[Trace]:
    record = Trace()
    token = _trace_start()
    cuda_token = cuda_backend.trace_start()
    try:
        yield record
    finally:
        # CUDA launches (recorded in Python) follow the core's dispatches.
        record.dispatches = _trace_stop(token) + cuda_backend.trace_stop(cuda_token)
