"""One BLAS thread for the engine's small matrix products.

OpenBLAS spreads even small products over every core, and its idle threads then spin: on a
two-core machine that costs several times the CPU for the same answer. threadpoolctl (pure
Python) sets the limit once for the process, the first time the engine needs it; without it
the calls run unchanged.

The limit is process-wide (OpenBLAS has one thread count), so it is never set and restored
around each call: two threads doing that at once (several rooms, or the executor's threads)
would restore each other's limits and leave either many threads or a limit nobody set.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from functools import cache
import threading
from typing import Any

__all__ = ["limit_threads", "single_threaded"]

_LOCK = threading.Lock()
_limited = False
"""Whether this process's BLAS has been limited (it stays so)."""


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415
    except ImportError:
        return None
    return ThreadpoolController()


def limit_threads() -> bool:
    """Limit BLAS to one thread, once per process, whichever thread comes first.

    Returns whether the limit is in place (False without threadpoolctl).
    """
    global _limited  # noqa: PLW0603 - the process's BLAS is one global too
    with _LOCK:
        if not _limited and (controller := _controller()) is not None:
            controller.limit(limits=1, user_api="blas")
            _limited = True
        return _limited


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with BLAS limited to one thread (the limit is set once, then kept)."""
    limit_threads()
    yield
