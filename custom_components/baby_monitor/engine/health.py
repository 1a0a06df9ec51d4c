"""Whether scoring keeps up: windows that fail, and windows left waiting.

A monitor whose inference broke must not look as if it were listening. The runtime reports
each window's outcome here and asks two questions: has scoring failed too often in a row, and
has a window waited for longer than a few hops while nothing was scored (a hung model)?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["FAILURES_BEFORE_DEAF", "STALL_HOPS", "ScoringHealth"]

FAILURES_BEFORE_DEAF: Final = 10
"""Windows failing in a row after which the room counts as deaf (one bad window is dropped)."""
STALL_HOPS: Final = 3
"""Hops without a scored window, while windows wait, after which scoring counts as stalled."""


@dataclass(slots=True)
class ScoringHealth:
    """Counts scoring failures and the time of the last progress (seconds on any clock)."""

    hop_s: float
    errors: int = 0
    """Windows that could not be scored since the runtime started."""
    failures_in_row: int = 0
    last_error: str | None = None
    last_progress: float = 0.0
    """When a window was last scored (or failed quickly, or the stream restarted)."""

    @property
    def failing(self) -> bool:
        """Whether scoring has failed FAILURES_BEFORE_DEAF times in a row."""
        return self.failures_in_row >= FAILURES_BEFORE_DEAF

    def succeeded(self, now: float) -> bool:
        """Record a scored window; returns whether it ends a failing streak."""
        was_failing = self.failing
        self.failures_in_row = 0
        self.last_progress = now
        return was_failing

    def failed(self, error: str, now: float) -> bool:
        """Record a window that raised; returns whether this failure makes scoring failing."""
        self.errors += 1
        self.failures_in_row += 1
        self.last_error = error
        self.last_progress = now
        return self.failures_in_row == FAILURES_BEFORE_DEAF

    def restart(self, now: float) -> None:
        """Start the clock afresh (a new stream: nothing waits, so nothing is late)."""
        self.last_progress = now

    def stalled(self, now: float, *, waiting: bool) -> bool:
        """Whether windows wait while nothing was scored for STALL_HOPS hops."""
        return waiting and now - self.last_progress > STALL_HOPS * self.hop_s
