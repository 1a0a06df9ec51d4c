"""Crying and laughing binary sensors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
import homeassistant.util.dt as dt_util

from .const import LABEL_CRY, LABEL_LAUGHTER
from .data import BabyMonitorConfigEntry
from .engine.detector import SoundEvent
from .entity import BabyMonitorEntity
from .runtime import BabyMonitorRuntime

PARALLEL_UPDATES = 0

ATTR_STARTED_AT = "started_at"
ATTR_EPISODE = "episode"


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
    sounds = entry.runtime_data.runtime.settings.sounds
    async_add_entities(
        BabyMonitorBinarySensor(entry, description)
        for description in BINARY_SENSORS
        if description.sound in sounds
    )


class BabyMonitorBinarySensor(BabyMonitorEntity, BinarySensorEntity):
    """On while the baby cries (or laughs); while on, `started_at` says since when."""

    entity_description: BabyMonitorBinarySensorEntityDescription
    _started_at: datetime | None = None
    _episode: int | None = None

    @property
    def is_on(self) -> bool:
        """Whether the sound is going on."""
        return self.entity_description.value_fn(self.runtime)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """While on: when the sound began, and its episode.

        The start is the sound's estimated start, not when it was confirmed; the episode is
        what a verdict (`baby_monitor.teach`) refers to.
        """
        if not self.is_on or self._started_at is None:
            return None
        return {
            ATTR_STARTED_AT: self._started_at,
            ATTR_EPISODE: self._episode,
        }

    async def async_added_to_hass(self) -> None:
        """Follow the runtime's sound events too."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.async_add_event_listener(self._handle_sound_event)
        )

    @callback
    def _handle_sound_event(self, event: SoundEvent) -> None:
        """Note when the sound began: `event.t - event.start` seconds before it was decided."""
        if event.label != self.entity_description.sound:
            return
        self._started_at = (
            dt_util.utcnow() - timedelta(seconds=event.t - event.start)
            if event.kind == "started"
            else None
        )
        self._episode = event.episode
        self.async_write_ha_state()
