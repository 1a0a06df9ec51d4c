"""Config flow: each source kind, each error and its recovery, duplicates, reconfigure, options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import get_type_hints
from unittest.mock import AsyncMock, patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.baby_monitor.config_flow import BabyMonitorConfigFlow
from custom_components.baby_monitor.const import (
    CONF_BACKEND,
    CONF_CAMERA,
    CONF_CLIP_MAX_SIZE_MB,
    CONF_CLIP_RETENTION_DAYS,
    CONF_CONFIRM_S,
    CONF_CRY_THRESHOLD,
    CONF_DEVICE,
    CONF_HOLD_S,
    CONF_HOP_S,
    CONF_KEEP_CLIPS_ON_REMOVE,
    CONF_LAUGHTER_THRESHOLD,
    CONF_SAVE_CLIPS,
    CONF_SOUNDS,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DOMAIN,
    SOURCE_CAMERA,
    SOURCE_MICROPHONE,
    SOURCE_URL,
)
from custom_components.baby_monitor.data import BabyMonitorConfigEntry
from custom_components.baby_monitor.engine.model import DEFAULT_MODEL, load_metadata
from custom_components.baby_monitor.engine.sources import InputDevice, SourceError
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError

from .conftest import URL, same_room

PROBE = "custom_components.baby_monitor.config_flow.probe"
STREAM_SOURCE = "custom_components.baby_monitor.source.async_get_stream_source"

pytestmark = pytest.mark.usefixtures("mock_setup_entry")


@pytest.fixture
def mock_probe() -> AsyncMock:
    """Pretend every source gives a second of audio."""
    with patch(PROBE, new_callable=AsyncMock) as mock:
        yield mock


async def _form(hass: HomeAssistant, kind: str) -> ConfigFlowResult:
    """Open the flow and pick `kind` in the menu; returns its form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["camera", "url", "microphone"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": kind}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == kind
    assert result["errors"] == {}
    return result


async def _start(hass: HomeAssistant, kind: str) -> str:
    """Open the flow, pick `kind` in the menu; returns the flow id."""
    return (await _form(hass, kind))["flow_id"]


async def test_url_creates_entry(
    hass: HomeAssistant, mock_probe: AsyncMock, mock_setup_entry: AsyncMock
) -> None:
    """A stream URL that gives audio becomes an entry named after the room."""
    flow_id = await _start(hass, SOURCE_URL)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: f" {URL} ", CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Nursery"
    assert result["data"] == {CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: URL}
    assert (
        result["result"].unique_id
        == "url:rtsp://***:***@192.0.2.10:554/stream1?token=***"
    )
    mock_probe.assert_awaited_once()
    assert mock_probe.await_args.args[0].url == URL
    assert len(mock_setup_entry.mock_calls) == 1


@pytest.mark.parametrize(
    ("error", "base"),
    [
        (SourceError("cannot_connect", "refused"), "cannot_connect"),
        (SourceError("no_audio", "no audio stream"), "no_audio"),
        (SourceError("invalid_url", "bad scheme"), "invalid_url"),
        (SourceError("not_media", "an HTML page"), "not_media"),
        (SourceError("no_stream", "camera has audio off"), "no_stream"),
        (SourceError("path_not_allowed", "outside allowlist"), "path_not_allowed"),
        (SourceError("sound_server_missing", "no PulseAudio"), "sound_server_missing"),
        (SourceError("ffmpeg_not_found", "no ffmpeg"), "ffmpeg_not_found"),
        (SourceError("device_not_found", "no device"), "device_not_found"),
        (SourceError("portaudio_missing", "no portaudio"), "portaudio_missing"),
        (SourceError("stream_ended", "ended"), "cannot_connect"),
        (RuntimeError("boom"), "unknown"),
    ],
)
async def test_url_error_then_recovery(
    hass: HomeAssistant, mock_probe: AsyncMock, error: Exception, base: str
) -> None:
    """A failing test shows the reason; fixing the source finishes the same flow."""
    flow_id = await _start(hass, SOURCE_URL)
    mock_probe.side_effect = error
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: URL, CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": base}

    mock_probe.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: URL, CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("ftp://192.0.2.10/stream", "invalid_url"),
        ("{allowed}/nursery.wav", "cannot_connect"),
    ],
)
async def test_url_tested_with_real_ffmpeg(
    hass: HomeAssistant, allowed_tmp_path: Path, url: str, base: str
) -> None:
    """The flow really opens the source: a bad scheme or a missing file is reported."""
    flow_id = await _start(hass, SOURCE_URL)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: url.format(allowed=allowed_tmp_path), CONF_NAME: "Nursery"}
    )
    assert result["errors"] == {"base": base}


