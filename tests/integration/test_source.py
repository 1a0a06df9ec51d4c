"""Sources from entry data, with real ffmpeg: camera streams, files, and a clean unload."""

from __future__ import annotations

import os
from pathlib import Path
import threading
from unittest.mock import AsyncMock, patch

import pytest
from pytest_homeassistant_custom_component.common import (
    MockModule,
    MockPlatform,
    mock_integration,
    mock_platform,
)

from custom_components.baby_monitor.const import (
    CONF_CAMERA,
    CONF_DEVICE,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DOMAIN,
    SOURCE_CAMERA,
    SOURCE_MICROPHONE,
    SOURCE_URL,
)
from custom_components.baby_monitor.engine.sources import (
    FFmpegSource,
    SoundDeviceSource,
    SourceError,
)
from custom_components.baby_monitor.source import (
    async_create_source,
    describe_source,
    source_unique_id,
)
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
from homeassistant.setup import async_setup_component

from .conftest import URL, wait_until

HA_POOL_THREADS = ("SyncWorker", "ImportExecutor", "ThreadPoolExecutor")
SOURCE = "custom_components.baby_monitor.source"


def ffmpeg_children() -> set[int]:
    """Process ids of ffmpeg processes started by this test process."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and name == "ffmpeg":
            children.add(int(entry.name))
    return children


@pytest.fixture
async def ffmpeg(hass: HomeAssistant) -> None:
    """Set up Home Assistant's ffmpeg integration (it knows the ffmpeg binary)."""
    assert await async_setup_component(hass, "ffmpeg", {})


@pytest.mark.parametrize(
    ("data", "unique_id", "described"),
    [
        (
            {CONF_SOURCE_TYPE: SOURCE_CAMERA, CONF_CAMERA: "camera.crib"},
            "camera:camera.crib",
            "camera.crib",
        ),
        (
            {CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: URL},
            "url:rtsp://***:***@192.0.2.10:554/stream1?token=***",
            "rtsp://192.0.2.10:554",
        ),
        (
            {CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "pulse:default"},
            "microphone:pulse:default",
            "pulse:default",
        ),
    ],
)
def test_unique_id_and_description(
    data: dict[str, str], unique_id: str, described: str
) -> None:
    """Sources are identified without credentials and shown as scheme://host:port."""
    assert source_unique_id(data) == unique_id
    assert describe_source(data) == described


@pytest.mark.usefixtures("ffmpeg")
async def test_sources_built_from_entry_data(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Each kind of entry gets the right engine source; nothing starts yet."""
    stream = await async_create_source(
        hass, {CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: URL}
    )
    assert isinstance(stream, FFmpegSource)
    assert not stream.realtime
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    file = await async_create_source(
        hass, {CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: str(tmp_path / "a.wav")}
    )
    assert isinstance(file, FFmpegSource)
    assert file.realtime  # a file plays at real speed, like a live stream
    pulse = await async_create_source(
        hass, {CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "pulse:default"}
    )
    assert isinstance(pulse, FFmpegSource)
    assert pulse.name == "pulse:default"
    portaudio = await async_create_source(
        hass,
        {CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "sounddevice:USB Audio"},
    )
    assert isinstance(portaudio, SoundDeviceSource)
    assert portaudio.device == "USB Audio"
    with pytest.raises(SourceError) as err:
        await async_create_source(
            hass, {CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "default"}
        )
    assert err.value.reason == "device_not_found"


@pytest.mark.usefixtures("ffmpeg")
async def test_a_camera_is_shown_by_its_entity_and_stream_origin(
    hass: HomeAssistant,
) -> None:
    """A camera's stream URL (with its token) shows only as scheme://host:port."""
    url = "rtsps://192.0.2.7:7441/Xk2lQ9aZtOkEn?enableSrtp"
    with patch(f"{SOURCE}.async_get_stream_source", AsyncMock(return_value=url)):
        source = await async_create_source(
            hass, {CONF_SOURCE_TYPE: SOURCE_CAMERA, CONF_CAMERA: "camera.crib"}
        )
    assert source.name == "camera.crib (rtsps://192.0.2.7:7441)"


class WavCamera(Camera):
    """A camera entity whose stream is a WAV file (ffmpeg reads it like an RTSP stream)."""

    _attr_name = "Nursery cam"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, path: Path) -> None:
        """Stream `path`."""
        super().__init__()
        self._path = path

    async def stream_source(self) -> str:
        """Return the file as the stream."""
        return str(self._path)

    async def async_turn_off(self) -> None:
        """Switch the camera off: it has no stream then."""
        self._attr_is_on = False
        self.async_write_ha_state()


@pytest.fixture
async def wav_camera(hass: HomeAssistant, wav_file: Path) -> str:
    """Set up camera.nursery_cam, a real camera entity streaming a WAV file."""

    async def setup_platform(
        hass: HomeAssistant,
        config: ConfigType,
        add_entities: AddEntitiesCallback,
        info: DiscoveryInfoType | None = None,
    ) -> None:
        add_entities([WavCamera(wav_file)])

    mock_integration(hass, MockModule("test"))
    mock_platform(
        hass, "test.camera", MockPlatform(async_setup_platform=setup_platform)
    )
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    assert hass.states.get("camera.nursery_cam") is not None
    return "camera.nursery_cam"


async def test_camera_through_real_ffmpeg_and_clean_unload(
    hass: HomeAssistant, wav_camera: str
) -> None:
    """A real camera entity is tested, listened to with ffmpeg, and unloading reaps ffmpeg."""
    threads_before = set(threading.enumerate())
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": SOURCE_CAMERA}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: wav_camera, CONF_NAME: "Nursery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]

    await wait_until(
        hass,
        lambda: (
            entry.state is ConfigEntryState.LOADED
            and entry.runtime_data.runtime.available
        ),
    )
    assert hass.states.get("binary_sensor.nursery_crying").state == "off"
    assert len(ffmpeg_children()) == 1  # the monitor's; the one of the test was reaped

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not ffmpeg_children()
    new_threads = {
        thread
        for thread in set(threading.enumerate()) - threads_before
        if thread.is_alive()
    }
    # executor and import workers belong to Home Assistant's pools; nothing else may be left
    assert not [
        thread.name
        for thread in new_threads
        if not thread.name.startswith(HA_POOL_THREADS)
    ]


async def test_camera_that_is_off_cannot_be_added(
    hass: HomeAssistant, wav_camera: str
) -> None:
    """A camera that is switched off has no stream to test."""
    await hass.services.async_call(
        "camera", "turn_off", {ATTR_ENTITY_ID: wav_camera}, blocking=True
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": SOURCE_CAMERA}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: wav_camera, CONF_NAME: "Nursery"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
