"""Diagnostics for Baby Monitor: settings and runtime state, credentials in URLs redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_URL
from .data import BabyMonitorConfigEntry
from .engine.sources import redact_url

TO_REDACT = {"password", "username", "token", "api_key"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> dict[str, Any]:
    """Return the entry's settings, its state and what its runtime sees (None if not running).

    An entry that failed to set up has no runtime: its state and setup error say why.
    """
    data = dict(entry.data)
    setup_error = entry.reason
    if CONF_URL in data:
        data[CONF_URL] = redact_url(url := data[CONF_URL])
        if setup_error:
            setup_error = setup_error.replace(url, data[CONF_URL])
    loaded = getattr(entry, "runtime_data", None)
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(data, TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
            "state": entry.state.value,
            "setup_error": setup_error,
        },
        "runtime": (
            {
                **loaded.runtime.diagnostics(),
                "clips": loaded.clips.diagnostics(),
                # counts only: the examples are features of what the room heard
                "learnt_examples": loaded.learning.counts(),
            }
            if loaded is not None
            else None
        ),
    }
