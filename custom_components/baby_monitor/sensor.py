"""Sound level and per-sound probability sensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LABEL_CRY, LABEL_LAUGHTER
from .entity import BabyMonitorEntity
from .runtime import BabyMonitorConfigEntry, BabyMonitorRuntime

PARALLEL_UPDATES = 0

UNIT_DBFS = "dBFS"


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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sound level sensor and a probability sensor per detected sound."""
    sounds = entry.runtime_data.settings.sounds
    async_add_entities(
        BabyMonitorSensor(entry, description)
        for description in SENSORS
        if description.sound is None or description.sound in sounds
    )


class BabyMonitorSensor(BabyMonitorEntity, SensorEntity):
    """A measurement of the last window (unknown while paused)."""

    entity_description: BabyMonitorSensorEntityDescription

    @property
    def native_value(self) -> float | None:
        """The measured value."""
        return self.entity_description.value_fn(self.runtime)