async def test_url_file_with_audio_is_accepted(
    hass: HomeAssistant, wav_file: Path
) -> None:
    """A file ffmpeg can play passes the test (real probe, real ffmpeg)."""
    flow_id = await _start(hass, SOURCE_URL)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: str(wav_file), CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "url",
    ["/etc/hostname", "file:///etc/hostname", "subfile,,start,0,end,0,,:/etc/hostname"],
)
async def test_url_file_outside_the_allowed_folders_is_refused(
    hass: HomeAssistant, url: str
) -> None:
    """A file path may only name what Home Assistant may read (allowlist_external_dirs)."""
    flow_id = await _start(hass, SOURCE_URL)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: url, CONF_NAME: "Nursery"}
    )
    assert result["errors"] == {"base": "path_not_allowed"}


async def test_camera_creates_entry(hass: HomeAssistant, mock_probe: AsyncMock) -> None:
    """A camera's stream source is tested; the entry keeps the entity id, not the URL."""
    flow_id = await _start(hass, SOURCE_CAMERA)
    with patch(STREAM_SOURCE, return_value=URL) as stream_source:
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_CAMERA: "camera.nursery", CONF_NAME: "Nursery"}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_SOURCE_TYPE: SOURCE_CAMERA,
        CONF_CAMERA: "camera.nursery",
    }
    assert result["result"].unique_id == "camera:camera.nursery"
    stream_source.assert_awaited_once_with(hass, "camera.nursery")
    assert mock_probe.await_args.args[0].url == URL


@pytest.mark.parametrize(
    ("stream_source", "base"),
    [
        ({"return_value": None}, "no_stream"),
        ({"side_effect": HomeAssistantError("Camera not found")}, "cannot_connect"),
    ],
)
async def test_camera_without_stream_then_recovery(
    hass: HomeAssistant,
    mock_probe: AsyncMock,
    stream_source: dict[str, object],
    base: str,
) -> None:
    """A camera without a stream (or gone) is reported; one with a stream is accepted."""
    flow_id = await _start(hass, SOURCE_CAMERA)
    user_input = {CONF_CAMERA: "camera.nursery", CONF_NAME: "Nursery"}
    with patch(STREAM_SOURCE, **stream_source):
        result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["errors"] == {"base": base}
    mock_probe.assert_not_awaited()
    with patch(STREAM_SOURCE, return_value=URL):
        result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_microphone_lists_portaudio_devices(
    hass: HomeAssistant, mock_probe: AsyncMock
) -> None:
    """Where PortAudio exists its inputs are offered first, then ffmpeg's Pulse/ALSA defaults."""
    devices = [InputDevice(3, "USB Audio", 1, 48000.0, True)]
    with (
        patch(
            "custom_components.baby_monitor.config_flow.portaudio_available",
            return_value=True,
        ),
        patch(
            "custom_components.baby_monitor.config_flow.list_input_devices",
            return_value=devices,
        ),
    ):
        form = await _form(hass, SOURCE_MICROPHONE)
    flow_id = form["flow_id"]
    selector = form["data_schema"].schema[CONF_DEVICE]
    assert selector.config["options"] == [
        "sounddevice:USB Audio",
        "pulse:default",
        "alsa:default",
    ]

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_DEVICE: "sounddevice:USB Audio", CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_SOURCE_TYPE: SOURCE_MICROPHONE,
        CONF_DEVICE: "sounddevice:USB Audio",
    }
    assert result["result"].unique_id == "microphone:sounddevice:USB Audio"
    assert mock_probe.await_args.args[0].device == "USB Audio"


async def test_microphone_without_portaudio_uses_ffmpeg(
    hass: HomeAssistant, mock_probe: AsyncMock
) -> None:
    """On Home Assistant OS (no PortAudio) the microphone is read by ffmpeg from Pulse or ALSA."""
    with patch(
        "custom_components.baby_monitor.config_flow.portaudio_available",
        return_value=False,
    ):
        form = await _form(hass, SOURCE_MICROPHONE)
    flow_id = form["flow_id"]
    assert form["data_schema"].schema[CONF_DEVICE].config["options"] == [
        "pulse:default",
        "alsa:default",
    ]

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_DEVICE: "alsa:default", CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    source = mock_probe.await_args.args[0]
    assert source.name == "alsa:default"
    command = source.command()
    assert command[command.index("-i") - 2 : command.index("-i") + 2] == [
        "-f",
        "alsa",
        "-i",
        "default",
    ]


