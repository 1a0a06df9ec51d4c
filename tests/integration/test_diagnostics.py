"""Diagnostics: settings and runtime state, with credentials in URLs redacted."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.baby_monitor.diagnostics import (
    async_get_config_entry_diagnostics,
)
from homeassistant.config_entries import ConfigEntryState
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
    await wait_until(hass, lambda: mock_config_entry.runtime_data.runtime.available)
    diagnostics = await async_get_config_entry_diagnostics(hass, mock_config_entry)

    text = json.dumps(diagnostics, default=str)
    for secret in ("parent", "hunter2", "s3cr3t"):
        assert secret not in text
    assert diagnostics["entry"]["data"]["url"] == "rtsp://192.0.2.10:554"
    runtime = diagnostics["runtime"]
    assert runtime["source"] == "rtsp://192.0.2.10:554"
    assert runtime["available"] is True
    assert runtime["listening"] is True
    assert runtime["connections"] == 1
    assert runtime["windows_dropped"] == 0
    assert runtime["model"]["backend"] == "scripted"
    assert set(runtime["settings"]["detectors"]) == {"cry", "laughter"}


@pytest.mark.usefixtures("source_factory")
async def test_diagnostics_of_a_room_that_failed_to_start(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """Without a runtime the settings, the state and the setup error are still given."""
    with patch(
        "custom_components.baby_monitor.runtime.DEFAULT_MODEL",
        tmp_path / "missing.json",
    ):
        await setup_integration(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY

    diagnostics = await async_get_config_entry_diagnostics(hass, mock_config_entry)

    entry = diagnostics["entry"]
    assert entry["data"]["url"] == "rtsp://192.0.2.10:554"
    assert entry["options"] == dict(mock_config_entry.options)
    assert entry["state"] == "setup_retry"
    assert entry["setup_error"].startswith("Cannot load the detection model: ")
    assert "missing.json" in entry["setup_error"]
    assert diagnostics["runtime"] is None
