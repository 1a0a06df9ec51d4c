"""Event entity: a sound started or stopped."""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import BabyMonitorConfigEntry
from .engine.detector import SoundEvent
from .entity import BabyMonitorEntity
from .runtime import event_type

PARALLEL_UPDATES = 0

SOUND_EVENT = EventEntityDescription(key="sound", translation_key="sound")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sound event entity."""
    async_add_entities([BabyMonitorEventEntity(entry, SOUND_EVENT)])


class BabyMonitorEventEntity(BabyMonitorEntity, EventEntity):
    """Fires cry_started, cry_stopped, laughter_started and laughter_stopped."""

    def __init__(
        self, entry: BabyMonitorConfigEntry, description: EventEntityDescription
    ) -> None:
        """Offer the event types of the detected sounds."""
        super().__init__(entry, description)
        self._attr_event_types = [
            f"{sound}_{kind}"
            for sound in self.runtime.settings.sounds
            for kind in ("started", "stopped")
        ]

    async def async_added_to_hass(self) -> None:
        """Follow the runtime's sound events too."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.async_add_event_listener(self._handle_sound_event)
        )

    @callback
    def _handle_sound_event(self, event: SoundEvent) -> None:
        self._trigger_event(
            event_type(event),
            {
                "confidence": round(event.confidence, 3),
                "duration": round(event.duration, 1),
                "episode": event.episode,
            },
        )
        self.async_write_ha_state()