async def test_microphone_malformed_device_then_recovery(
    hass: HomeAssistant, mock_probe: AsyncMock
) -> None:
    """A typed device that is not <driver>:<device> is refused before anything opens."""
    with patch(
        "custom_components.baby_monitor.config_flow.portaudio_available",
        return_value=False,
    ):
        flow_id = await _start(hass, SOURCE_MICROPHONE)
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_DEVICE: "my microphone", CONF_NAME: "Nursery"}
        )
        assert result["errors"] == {"base": "device_not_found"}
        mock_probe.assert_not_awaited()
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_DEVICE: "pulse:default", CONF_NAME: "Nursery"}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_duplicate_source_aborts(
    hass: HomeAssistant, mock_probe: AsyncMock, mock_config_entry: MockConfigEntry
) -> None:
    """The same stream (whatever its credentials) cannot be added twice; nothing is opened."""
    mock_config_entry.add_to_hass(hass)
    flow_id = await _start(hass, SOURCE_URL)
    other_credentials = "rtsp://admin:other@192.0.2.10:554/stream1?token=new"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: other_credentials, CONF_NAME: "Bedroom"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    mock_probe.assert_not_awaited()


async def test_reconfigure_to_camera(
    hass: HomeAssistant,
    mock_probe: AsyncMock,
    mock_config_entry: MockConfigEntry,
    mock_setup_entry: AsyncMock,
) -> None:
    """Reconfigure offers the same menu, tests the new source and updates and reloads the entry."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": SOURCE_CAMERA}
    )
    assert result["type"] is FlowResultType.FORM
    flow_id = result["flow_id"]

    with patch(STREAM_SOURCE, return_value=None):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_CAMERA: "camera.crib", CONF_NAME: "Crib"}
        )
    assert result["errors"] == {"base": "no_stream"}

    with patch(STREAM_SOURCE, return_value=URL):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_CAMERA: "camera.crib", CONF_NAME: "Crib"}
        )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.title == "Crib"
    assert mock_config_entry.unique_id == "camera:camera.crib"
    assert dict(mock_config_entry.data) == {
        CONF_SOURCE_TYPE: SOURCE_CAMERA,
        CONF_CAMERA: "camera.crib",
    }
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reconfigure_keeps_url_suggested(
    hass: HomeAssistant, mock_probe: AsyncMock, mock_config_entry: MockConfigEntry
) -> None:
    """Reconfiguring the same kind of source suggests the current settings; same source is fine."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": SOURCE_URL}
    )
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested == {CONF_URL: URL, CONF_NAME: "Nursery"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: URL, CONF_NAME: "Nursery room"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.title == "Nursery room"


async def test_reconfigure_to_existing_source_aborts(
    hass: HomeAssistant, mock_probe: AsyncMock, mock_config_entry: MockConfigEntry
) -> None:
    """An entry cannot be switched to a source another entry already listens to."""
    mock_config_entry.add_to_hass(hass)
    MockConfigEntry(
        domain=DOMAIN,
        title="Bedroom",
        unique_id="camera:camera.bedroom",
        data={CONF_SOURCE_TYPE: SOURCE_CAMERA, CONF_CAMERA: "camera.bedroom"},
    ).add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": SOURCE_CAMERA}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.bedroom", CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_URL] == URL


