"""Every platform's entities as registered and shown, for a room that has heard a second."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.baby_monitor import PLATFORMS
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .conftest import Room, silence


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.freeze_time("2025-06-01 20:00:00+00:00")
@pytest.mark.parametrize("platform", PLATFORMS)
async def test_entities(
    hass: HomeAssistant,
    listening_room: Room,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Names, unique ids, classes, units, icons and states of the platform's entities."""
    with (
        patch("custom_components.baby_monitor.PLATFORMS", [platform]),
        # the image's access token is random
        patch(
            "homeassistant.components.image.SystemRandom.getrandbits",
            return_value=0xB4B1,
        ),
    ):
        await listening_room.async_listen(silence(1.0))

    await snapshot_platform(
        hass, entity_registry, snapshot, listening_room.entry.entry_id
    )
