"""Base entity for Baby Monitor: one device per entry, state pushed by the runtime."""

from __future__ import annotations

from typing import Any

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import CONF_SOURCE_TYPE, DOMAIN, SOURCE_TYPES
from .data import BabyMonitorConfigEntry

MODELS = dict(
    zip(SOURCE_TYPES, ("Camera audio", "Audio stream", "Microphone"), strict=True)
)


class BabyMonitorEntity(Entity):
    """An entity of a Baby Monitor device, updated whenever its runtime changes."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _shown: tuple[Any, ...] | None = None
    _shows_readings = False
    """Whether the state shows window readings (level, probabilities), not only availability
    and sounds: only such entities are asked to update with every published reading."""

    def __init__(
        self, entry: BabyMonitorConfigEntry, description: EntityDescription
    ) -> None:
        """Describe the entity and the room's device."""
        self.runtime = entry.runtime_data.runtime
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}-{description.key}"
        meta = self.runtime.model.meta
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="Baby Monitor",
            model=MODELS.get(entry.data.get(CONF_SOURCE_TYPE, ""), "Sound detector"),
            # the detection model's version, not a firmware ("sw_version" reads Firmware)
            model_id=f"Detection model {meta.version}",
        )

    @property
    def available(self) -> bool:
        """Available while audio arrives (or detection is paused on purpose)."""
        return self.runtime.available

    async def async_added_to_hass(self) -> None:
        """Follow the runtime's state."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.async_add_listener(
                self._handle_update, readings=self._shows_readings
            )
        )

    @callback
    def async_write_ha_state(self) -> None:
        """Write the state, remembering what it shows."""
        self._shown = self._showing()
        super().async_write_ha_state()

    @callback
    def _handle_update(self) -> None:
        """Write the state when what it shows has changed.

        The runtime notifies on every change it knows of (and readings entities on every
        published reading); writing an unchanged state would still cost the event loop the
        whole state update.
        """
        if self._showing() != self._shown:
            self.async_write_ha_state()

    def _showing(self) -> tuple[Any, ...]:
        """Return what the state shows: availability, state and attributes."""
        return (
            self.available,
            self.state,
            self.state_attributes,
            self.extra_state_attributes,
        )


class BabyMonitorLearningEntity(BabyMonitorEntity):
    """An entity of what the room has learnt: available whatever its source does."""

    def __init__(
        self, entry: BabyMonitorConfigEntry, description: EntityDescription
    ) -> None:
        """Follow the room's learning too."""
        super().__init__(entry, description)
        self.learning = entry.runtime_data.learning

    @property
    def available(self) -> bool:
        """Always available: what the room learnt does not depend on its source."""
        return True
