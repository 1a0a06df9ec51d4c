"""Crying and laughing binary sensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LABEL_CRY, LABEL_LAUGHTER
from .entity import BabyMonitorEntity
from .runtime import BabyMonitorConfigEntry, BabyMonitorRuntime

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class BabyMonitorBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A sound that is on while it goes on."""

    sound: str
    value_fn: Callable[[BabyMonitorRuntime], bool]


BINARY_SENSORS: tuple[BabyMonitorBinarySensorEntityDescription, ...] = (
    BabyMonitorBinarySensorEntityDescription(
        key="crying",
        translation_key="crying",
        device_class=BinarySensorDeviceClass.SOUND,
        sound=LABEL_CRY,
        value_fn=lambda runtime: runtime.active.get(LABEL_CRY, False),
    ),
    BabyMonitorBinarySensorEntityDescription(
        key="laughing",
        translation_key="laughing",
        device_class=BinarySensorDeviceClass.SOUND,
        sound=LABEL_LAUGHTER,
        value_fn=lambda runtime: runtime.active.get(LABEL_LAUGHTER, False),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a binary sensor per detected sound."""
    sounds = entry.runtime_data.settings.sounds
    async_add_entities(
        BabyMonitorBinarySensor(entry, description)
        for description in BINARY_SENSORS
        if description.sound in sounds
    )


class BabyMonitorBinarySensor(BabyMonitorEntity, BinarySensorEntity):
    """On while the baby cries (or laughs)."""

    entity_description: BabyMonitorBinarySensorEntityDescription

    @property
    def is_on(self) -> bool:
        """Whether the sound is going on."""
        return self.entity_description.value_fn(self.runtime)
