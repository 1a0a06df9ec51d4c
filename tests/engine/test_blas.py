"""The BLAS thread limit: set once per process, whichever thread asks first."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from baby_monitor_engine import blas


class SlowController:
    """A ThreadpoolController whose limit() takes a while, counting the calls."""

    def __init__(self) -> None:
        """Count nothing yet."""
        self.limits: list[dict[str, Any]] = []

    def limit(self, **kwargs: Any) -> object:
        """Record the limit after a pause, in which another thread could also come in."""
        time.sleep(0.05)
        self.limits.append(kwargs)
        return object()


@pytest.fixture
def controller(monkeypatch: pytest.MonkeyPatch) -> SlowController:
    """Give blas a fresh process state with a slow controller."""
    fake = SlowController()
    monkeypatch.setattr(blas, "_controller", lambda: fake)
    monkeypatch.setattr(blas, "_limited", False, raising=False)
    return fake


def test_two_threads_set_the_limit_once(controller: SlowController) -> None:
    """Two threads entering together set one limit, and neither restores it."""
    barrier = threading.Barrier(2)
    done: list[float] = []

    def work() -> None:
        barrier.wait()
        with blas.single_threaded():
            done.append(float((np.ones((4, 4)) @ np.ones((4, 4)))[0, 0]))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert done == [4.0, 4.0]
    assert controller.limits == [{"limits": 1, "user_api": "blas"}]

    with blas.single_threaded():
        pass
    assert len(controller.limits) == 1


def test_limit_threads_says_whether_a_limit_is_set(
    controller: SlowController, monkeypatch: pytest.MonkeyPatch
) -> None:
    """False without threadpoolctl, and the limit is still set once it can be; then True."""
    monkeypatch.setattr(blas, "_controller", lambda: None)
    assert blas.limit_threads() is False

    monkeypatch.setattr(blas, "_controller", lambda: controller)
    assert blas.limit_threads() is True
    assert blas.limit_threads() is True
    assert len(controller.limits) == 1
