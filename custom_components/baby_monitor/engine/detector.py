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
    "OFFSET_FILL",
    "ONSET_FILL",
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
sounds that fool one window do not fool several in a row; bench/REPORT.md's soak sweep measures
what the wait costs and saves."""
CONFIRMED_SOUNDS = frozenset({"cry"})
"""Sounds that wait for the confirm time. A laugh is over in seconds and a wrongly kept one costs
only a clip, so laughter counts at its first window."""
DEFAULT_HOLD_S = 3.0
"""Seconds below threshold before a sound is over: a breath between sobs is not calm."""
ONSET_FILL = 0.28
"""A window crosses the threshold once a sound fills this share of its end (median; models/lags.py)."""
OFFSET_FILL = 0.28
"""A window stays above threshold while a sound fills this share of its start (median; models/lags.py)."""


def confirm_for(label: str, confirm_s: float = DEFAULT_CONFIRM_S) -> float:
    """Return the confirm time that applies to `label`: `confirm_s`, or none if unconfirmed."""
    return confirm_s if label in CONFIRMED_SOUNDS else 0.0


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """When a sound counts: probability >= threshold for `confirm_s`; over after `hold_s` below.

    `window_s` is the length of the model window whose end times `update` is fed: a window stays
    above threshold long after a sound has stopped, so the sound's own span is estimated from the
    windows' with ONSET_FILL and OFFSET_FILL. At 0 the times are taken as the sound's own.
    """

    threshold: float
    confirm_s: float = 0.0
    hold_s: float = DEFAULT_HOLD_S
    window_s: float = 0.0

    def __post_init__(self) -> None:
        """Reject settings that would make the detector never (or always) fire."""
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.confirm_s < 0 or self.hold_s < 0 or self.window_s < 0:
            raise ValueError("confirm, hold and window times must not be negative")

    def sound_start(self, first_above: float) -> float:
        """Estimated start of a sound whose first window above threshold ends at `first_above`."""
        return max(0.0, first_above - ONSET_FILL * self.window_s)

    def sound_end(self, start: float, last_above: float) -> float:
        """Estimated end of a sound whose last window above threshold ends at `last_above`."""
        return max(start, last_above - (1.0 - OFFSET_FILL) * self.window_s)


@dataclass(frozen=True, slots=True)
class SoundEvent:
    """A state change of one sound: it started (confirmed) or stopped (hold time passed)."""

    label: str
    kind: Literal["started", "stopped"]
    t: float  # stream time (s) at which the change was decided
    start: float  # estimated start of the sound (stream time, s)
    end: float | None  # estimated end of the sound (stopped events only)
    confidence: float  # highest probability so far in the episode
    first_window: float  # end of the first window above threshold
    last_window: float | None  # end of the last window above threshold (stopped only)
    episode: int | None = (
        None  # the heard stretch it belongs to (room.HeardLog), if known
    )

    @property
    def duration(self) -> float:
        """Seconds of the sound itself, from start to end (to `t` while still going on)."""
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
            start = self.config.sound_start(self._first_above)
            event = SoundEvent(
                self.label,
                "stopped",
                decided,
                start,
                self.config.sound_end(start, self._last_above),
                self._peak,
                self._first_above,
                self._last_above,
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
                start = self.config.sound_start(self._first_above)
                return SoundEvent(
                    self.label,
                    "started",
                    t,
                    start,
                    None,
                    self._peak,
                    self._first_above,
                    None,
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
    """One detected sound in a recording: its estimated start and end (s) and peak probability."""

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
