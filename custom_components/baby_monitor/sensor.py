"""Sound level, per-sound probability and daily statistics sensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import (
    async_track_point_in_time,
    async_track_time_interval,
)
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.helpers.typing import StateType
import homeassistant.util.dt as dt_util

from .const import LABEL_CRY, LABEL_LAUGHTER
from .data import BabyMonitorConfigEntry
from .engine.detector import SoundEvent
from .entity import BabyMonitorEntity, BabyMonitorLearningEntity
from .runtime import BabyMonitorRuntime
from .statistics import DailyStatistics, next_midnight

PARALLEL_UPDATES = 0

UNIT_DBFS = "dBFS"
REFRESH_WHILE_HEARD: Final = timedelta(minutes=1)
"""How often a time statistic is rewritten while its sound goes on."""


def _percent(label: str) -> Callable[[BabyMonitorRuntime], float | None]:
    """Read a sound's probability of the last window, in percent."""

    def value(runtime: BabyMonitorRuntime) -> float | None:
        probability = runtime.probabilities.get(label)
        return None if probability is None else round(100.0 * probability, 1)

    return value


@dataclass(frozen=True, kw_only=True)
class BabyMonitorSensorEntityDescription(SensorEntityDescription):
    """A number the runtime measures every window."""

    sound: str | None = None
    value_fn: Callable[[BabyMonitorRuntime], float | None]


SENSORS: tuple[BabyMonitorSensorEntityDescription, ...] = (
    BabyMonitorSensorEntityDescription(
        key="sound_level",
        translation_key="sound_level",
        native_unit_of_measurement=UNIT_DBFS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda runtime: (
            None if runtime.level_dbfs is None else round(runtime.level_dbfs, 1)
        ),
    ),
    BabyMonitorSensorEntityDescription(
        key="cry_probability",
        translation_key="cry_probability",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        sound=LABEL_CRY,
        value_fn=_percent(LABEL_CRY),
    ),
    BabyMonitorSensorEntityDescription(
        key="laughter_probability",
        translation_key="laughter_probability",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        sound=LABEL_LAUGHTER,
        value_fn=_percent(LABEL_LAUGHTER),
    ),
)


@dataclass(frozen=True, kw_only=True)
class BabyMonitorStatisticsSensorEntityDescription(SensorEntityDescription):
    """A statistic of one sound over the current local day."""

    sound: str
    value_fn: Callable[[DailyStatistics, datetime], StateType | datetime]
    grows_while_heard: bool = False


