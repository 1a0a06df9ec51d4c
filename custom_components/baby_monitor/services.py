"""Actions of Baby Monitor: save a clip of a room's audio, teach a room what it heard.

Saving a clip records the room: administrators only.
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError, Unauthorized, UnknownUser
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)

from .clips import DEFAULT_MANUAL_S, MAX_MANUAL_S, ClipRecorder
from .const import DOMAIN, SOUNDS
from .data import BabyMonitorConfigEntry, BabyMonitorData
from .engine.room import VERDICTS

SERVICE_SAVE_CLIP: Final = "save_clip"
SERVICE_TEACH: Final = "teach"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_DURATION: Final = "duration"
ATTR_SOUND: Final = "sound"
ATTR_VERDICT: Final = "verdict"
ATTR_EPISODE: Final = "episode"

ROOM_FIELDS: Final[dict[vol.Marker, Any]] = {
    vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
    vol.Optional(ATTR_ENTITY_ID): cv.comp_entity_ids,
}
"""The room is given as its entry, its device or one of its entities."""
_ONE_ROOM = cv.has_at_least_one_key(
    ATTR_CONFIG_ENTRY_ID, ATTR_DEVICE_ID, ATTR_ENTITY_ID
)

SAVE_CLIP_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            **ROOM_FIELDS,
            vol.Optional(ATTR_DURATION, default=DEFAULT_MANUAL_S): vol.All(
                vol.Coerce(float), vol.Range(min=1, max=MAX_MANUAL_S)
            ),
        }
    ),
    _ONE_ROOM,
)
TEACH_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            **ROOM_FIELDS,
            vol.Required(ATTR_SOUND): vol.In(SOUNDS),
            vol.Required(ATTR_VERDICT): vol.In(VERDICTS),
            # the `episode` attribute of the sound's event or binary sensor; latest if empty
            vol.Optional(ATTR_EPISODE): vol.Any(
                None, vol.All(vol.Coerce(int), vol.Range(min=1))
            ),
        }
    ),
    _ONE_ROOM,
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register `baby_monitor.save_clip` (it records the room: administrators only)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SAVE_CLIP,
        _async_save_clip,
        schema=SAVE_CLIP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_TEACH,
        _async_teach,
        schema=TEACH_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_require_admin(call: ServiceCall) -> None:
    """Refuse a call by a user who is not an administrator (automations have no user).

    Like `async_register_admin_service`, which cannot return a response in 2025.4.
    """
    if call.context.user_id is None:
        return
    user = await call.hass.auth.async_get_user(call.context.user_id)
    if user is None:
        raise UnknownUser(context=call.context)
    if not user.is_admin:
        raise Unauthorized(context=call.context)


def _not_a_room(target: str) -> ServiceValidationError:
    """Make the error for a device or entity that is no Baby Monitor room."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="not_a_room",
        translation_placeholders={"target": target},
    )


@callback
def _target_entry_id(hass: HomeAssistant, call: ServiceCall) -> str:
    """Find the one room the call names by entry, device or entity (its entry id)."""
    entry_ids: set[str] = set()
    if ATTR_CONFIG_ENTRY_ID in call.data:
        entry_ids.add(call.data[ATTR_CONFIG_ENTRY_ID])
    devices = dr.async_get(hass)
    for device_id in call.data.get(ATTR_DEVICE_ID, ()):
        if (device := devices.async_get(device_id)) is None:
            raise _not_a_room(device_id)
        rooms = {ident for domain, ident in device.identifiers if domain == DOMAIN}
        if not rooms:
            raise _not_a_room(device.name_by_user or device.name or device_id)
        entry_ids |= rooms
    entities = er.async_get(hass)
    for entity_id in call.data.get(ATTR_ENTITY_ID, ()):
        entity = entities.async_get(entity_id)
        if entity is None or entity.platform != DOMAIN or not entity.config_entry_id:
            raise _not_a_room(entity_id)
        entry_ids.add(entity.config_entry_id)
    if len(entry_ids) > 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="one_room"
        )
    return entry_ids.pop()


def _room(hass: HomeAssistant, entry_id: str) -> BabyMonitorData:
    """Find the runtime data of a loaded Baby Monitor entry; translated errors otherwise."""
    entry: BabyMonitorConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"room": entry.title},
        )
    return entry.runtime_data


async def _async_save_clip(call: ServiceCall) -> ServiceResponse:
    """Save the last `duration` seconds heard; returns where the clip went if asked."""
    await _async_require_admin(call)
    recorder: ClipRecorder = _room(call.hass, _target_entry_id(call.hass, call)).clips
    clip = await recorder.async_save_last(call.data[ATTR_DURATION])
    return clip.as_dict() if call.return_response else None


async def _async_teach(call: ServiceCall) -> ServiceResponse:
    """Teach the room that an episode it heard was (or was not) the sound; returns the counts."""
    learning = _room(call.hass, _target_entry_id(call.hass, call)).learning
    await learning.async_teach(
        call.data[ATTR_SOUND], call.data[ATTR_VERDICT], call.data.get(ATTR_EPISODE)
    )
    counts: dict[str, Any] = dict(learning.counts())
    return {"examples": counts} if call.return_response else None
