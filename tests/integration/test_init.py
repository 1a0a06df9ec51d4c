"""Setup, unload, reload, options applied and the model that cannot load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
import shutil
import sys
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.baby_monitor.const import (
    CONF_BACKEND,
    CONF_CONFIRM_S,
    CONF_CRY_THRESHOLD,
    CONF_HOLD_S,
    CONF_HOP_S,
    CONF_LAUGHTER_THRESHOLD,
    CONF_SOUNDS,
    DOMAIN,
)
from custom_components.baby_monitor.engine.detector import DEFAULT_CONFIRM_S
from custom_components.baby_monitor.engine.model import DEFAULT_MODEL
from custom_components.baby_monitor.engine.pipeline import DEFAULT_HOP_S
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)

from .conftest import Room, wait_until

MODEL_PATH = "custom_components.baby_monitor.runtime.DEFAULT_MODEL"


async def test_setup_and_unload(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """Setup starts listening and adds the entities; unload stops the source."""
    await listening_room.async_start()
    assert listening_room.entry.state is ConfigEntryState.LOADED
    assert listening_room.sources.last.started
    assert hass.states.get("binary_sensor.nursery_crying") is not None
    assert hass.states.get("event.nursery_sound") is not None

    runtime = listening_room.runtime
    assert await hass.config_entries.async_unload(listening_room.entry.entry_id)
    await hass.async_block_till_done()
    assert listening_room.entry.state is ConfigEntryState.NOT_LOADED
    assert listening_room.sources.last.stopped
    assert not runtime.is_running


async def test_device_names_its_source_and_the_detection_model(
    hass: HomeAssistant,
    listening_room: Room,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The room's device shows the kind of source and the model's version, no firmware."""
    await listening_room.async_start()

    device = device_registry.async_get_device(
        identifiers={(DOMAIN, listening_room.entry.entry_id)}
    )
    assert device is not None
    version = listening_room.runtime.model.meta.version
    assert (device.name, device.manufacturer, device.model) == (
        "Nursery",
        "Baby Monitor",
        "Audio stream",
    )
    assert device.model_id == f"Detection model {version}"
    assert device.sw_version is None


async def test_reload_starts_a_new_source(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """Reloading closes the old source and opens a new one."""
    await listening_room.async_start()
    first = listening_room.sources.last
    assert await hass.config_entries.async_reload(listening_room.entry.entry_id)
    await hass.async_block_till_done()
    assert first.stopped
    assert listening_room.sources.last is not first
    assert listening_room.sources.last.started
    assert listening_room.entry.state is ConfigEntryState.LOADED


async def test_by_default_crying_waits_for_the_confirm_time_and_laughter_does_not(
    hass: HomeAssistant, room: Room
) -> None:
    """Without options, windows come every second and crying needs 3 s of them; a laugh counts at once."""
    room = room.with_options({})
    await room.async_start()
    runtime = room.runtime
    detectors = runtime.pipeline.detectors
    assert detectors["cry"].config.confirm_s == DEFAULT_CONFIRM_S == 3.0
    assert detectors["laughter"].config.confirm_s == 0.0
    assert runtime.settings.hop_s == DEFAULT_HOP_S == 1.0


async def test_options_are_applied(
    hass: HomeAssistant,
    room: Room,
    entity_registry: er.EntityRegistry,
) -> None:
    """Saving options reloads the entry with them; entities of undetected sounds go away."""
    await room.async_start()
    runtime = room.runtime
    assert runtime.model.backend in ("litert", "tflite", "numpy")
    assert set(runtime.pipeline.detectors) == {"cry", "laughter"}
    assert entity_registry.async_get("binary_sensor.nursery_laughing") is not None

    result = await hass.config_entries.options.async_init(room.entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_CRY_THRESHOLD: 0.8,
            CONF_LAUGHTER_THRESHOLD: 0.7,
            CONF_CONFIRM_S: 2.0,
            CONF_HOLD_S: 10.0,
            CONF_SOUNDS: ["cry"],
            CONF_HOP_S: 2.0,
            CONF_BACKEND: "numpy",
        },
    )
    await hass.async_block_till_done()
    assert room.entry.state is ConfigEntryState.LOADED
    runtime = room.runtime
    assert runtime.model.backend == "numpy"
    assert runtime.settings.hop_s == 2.0
    cry = runtime.pipeline.detectors["cry"].config
    assert (cry.threshold, cry.confirm_s, cry.hold_s) == (0.8, 2.0, 10.0)
    assert set(runtime.pipeline.detectors) == {"cry"}
    assert entity_registry.async_get("binary_sensor.nursery_laughing") is None
    assert entity_registry.async_get("sensor.nursery_laughter_probability") is None
    assert hass.states.get("binary_sensor.nursery_crying") is not None
    assert hass.states.get("event.nursery_sound").attributes["event_types"] == [
        "cry_started",
        "cry_stopped",
    ]


async def test_setup_retry_when_model_cannot_load(
    hass: HomeAssistant,
    room: Room,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    tmp_path: Path,
) -> None:
    """A corrupt model keeps the entry retrying with a repair issue; a good one clears both."""
    broken = tmp_path / DEFAULT_MODEL.name
    shutil.copy(DEFAULT_MODEL, broken)
    broken.with_suffix(".tflite").write_bytes(b"not a model")
    with patch(MODEL_PATH, broken):
        await room.async_start()
    assert room.entry.state is ConfigEntryState.SETUP_RETRY
    issue = issue_registry.async_get_issue(DOMAIN, f"model_error_{room.entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "model_error"
    assert "does not match its metadata" in issue.translation_placeholders["error"]

    freezer.tick(timedelta(minutes=5))
    async_fire_time_changed(hass)
    await wait_until(hass, lambda: room.entry.state is ConfigEntryState.LOADED)
    assert (
        issue_registry.async_get_issue(DOMAIN, f"model_error_{room.entry.entry_id}")
        is None
    )


async def test_setup_retry_when_backend_missing(
    hass: HomeAssistant,
    room: Room,
    issue_registry: ir.IssueRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runtime backend that is not installed is a model error too (choose Automatic)."""
    for module in ("tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # not installed, here too
    room = room.with_options({CONF_BACKEND: "tflite"})
    await room.async_start()
    assert room.entry.state is ConfigEntryState.SETUP_RETRY
    issue = issue_registry.async_get_issue(DOMAIN, f"model_error_{room.entry.entry_id}")
    assert issue is not None
    assert "tflite: not installed" in issue.translation_placeholders["error"]


@pytest.mark.usefixtures("no_model")
async def test_remove_entry_withdraws_issues(
    hass: HomeAssistant,
    room: Room,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Deleting an entry that could not load its model removes its repair issue."""
    await room.async_start()
    assert issue_registry.async_get_issue(DOMAIN, f"model_error_{room.entry.entry_id}")
    await hass.config_entries.async_remove(room.entry.entry_id)
    await hass.async_block_till_done()
    assert not issue_registry.issues
