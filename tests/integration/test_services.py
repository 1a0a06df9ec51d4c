"""The save_clip action: administrators only, and a room named by its entry, device or entity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.baby_monitor.const import DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.setup import async_setup_component

from . import setup_integration
from .conftest import ENTRY_ID, Room
from .test_clips import clips, noise, options, other_room  # noqa: F401 - clips saved


async def save_clip(
    hass: HomeAssistant, context: Context | None = None, **data: Any
) -> dict[str, Any] | None:
    """Call baby_monitor.save_clip with `data` (no room added)."""
    return await hass.services.async_call(
        DOMAIN,
        "save_clip",
        data,
        blocking=True,
        return_response=True,
        context=context,
    )


@pytest.fixture
async def nursery(
    listening_room: Room,
    media: Path,
) -> MockConfigEntry:
    """Set up the nursery and let it hear 3 s of audio."""
    await listening_room.async_listen(noise(3.0))
    return listening_room.entry


async def test_a_user_who_is_not_an_administrator_cannot_record(
    hass: HomeAssistant,
    nursery: MockConfigEntry,
    media: Path,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    """Saving a room's audio is for administrators; automations (no user) may too."""
    with pytest.raises(Unauthorized):
        await save_clip(
            hass,
            Context(user_id=hass_read_only_user.id),
            config_entry_id=ENTRY_ID,
        )
    assert clips(media) == []

    assert await save_clip(
        hass, Context(user_id=hass_admin_user.id), config_entry_id=ENTRY_ID
    )
    assert await save_clip(hass, config_entry_id=ENTRY_ID)
    assert len(clips(media)) == 2


async def test_the_room_can_be_its_device_or_an_entity(
    hass: HomeAssistant,
    nursery: MockConfigEntry,
    media: Path,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The action editor's target (the room's device or entity) names the room too."""
    device = device_registry.async_get_device(identifiers={(DOMAIN, ENTRY_ID)})
    assert device is not None

    assert await save_clip(hass, device_id=device.id)
    assert await save_clip(hass, entity_id="binary_sensor.nursery_crying")
    assert await save_clip(
        hass, config_entry_id=ENTRY_ID, device_id=[device.id], duration=2
    )
    assert len(clips(media)) == 3


async def test_a_target_that_is_no_room_is_refused(
    hass: HomeAssistant,
    nursery: MockConfigEntry,
    media: Path,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Another integration's device or entity, or an unknown one, gets a translated error."""
    lamp = MockConfigEntry(domain="demo")
    lamp.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=lamp.entry_id, identifiers={("demo", "lamp")}, name="Lamp"
    )
    entity = entity_registry.async_get_or_create("light", "demo", "lamp")

    for data, target in (
        ({"device_id": device.id}, "Lamp"),
        ({"device_id": "no-such-device"}, "no-such-device"),
        ({"entity_id": entity.entity_id}, entity.entity_id),
        ({"entity_id": "sensor.nothing"}, "sensor.nothing"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await save_clip(hass, **data)
        assert err.value.translation_key == "not_a_room"
        assert str(err.value) == (
            f"{target} is not a Baby Monitor room; "
            "choose a room's device or one of its entities"
        )
    assert clips(media) == []


async def test_one_room_at_a_time(
    hass: HomeAssistant,
    nursery: MockConfigEntry,
    options: dict[str, Any],  # noqa: F811 - the fixture
    device_registry: dr.DeviceRegistry,
) -> None:
    """Naming two rooms is refused: the response describes one clip."""
    playroom = other_room("Playroom", 2, options)
    await setup_integration(hass, playroom)
    device = device_registry.async_get_device(identifiers={(DOMAIN, playroom.entry_id)})
    assert device is not None

    with pytest.raises(ServiceValidationError) as err:
        await save_clip(hass, config_entry_id=ENTRY_ID, device_id=device.id)
    assert err.value.translation_key == "one_room"


async def test_a_room_that_is_not_running_is_refused_by_device(
    hass: HomeAssistant,
    nursery: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The device of an unloaded room says the room is not running."""
    device = device_registry.async_get_device(identifiers={(DOMAIN, ENTRY_ID)})
    assert device is not None
    assert await hass.config_entries.async_unload(ENTRY_ID)
    assert nursery.state is ConfigEntryState.NOT_LOADED

    with pytest.raises(ServiceValidationError) as err:
        await save_clip(hass, device_id=device.id)
    assert err.value.translation_key == "entry_not_loaded"
    assert str(err.value) == (
        "Baby Monitor for Nursery is not running; enable or reload it first"
    )


async def test_a_room_must_be_named(hass: HomeAssistant) -> None:
    """Without an entry, device or entity the call is invalid."""
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(Exception, match="must contain at least one of"):
        await save_clip(hass, duration=5)


async def test_the_action_targets_rooms(hass: HomeAssistant) -> None:
    """The editor offers Baby Monitor devices and entities as the target."""
    assert await async_setup_component(hass, DOMAIN, {})
    description = (await async_get_all_descriptions(hass))[DOMAIN]["save_clip"]
    assert description["target"] == {
        "device": [{"integration": DOMAIN}],
        "entity": [{"integration": DOMAIN}],
    }
