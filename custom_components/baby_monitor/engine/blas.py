"""One BLAS thread for the engine's small matrix products.

OpenBLAS spreads even small products over every core, and its idle threads then spin: on a
two-core machine that costs several times the CPU for the same answer. threadpoolctl (pure
Python) limits it around our calls only; without it the calls run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from functools import cache
from typing import Any

__all__ = ["single_threaded"]


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with BLAS limited to one thread (about 10 µs of overhead)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
