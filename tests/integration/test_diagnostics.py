"""Diagnostics: settings and runtime state, with credentials in URLs redacted."""

from __future__ import annotations

import json

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.baby_monitor.diagnostics import (
    async_get_config_entry_diagnostics,
)
from homeassistant.core import HomeAssistant

from . import setup_integration
from .conftest import SourceFactory, silence, wait_until


@pytest.mark.usefixtures("scripted_model")
async def test_diagnostics_redact_credentials(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
) -> None:
    """The stream URL keeps its host but loses user, password and token."""
    source_factory.audio = silence(1.0)
    await setup_integration(hass, mock_config_entry)
    await wait_until(hass, lambda: mock_config_entry.runtime_data.available)
    diagnostics = await async_get_config_entry_diagnostics(hass, mock_config_entry)

    text = json.dumps(diagnostics, default=str)
    for secret in ("parent", "hunter2", "s3cr3t"):
        assert secret not in text
    assert (
        diagnostics["entry"]["data"]["url"]
        == "rtsp://192.0.2.10:554"
    )
    runtime = diagnostics["runtime"]
    assert runtime["source"] == "rtsp://192.0.2.10:554"
    assert runtime["available"] is True
    assert runtime["listening"] is True
    assert runtime["connections"] == 1
    assert runtime["windows_dropped"] == 0
    assert runtime["model"]["backend"] == "scripted"
    assert set(runtime["settings"]["detectors"]) == {"cry", "laughter"}