async def test_options_flow(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Options offer the model's thresholds; at least one sound; saved values land in options."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert 0 < defaults[CONF_CRY_THRESHOLD] < 1
    assert defaults[CONF_SOUNDS] == ["cry", "laughter"]
    assert defaults[CONF_BACKEND] == "auto"
    backends = result["data_schema"].schema
    backend_key = next(key for key in backends if str(key) == CONF_BACKEND)
    assert backends[backend_key].config["options"][0] == "auto"
    assert "numpy" in backends[backend_key].config["options"]

    options = {
        CONF_CRY_THRESHOLD: 0.8,
        CONF_LAUGHTER_THRESHOLD: 0.7,
        CONF_CONFIRM_S: 2.0,
        CONF_HOLD_S: 10.0,
        CONF_SOUNDS: [],
        CONF_HOP_S: 0.5,
        CONF_BACKEND: "numpy",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_SOUNDS: "no_sounds"}

    options[CONF_SOUNDS] = ["cry"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # clip settings left out are saved with their defaults
    assert mock_config_entry.options == options | {
        CONF_SAVE_CLIPS: False,
        CONF_CLIP_RETENTION_DAYS: 7,
        CONF_CLIP_MAX_SIZE_MB: 500,
        CONF_KEEP_CLIPS_ON_REMOVE: True,
    }


async def test_options_show_thresholds_to_two_decimals(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A model's calibrated thresholds are offered as 0.58, not 0.5797354578971864.

    The shipped model's are already rounded, so the form is shown for a copy of it whose
    thresholds are as a calibration writes them.
    """
    shipped = load_metadata(DEFAULT_MODEL)
    calibrated = {"cry": 0.9312873456021837, "laughter": 0.5797354578971864}
    assert set(calibrated) == set(shipped.thresholds)
    model = replace(shipped, thresholds=dict(calibrated))
    saved = 0.7349018263541829
    entry = same_room(mock_config_entry, {CONF_LAUGHTER_THRESHOLD: saved})
    entry.add_to_hass(hass)

    with patch(
        "custom_components.baby_monitor.config_flow.load_metadata", return_value=model
    ) as loaded:
        result = await hass.config_entries.options.async_init(entry.entry_id)
    loaded.assert_called_once_with(DEFAULT_MODEL)

    data_schema = result["data_schema"]
    assert data_schema is not None
    schema = data_schema.schema
    keys = {str(key): key for key in schema}
    assert keys[CONF_CRY_THRESHOLD].default() == 0.93
    assert keys[CONF_LAUGHTER_THRESHOLD].default() == 0.58
    for option in (CONF_CRY_THRESHOLD, CONF_LAUGHTER_THRESHOLD):
        assert schema[keys[option]].config["step"] == 0.01
    # a threshold saved unrounded is shown rounded too
    assert keys[CONF_LAUGHTER_THRESHOLD].description["suggested_value"] == 0.73
    # the model keeps its own
    assert model.thresholds == calibrated


def test_options_flow_takes_a_typed_entry() -> None:
    """The options flow is given the room's entry type, as every other signature is."""
    hints = get_type_hints(BabyMonitorConfigFlow.async_get_options_flow)
    assert hints["config_entry"] is BabyMonitorConfigEntry


async def test_options_fall_back_when_model_metadata_is_unreadable(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """The options still open (with a generic threshold) when the model cannot be read."""
    mock_config_entry.add_to_hass(hass)
    with patch(
        "custom_components.baby_monitor.config_flow.DEFAULT_MODEL",
        tmp_path / "missing.json",
    ):
        result = await hass.config_entries.options.async_init(
            mock_config_entry.entry_id
        )
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert defaults[CONF_CRY_THRESHOLD] == 0.9


async def test_options_flow_clip_settings(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Clips are offered off, 7 days, 500 MB, kept after removal; saved values come back."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert defaults[CONF_SAVE_CLIPS] is False
    assert defaults[CONF_CLIP_RETENTION_DAYS] == 7
    assert defaults[CONF_CLIP_MAX_SIZE_MB] == 500
    assert defaults[CONF_KEEP_CLIPS_ON_REMOVE] is True

    options = {
        CONF_SOUNDS: ["cry", "laughter"],
        CONF_SAVE_CLIPS: True,
        CONF_CLIP_RETENTION_DAYS: 30,
        CONF_CLIP_MAX_SIZE_MB: 2000,
        CONF_KEEP_CLIPS_ON_REMOVE: False,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert {key: mock_config_entry.options[key] for key in options} == options

    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
    }
    assert suggested[CONF_SAVE_CLIPS] is True
    assert suggested[CONF_CLIP_RETENTION_DAYS] == 30
    assert suggested[CONF_CLIP_MAX_SIZE_MB] == 2000
    assert suggested[CONF_KEEP_CLIPS_ON_REMOVE] is False


async def test_options_flow_rejects_a_clip_size_below_10_mb(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The size cap has a floor: a few clips must fit."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    with pytest.raises(vol.Invalid):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_SOUNDS: ["cry"], CONF_SAVE_CLIPS: True, CONF_CLIP_MAX_SIZE_MB: 1},
        )
