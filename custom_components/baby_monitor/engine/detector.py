"""Turns per-window probabilities into sound episodes: threshold, confirm time and hold time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONFIRMED_SOUNDS",
    "DEFAULT_CONFIRM_S",
    "DEFAULT_HOLD_S",
    "DetectorConfig",
    "Episode",
    "SoundDetector",
    "SoundEvent",
    "confirm_for",
    "detect_episodes",
]


DEFAULT_CONFIRM_S = 3.0
"""Seconds crying must stay above threshold before it counts (the integration's default).

A 7-s window keeps a real cry above threshold for many hops in a row, while most household
sounds that fool one window do not fool four: the soak's sweep (bench/REPORT.md) shows false
alarms cut by an order of magnitude for a few lost short clips."""
CONFIRMED_SOUNDS = frozenset({"cry"})
"""Sounds that wait for the confirm time. A laugh is over in seconds and a wrongly kept one costs
only a clip, so laughter counts at its first window."""
DEFAULT_HOLD_S = 3.0
"""Seconds below threshold before a sound is over: a breath between sobs is not calm."""


def confirm_for(label: str, confirm_s: float = DEFAULT_CONFIRM_S) -> float:
    """Return the confirm time that applies to `label`: `confirm_s`, or none if unconfirmed."""
    return confirm_s if label in CONFIRMED_SOUNDS else 0.0


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """When a sound counts: probability >= threshold for `confirm_s`; over after `hold_s` below."""

    threshold: float
    confirm_s: float = 0.0
    hold_s: float = DEFAULT_HOLD_S

    def __post_init__(self) -> None:
        """Reject settings that would make the detector never (or always) fire."""
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.confirm_s < 0 or self.hold_s < 0:
            raise ValueError("confirm and hold times must not be negative")


@dataclass(frozen=True, slots=True)
class SoundEvent:
    """A state change of one sound: it started (confirmed) or stopped (hold time passed)."""

    label: str
    kind: Literal["started", "stopped"]
    t: float  # stream time (s) at which the change was decided
    start: float  # end of the first window above threshold
    end: float | None  # end of the last window above threshold (stopped events only)
    confidence: float  # highest probability so far in the episode

    @property
    def duration(self) -> float:
        """Seconds from start to end (to `t` while still going on)."""
        return (self.end if self.end is not None else self.t) - self.start


@dataclass(slots=True)
class SoundDetector:
    """State machine for one label, fed one window at a time (a stream's clock)."""

    label: str
    config: DetectorConfig
    active: bool = False
    _first_above: float | None = field(default=None, repr=False)
    _last_above: float = field(default=0.0, repr=False)
    _peak: float = field(default=0.0, repr=False)

    def reset(self, t: float | None = None) -> SoundEvent | None:
        """Forget the episode (source lost or paused); returns its stop event, decided at `t`."""
        event = None
        if self.active and self._first_above is not None:
            decided = self._last_above if t is None else t
            event = SoundEvent(
                self.label,
                "stopped",
                decided,
                self._first_above,
                self._last_above,
                self._peak,
            )
        self.active, self._first_above, self._peak = False, None, 0.0
        return event

    def update(self, t: float, probability: float) -> SoundEvent | None:
        """Advance to window end `t`; returns the event this window causes, if any."""
        if probability >= self.config.threshold:
            if self._first_above is None:
                self._first_above, self._peak = t, 0.0
            self._last_above = t
            self._peak = max(self._peak, probability)
            if not self.active and t - self._first_above >= self.config.confirm_s:
                self.active = True
                return SoundEvent(
                    self.label, "started", t, self._first_above, None, self._peak
                )
            return None
        if not self.active:
            self._first_above = None
            return None
        if t - self._last_above >= self.config.hold_s:
            return self.reset(t)
        return None


@dataclass(frozen=True, slots=True)
class Episode:
    """One detected sound in a recording."""

    label: str
    start: float
    end: float
    confidence: float


def detect_episodes(
    times: Sequence[float] | npt.NDArray[np.float32],
    probabilities: npt.NDArray[np.float32],
    labels: Sequence[str],
    configs: Mapping[str, DetectorConfig],
) -> list[Episode]:
    """Episodes in a scanned recording, in order of start; one still on at the end is closed there."""
    episodes: list[Episode] = []
    for column, label in enumerate(labels):
        if label not in configs:
            continue
        detector = SoundDetector(label, configs[label])
        events: Iterable[SoundEvent | None] = (
            detector.update(float(t), float(p))
            for t, p in zip(times, probabilities[:, column], strict=True)
        )
        episodes.extend(
            Episode(label, e.start, e.end, e.confidence)
            for e in events
            if e is not None and e.kind == "stopped" and e.end is not None
        )
        final = detector.reset()
        if final is not None and final.end is not None:
            episodes.append(Episode(label, final.start, final.end, final.confidence))
    return sorted(episodes, key=lambda e: (e.start, e.label))
