"""Diagnostics for Baby Monitor: settings and runtime state, credentials in URLs redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_URL
from .engine.sources import redact_url
from .runtime import BabyMonitorConfigEntry

TO_REDACT = {"password", "username", "token", "api_key"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> dict[str, Any]:
    """Return the entry's settings and what its runtime sees."""
    data = dict(entry.data)
    if CONF_URL in data:
        data[CONF_URL] = redact_url(data[CONF_URL])
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(data, TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "runtime": entry.runtime_data.diagnostics(),
    }
