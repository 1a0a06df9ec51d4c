"""Daily statistics of one sound: episodes, time heard and last start, per local day."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
import math
from typing import Any

import homeassistant.util.dt as dt_util

from .engine.detector import SoundEvent


def local_day(moment: datetime) -> date:
    """Return the calendar day of `moment` in Home Assistant's time zone."""
    return dt_util.as_local(moment).date()


def next_midnight(now: datetime) -> datetime:
    """Return the first local midnight after `now` (23 or 25 hours apart on DST days)."""
    return dt_util.start_of_local_day(local_day(now) + timedelta(days=1))


@dataclass(slots=True)
class DailyStatistics:
    """How often and how long one sound was heard on one local day.

    Times are wall-clock: an event's stream times are mapped to the moment `now` it arrives,
    so an episode runs from its sound's estimated start to its estimated end (neither the
    windows' smear after it nor the hold time is counted); while it goes on, it counts up to
    `now`.

    Midnight: an episode counts once, on the day it started, so a cry going on across midnight
    is an episode of the day before, while its time is split at midnight (the part before it
    belongs to the day before, the rest to the new day). A finished day is not kept (the
    recorder has its history), so a sound that began seconds before midnight but was only
    confirmed after it counts on the new day, with its time from midnight on.
    """

    day: date
    episodes: int = 0
    closed_s: float = 0.0
    """Seconds of the day's finished episodes (or of their parts on this day)."""
    open_since: datetime | None = None
    """Start of the episode going on, if any (possibly on an earlier day)."""
    last_start: datetime | None = None
    """Start of the most recent episode, on whatever day."""

    @classmethod
    def for_day_of(cls, now: datetime) -> DailyStatistics:
        """Empty statistics for the local day of `now`."""
        return cls(day=local_day(now))

    @property
    def day_start(self) -> datetime:
        """Local midnight at which the day begins."""
        return dt_util.start_of_local_day(self.day)

    @property
    def day_end(self) -> datetime:
        """Local midnight at which the day ends."""
        return dt_util.start_of_local_day(self.day + timedelta(days=1))

    def roll(self, now: datetime) -> bool:
        """Move on to the day of `now`: counts restart at 0, an open episode goes on."""
        today = local_day(now)
        if today <= self.day:
            return False
        self.day, self.episodes, self.closed_s = today, 0, 0.0
        return True

    def record(self, event: SoundEvent, now: datetime) -> None:
        """Count a sound that started or stopped, its event arriving at `now`."""
        self.roll(now)
        if event.kind == "started":
            start = now - timedelta(seconds=event.t - event.start)
            self.episodes += 1
            self.open_since = self.last_start = start
        elif self.open_since is not None:
            end = now - timedelta(seconds=event.t - event.start - event.duration)
            self.closed_s += self._seconds_on_day(self.open_since, end)
            self.open_since = None

    def seconds(self, now: datetime) -> float:
        """Time heard on the day until `now`; an episode going on counts up to now."""
        if self.open_since is None:
            return self.closed_s
        return self.closed_s + self._seconds_on_day(self.open_since, now)

    def _seconds_on_day(self, start: datetime, end: datetime) -> float:
        """Length of the part of [start, end] that lies on the day."""
        overlap = min(end, self.day_end) - max(start, self.day_start)
        return max(0.0, overlap.total_seconds())

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """Save what a restart keeps: the day's values up to `now`, an open episode included."""
        return {
            "day": self.day.isoformat(),
            "episodes": self.episodes,
            "seconds": round(self.seconds(now), 3),
            "last_start": (
                None if self.last_start is None else self.last_start.isoformat()
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], now: datetime) -> DailyStatistics:
        """Restore saved statistics: counts only if saved on the day of `now`, the last start always.

        No episode is open after a restart; its time until the save is in the saved seconds.
        Values that cannot be read are left at their defaults.
        """
        stats = cls.for_day_of(now)
        last_start = data.get("last_start")
        if isinstance(last_start, str) and (
            parsed := dt_util.parse_datetime(last_start)
        ):
            stats.last_start = parsed if parsed.tzinfo else None
        try:
            day = date.fromisoformat(data["day"])
            episodes = int(data["episodes"])
            seconds = float(data["seconds"])
        except (KeyError, TypeError, ValueError):
            return stats
        if day == stats.day and episodes >= 0 and 0 <= seconds < math.inf:
            stats.episodes, stats.closed_s = episodes, seconds
        return stats
