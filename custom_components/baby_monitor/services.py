"""Actions of Baby Monitor: keep the last seconds of a room's audio as a clip."""

from __future__ import annotations

from typing import Final

import voluptuous as vol

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .clips import DEFAULT_MANUAL_S, MAX_MANUAL_S, ClipRecorder
from .const import DOMAIN
from .runtime import BabyMonitorConfigEntry

SERVICE_SAVE_CLIP: Final = "save_clip"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_DURATION: Final = "duration"

SAVE_CLIP_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_DURATION, default=DEFAULT_MANUAL_S): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=MAX_MANUAL_S)
        ),
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register `baby_monitor.save_clip`."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SAVE_CLIP,
        _async_save_clip,
        schema=SAVE_CLIP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


def _clip_recorder(hass: HomeAssistant, entry_id: str) -> ClipRecorder:
    """Find the clip recorder of a loaded Baby Monitor entry; translated errors otherwise."""
    entry: BabyMonitorConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED or entry.runtime_data.clips is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"room": entry.title},
        )
    return entry.runtime_data.clips


async def _async_save_clip(call: ServiceCall) -> ServiceResponse:
    """Save the last `duration` seconds heard; returns where the clip went if asked."""
    recorder = _clip_recorder(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    clip = await recorder.async_save_last(call.data[ATTR_DURATION])
    return clip.as_dict() if call.return_response else None