# Daily totals are TOTAL with last_reset at local midnight rather than TOTAL_INCREASING: the
# reset time is explicit (also after a restart), and crying time may settle a few seconds
# lower when a cry ends (the hold time is not counted), which is no new cycle.
STATISTICS_SENSORS: tuple[BabyMonitorStatisticsSensorEntityDescription, ...] = (
    BabyMonitorStatisticsSensorEntityDescription(
        key="cry_episodes_today",
        translation_key="cry_episodes_today",
        state_class=SensorStateClass.TOTAL,
        sound=LABEL_CRY,
        value_fn=lambda stats, now: stats.episodes,
    ),
    BabyMonitorStatisticsSensorEntityDescription(
        key="crying_time_today",
        translation_key="crying_time_today",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.TOTAL,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=1,
        sound=LABEL_CRY,
        value_fn=lambda stats, now: round(stats.seconds(now)),
        grows_while_heard=True,
    ),
    BabyMonitorStatisticsSensorEntityDescription(
        key="last_cry",
        translation_key="last_cry",
        device_class=SensorDeviceClass.TIMESTAMP,
        sound=LABEL_CRY,
        value_fn=lambda stats, now: stats.last_start,
    ),
    BabyMonitorStatisticsSensorEntityDescription(
        key="laughter_episodes_today",
        translation_key="laughter_episodes_today",
        state_class=SensorStateClass.TOTAL,
        sound=LABEL_LAUGHTER,
        value_fn=lambda stats, now: stats.episodes,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sound level sensor, and probability and statistics sensors per detected sound."""
    sounds = entry.runtime_data.runtime.settings.sounds
    async_add_entities(
        BabyMonitorSensor(entry, description)
        for description in SENSORS
        if description.sound is None or description.sound in sounds
    )
    async_add_entities(
        BabyMonitorStatisticsSensor(entry, description)
        for description in STATISTICS_SENSORS
        if description.sound in sounds
    )
    if entry.runtime_data.learning.supported:
        async_add_entities([BabyMonitorLearntSensor(entry, LEARNT_EXAMPLES)])


LEARNT_EXAMPLES = SensorEntityDescription(
    key="learnt_examples",
    translation_key="learnt_examples",
    entity_category=EntityCategory.DIAGNOSTIC,
)


class BabyMonitorSensor(BabyMonitorEntity, SensorEntity):
    """A measurement of the last window (unknown while paused)."""

    entity_description: BabyMonitorSensorEntityDescription
    _shows_readings = True

    @property
    def native_value(self) -> float | None:
        """The measured value."""
        return self.entity_description.value_fn(self.runtime)


@dataclass(slots=True)
class StatisticsExtraStoredData(ExtraStoredData):
    """The day's statistics, as kept across restarts."""

    statistics: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready data."""
        return self.statistics


class BabyMonitorStatisticsSensor(BabyMonitorEntity, RestoreEntity, SensorEntity):
    """A statistic of today: restored after a restart, back to 0 at local midnight.

    It stays available while the source is down or paused: what was heard today still holds.
    """

    entity_description: BabyMonitorStatisticsSensorEntityDescription

    def __init__(
        self,
        entry: BabyMonitorConfigEntry,
        description: BabyMonitorStatisticsSensorEntityDescription,
    ) -> None:
        """Start with empty statistics for today."""
        super().__init__(entry, description)
        self._statistics = DailyStatistics.for_day_of(dt_util.utcnow())
        self._cancel_midnight: CALLBACK_TYPE | None = None
        self._cancel_refresh: CALLBACK_TYPE | None = None

    @property
    def available(self) -> bool:
        """Always available: the day's statistics stay valid without audio."""
        return True

    @property
    def native_value(self) -> StateType | datetime:
        """The statistic now."""
        return self.entity_description.value_fn(self._statistics, dt_util.utcnow())

    @property
    def last_reset(self) -> datetime | None:
        """Local midnight that began the counted day (daily totals only)."""
        if self.entity_description.state_class is SensorStateClass.TOTAL:
            return self._statistics.day_start
        return None

    @property
    def extra_restore_state_data(self) -> StatisticsExtraStoredData:
        """The day's statistics up to now, for after a restart."""
        return StatisticsExtraStoredData(self._statistics.as_dict(dt_util.utcnow()))

    async def async_added_to_hass(self) -> None:
        """Restore the day's statistics, follow the sound events and the date."""
        await super().async_added_to_hass()
        if (stored := await self.async_get_last_extra_data()) is not None:
            self._statistics = DailyStatistics.from_dict(
                stored.as_dict(), dt_util.utcnow()
            )
        self.async_on_remove(
            self.runtime.async_add_event_listener(self._handle_sound_event)
        )
        self.async_on_remove(self._cancel_timers)
        self._schedule_midnight()

    @callback
    def _handle_update(self) -> None:
        """Skip the runtime's window updates: statistics change with sounds and the date."""

    @callback
    def _handle_sound_event(self, event: SoundEvent) -> None:
        """Count the sound starting or stopping."""
        if event.label != self.entity_description.sound:
            return
        self._statistics.record(event, dt_util.utcnow())
        if self.entity_description.grows_while_heard:
            self._set_refresh(event.kind == "started")
        self.async_write_ha_state()

    @callback
    def _set_refresh(self, heard: bool) -> None:
        """Rewrite the state every REFRESH_WHILE_HEARD while the sound goes on."""
        if self._cancel_refresh is not None:
            self._cancel_refresh()
            self._cancel_refresh = None
        if heard:
            self._cancel_refresh = async_track_time_interval(
                self.hass, self._handle_refresh, REFRESH_WHILE_HEARD
            )

    @callback
    def _handle_refresh(self, now: datetime) -> None:
        """Show the time heard so far."""
        self.async_write_ha_state()

    @callback
    def _schedule_midnight(self) -> None:
        """Wake up at the next local midnight."""
        self._cancel_midnight = async_track_point_in_time(
            self.hass, self._handle_midnight, next_midnight(dt_util.utcnow())
        )

    @callback
    def _handle_midnight(self, now: datetime) -> None:
        """Close the day with its final value, then start the new one."""
        self.async_write_ha_state()
        self._statistics.roll(now)
        self.async_write_ha_state()
        self._schedule_midnight()

    @callback
    def _cancel_timers(self) -> None:
        """Stop waiting for midnight and for refreshes."""
        if self._cancel_midnight is not None:
            self._cancel_midnight()
            self._cancel_midnight = None
        self._set_refresh(False)


class BabyMonitorLearntSensor(BabyMonitorLearningEntity, SensorEntity):
    """How many examples the room was taught; per sound and verdict in its attributes."""

    @property
    def native_value(self) -> int:
        """Examples taught, all sounds and verdicts."""
        return len(self.learning.examples)

    @property
    def extra_state_attributes(self) -> dict[str, int]:
        """Examples per sound and verdict, e.g. `cry_not_this_sound`."""
        return {
            f"{sound}_{verdict}": count
            for sound, verdicts in self.learning.counts().items()
            for verdict, count in verdicts.items()
        }

    async def async_added_to_hass(self) -> None:
        """Follow the examples, not the runtime's window updates."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.learning.async_add_listener(self.async_write_ha_state)
        )

    @callback
    def _handle_update(self) -> None:
        """Skip the runtime's window updates: the count changes with verdicts only."""
