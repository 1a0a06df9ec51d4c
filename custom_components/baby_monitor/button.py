"""Buttons: tell the room its last cry was not one, and make it forget what it learnt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LABEL_CRY
from .data import BabyMonitorConfigEntry
from .entity import BabyMonitorLearningEntity
from .learning import RoomLearning

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class BabyMonitorButtonEntityDescription(ButtonEntityDescription):
    """A verdict or a reset of what the room learnt."""

    sound: str | None = None
    press_fn: Callable[[RoomLearning], Awaitable[object]]


BUTTONS: tuple[BabyMonitorButtonEntityDescription, ...] = (
    BabyMonitorButtonEntityDescription(
        key="not_a_cry",
        translation_key="not_a_cry",
        sound=LABEL_CRY,
        press_fn=lambda learning: learning.async_teach(LABEL_CRY, "not_this_sound"),
    ),
    BabyMonitorButtonEntityDescription(
        key="forget_learnt",
        translation_key="forget_learnt",
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda learning: learning.async_forget(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons of a room whose model can learn (those of its detected sounds)."""
    data = entry.runtime_data
    if not data.learning.supported:
        return
    sounds = data.runtime.settings.sounds
    async_add_entities(
        BabyMonitorButton(entry, description)
        for description in BUTTONS
        if description.sound is None or description.sound in sounds
    )


class BabyMonitorButton(BabyMonitorLearningEntity, ButtonEntity):
    """Teaches the room (Not a cry: its latest cry) or makes it forget."""

    entity_description: BabyMonitorButtonEntityDescription

    async def async_press(self) -> None:
        """Teach or forget."""
        await self.entity_description.press_fn(self.learning)
