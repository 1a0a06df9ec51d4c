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


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415
    except ImportError:
        return None
    return ThreadpoolController()


@cache
def _limit_once() -> bool:
    """Limit BLAS to one thread for the rest of the process; False without threadpoolctl."""
    controller = _controller()
    if controller is None:
        return False
    controller.limit(limits=1, user_api="blas")
    return True


def limit_threads() -> bool:
    """Limit BLAS to one thread, once per process, whichever thread comes first.

    Returns whether a limit is in place (False without threadpoolctl).
    """
    with _LOCK:
        return _limit_once()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with BLAS limited to one thread (the limit is set once, then kept)."""
    limit_threads()
    yield
