"""The listening switch: pause detection for privacy."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import STATE_OFF
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .data import BabyMonitorConfigEntry
from .entity import BabyMonitorEntity

PARALLEL_UPDATES = 0

LISTENING = SwitchEntityDescription(key="listening", translation_key="listening")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the listening switch."""
    async_add_entities([BabyMonitorListeningSwitch(entry, LISTENING)])


class BabyMonitorListeningSwitch(BabyMonitorEntity, RestoreEntity, SwitchEntity):
    """On while the monitor listens; off closes the source (on by default, restored)."""

    @property
    def available(self) -> bool:
        """Always available, so that listening can be resumed whatever the source does."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the monitor listens."""
        return self.runtime.listening

    async def async_added_to_hass(self) -> None:
        """Restore the last choice before the runtime starts."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None:
            await self.runtime.async_set_listening(last.state != STATE_OFF)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Resume detection."""
        await self.runtime.async_set_listening(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Pause detection and close the source."""
        await self.runtime.async_set_listening(False)
