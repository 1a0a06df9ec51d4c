"""Diagnostics: settings and runtime state, with credentials in URLs redacted."""

from __future__ import annotations

import json

import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.baby_monitor.diagnostics import (
    async_get_config_entry_diagnostics,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .conftest import Room, silence


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    listening_room: Room,
    snapshot: SnapshotAssertion,
) -> None:
    """Settings and runtime state; the stream URL keeps its host but loses its credentials."""
    await listening_room.async_listen(silence(1.0))

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, listening_room.entry
    )

    text = json.dumps(diagnostics)
    for secret in ("parent", "hunter2", "s3cr3t"):
        assert secret not in text
    # left out: when audio began, where clips go (the machine), the model run (hash, version)
    assert diagnostics == snapshot(
        exclude=props("receiving_since", "folder", "sha256", "version")
    )


@pytest.mark.usefixtures("no_model")
async def test_diagnostics_of_a_room_that_failed_to_start(
    hass: HomeAssistant, room: Room
) -> None:
    """Without a runtime the settings, the state and the setup error are still given."""
    await room.async_start()
    assert room.entry.state is ConfigEntryState.SETUP_RETRY

    diagnostics = await async_get_config_entry_diagnostics(hass, room.entry)

    entry = diagnostics["entry"]
    assert entry["data"]["url"] == "rtsp://192.0.2.10:554"
    assert entry["options"] == dict(room.entry.options)
    assert entry["state"] == "setup_retry"
    assert entry["setup_error"].startswith("Cannot load the detection model: ")
    assert "missing.json" in entry["setup_error"]
    assert diagnostics["runtime"] is None
