"""Test-only integration of scripts/e2e: makes Baby Monitor's scoring raise for a while.

`e2e_fault.break_scoring` (seconds) wraps every loaded room's window scoring so that it raises
until the time is up, the way a broken model or runtime would; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers.typing import ConfigType

DOMAIN = "e2e_fault"


def _failing_until(until: float, score: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def broken(window: Any) -> Any:
        if time.monotonic() < until:
            raise RuntimeError("e2e fault: the scorer is broken")
        return score(window)

    return broken


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the fault action."""

    async def break_scoring(call: ServiceCall) -> None:
        until = time.monotonic() + float(call.data.get("seconds", 10.0))
        for entry in hass.config_entries.async_entries("baby_monitor"):
            listener = entry.runtime_data.runtime.pipeline
            listener.score = _failing_until(until, listener.score)

    hass.services.async_register(DOMAIN, "break_scoring", break_scoring)
    return True
