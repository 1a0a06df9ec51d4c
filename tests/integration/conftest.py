"""Fixtures for the integration tests: a fake audio source, scripted models, entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
import time
from typing import Any
from unittest.mock import AsyncMock, PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.baby_monitor.clips import ClipRecorder
from custom_components.baby_monitor.const import (
    CONF_CONFIRM_S,
    CONF_HOP_S,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DOMAIN,
    SOURCE_URL,
)
from custom_components.baby_monitor.engine.backends import ModelRuntime
from custom_components.baby_monitor.engine.model import ModelMetadata
from custom_components.baby_monitor.engine.room import RoomHead
from custom_components.baby_monitor.engine.sources import SourceError
from custom_components.baby_monitor.engine.windows import clip_windows
from custom_components.baby_monitor.runtime import BabyMonitorRuntime
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from tests.conftest import write_wav

from . import setup_integration

RATE = 16000
BLOCK = 1600  # 0.1 s, like the real sources
URL = "rtsp://parent:hunter2@192.0.2.10:554/stream1?token=s3cr3t"
ENTRY_ID = "01JBABYMONITORTESTENTRY0001"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/baby_monitor."""


@pytest.fixture
def options() -> dict[str, Any]:
    """Options of the nursery's entry besides its timing (none: the defaults)."""
    return {}


@pytest.fixture
def mock_config_entry(options: dict[str, Any]) -> MockConfigEntry:
    """Make an entry for a room listened to through a stream URL with credentials.

    Crying counts at its first window and windows come every second here, so that scripted
    probabilities map one to one onto states; the default confirm time and hop have their own test.
    """
    return MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        entry_id=ENTRY_ID,
        unique_id="url:rtsp://***:***@192.0.2.10:554/stream1?token=***",
        data={CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: URL},
        options={CONF_CONFIRM_S: 0.0, CONF_HOP_S: 1.0, **options},
    )


def same_room(
    entry: MockConfigEntry,
    options: dict[str, Any] | None = None,
    version: int = 1,
) -> MockConfigEntry:
    """Make an entry for the same room and source with other options (none: the defaults).

    Version 1 entries are migrated at setup; version 2 holds options saved by the current
    forms, which migration leaves as they are.
    """
    return MockConfigEntry(
        domain=entry.domain,
        title=entry.title,
        unique_id=entry.unique_id,
        data=entry.data,
        options=options or {},
        version=version,
    )


def tone(
    seconds: float, amplitude: float = 0.5, freq: float = 440.0
) -> npt.NDArray[np.float32]:
    """Make a sine tone at 16 kHz."""
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> npt.NDArray[np.float32]:
    """Digital silence at 16 kHz."""
    return np.zeros(round(seconds * RATE), dtype=np.float32)


class FakeSource:
    """An AudioSource that plays an array as fast as it is read, then holds, ends or fails."""

    def __init__(
        self,
        audio: npt.NDArray[np.float32],
        *,
        start_error: SourceError | None = None,
        end: str = "hold",
        start_gate: asyncio.Event | None = None,
    ) -> None:
        """Describe what the source does; end is "hold", "end" or "fail".

        With a start_gate, start() waits for it (a slow connection).
        """
        self.name = "fake"
        self.audio = audio
        self.start_error = start_error
        self.end = end
        self.started = False
        self.stopped = False
        self.drained = asyncio.Event()
        self.start_gate = start_gate
        self.read = False
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Open, or fail like a real source."""
        self.started = True
        if self.start_gate is not None:
            await self.start_gate.wait()
        if self.start_error is not None:
            raise self.start_error

    async def blocks(self) -> AsyncIterator[npt.NDArray[np.float32]]:
        """Yield the audio in 0.1-s blocks, letting the loop run between them."""
        self.read = True
        for offset in range(0, len(self.audio), BLOCK):
            if self._stop.is_set():
                return
            yield self.audio[offset : offset + BLOCK]
            await asyncio.sleep(0)
        self.drained.set()
        if self.end == "fail":
            raise SourceError("stream_ended", "fake stream ended")
        if self.end == "hold":
            await self._stop.wait()

    async def stop(self) -> None:
        """Close (idempotent)."""
        self.stopped = True
        self._stop.set()


@dataclass
class SourceFactory:
    """Stands in for async_create_source: hands out FakeSources built from its settings."""

    audio: npt.NDArray[np.float32] = field(default_factory=lambda: silence(0.0))
    start_error: SourceError | None = None
    end: str = "hold"
    start_gate: asyncio.Event | None = None
    created: list[FakeSource] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)

    async def __call__(
        self, hass: HomeAssistant, data: Mapping[str, Any]
    ) -> FakeSource:
        """Build the next source."""
        from homeassistant.util import dt as dt_util

        self.calls.append(dt_util.utcnow().timestamp())
        source = FakeSource(
            self.audio,
            start_error=self.start_error,
            end=self.end,
            start_gate=self.start_gate,
        )
        self.created.append(source)
        return source

    @property
    def last(self) -> FakeSource:
        """The most recent source."""
        return self.created[-1]


@pytest.fixture
def source_factory() -> Generator[SourceFactory]:
    """Patch the runtime's source creation with a fake source (silence that holds)."""
    factory = SourceFactory()
    with patch(
        "custom_components.baby_monitor.runtime.async_create_source", new=factory
    ):
        yield factory


@pytest.fixture
def no_drops() -> Generator[None]:
    """Let every window wait for inference (tests feed audio faster than real time)."""
    with patch("custom_components.baby_monitor.runtime.MAX_PENDING_WINDOWS", 100_000):
        yield


def _key(row: npt.NDArray[np.float32]) -> bytes:
    """Key a patch row as a room stores it (float16), to look its scores up by."""
    return row.astype(np.float16).tobytes()


class ScriptedRuntime:
    """A model runtime whose probabilities follow a script, one row per window.

    Each patch's row is a fingerprint of its audio (mean log-mel per band, then zeros), so
    the same sound gives the same rows and what a room learns from them applies to it.
    """

    def __init__(
        self,
        meta: ModelMetadata,
        script: Iterable[tuple[float, float]] = (),
        delay_s: float = 0.0,
        scored: dict[bytes, npt.NDArray[np.float32]] | None = None,
    ) -> None:
        """Play `script` (cry, laughter) rows, then (0, 0).

        `scored` remembers each patch's scores; shared by the runtimes of one test, it keeps
        the head deterministic across reloads, as a real one is.
        """
        self.meta = meta
        self.backend = "scripted"
        self.script = list(script)
        self.delay_s = delay_s
        self.calls = 0
        self.scored = {} if scored is None else scored

    def new_cache(self) -> None:
        """Keep no patch rows: the script stands in for backbone and head."""

    def patch_ends(self, end: int) -> list[int]:
        """Frames the window's patches end at, as the real runtime counts them."""
        hop, count = self.meta.patch_hop_frames, self.meta.patches
        return [end - (count - 1 - index) * hop for index in range(count)]

    def window_rows(
        self, features: npt.NDArray[np.float32], **_: object
    ) -> npt.NDArray[np.float32]:
        """Fingerprints of the window's patches."""
        meta = self.meta
        size, hop, count = meta.patch_frames, meta.patch_hop_frames, meta.patches
        rows = np.zeros((count, meta.input_shape[-1]), np.float32)
        for index in range(count):
            stop = len(features) - (count - 1 - index) * hop
            bands = features[stop - size : stop].mean(axis=0)
            rows[index, : bands.size] = bands - bands.mean() + 1e-3 * (index + 1)
        return rows

    def embed_audio(
        self, audio: npt.NDArray[np.float32], hop_s: float
    ) -> npt.NDArray[np.float32]:
        """Fingerprints of a clip's patches every `hop_s`."""
        meta = self.meta
        assert meta.backbone is not None
        _, patches = clip_windows(audio, meta.frontend, meta.backbone.patch_s, hop_s)
        rows = np.zeros((len(patches), meta.input_shape[-1]), np.float32)
        for index, frames in enumerate(patches):
            bands = frames.mean(axis=0)
            rows[index, : bands.size] = bands - bands.mean() + 1e-3
        return rows

    def patch_probabilities(
        self, rows: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Score a patch as the loudest window it was scored in (0 if never)."""
        zero = np.zeros(len(self.meta.labels), np.float32)
        return np.stack([self.scored.get(_key(row), zero) for row in rows])

    def score_rows(
        self,
        rows: npt.NDArray[np.float32],
        room: RoomHead | None = None,
        **_: object,
    ) -> npt.NDArray[np.float32]:
        """Return the next scripted row (blocking, like a real model), corrected by `room`."""
        if self.delay_s:
            time.sleep(self.delay_s)
        row = self.script[self.calls] if self.calls < len(self.script) else (0.0, 0.0)
        self.calls += 1
        scores = np.asarray(row, dtype=np.float32)
        for row in rows:
            key = _key(row)
            self.scored[key] = np.maximum(self.scored.get(key, scores), scores)
        if room is None or room.empty:
            return scores
        patches = np.repeat(scores[None, :], len(rows), axis=0)
        return room.adjust(patches, rows).max(axis=0)

    def predict(
        self, features: npt.NDArray[np.float32], **_: object
    ) -> npt.NDArray[np.float32]:
        """Score one window as the sound pipeline does."""
        return self.score_rows(self.window_rows(features))


@pytest.fixture
def script() -> list[tuple[float, float]]:
    """Probabilities the scripted model gives, window by window (none: silence)."""
    return []


@pytest.fixture
def scripted_model(
    script: list[tuple[float, float]],
) -> Generator[Callable[[], ScriptedRuntime]]:
    """Replace the model with a ScriptedRuntime; returns a getter for the last one loaded."""
    loaded: list[ScriptedRuntime] = []
    scored: dict[bytes, npt.NDArray[np.float32]] = {}

    def load(meta: ModelMetadata, backend: str = "auto") -> ModelRuntime:
        runtime = ScriptedRuntime(meta, script, scored=scored)
        loaded.append(runtime)
        return runtime  # type: ignore[return-value]

    with patch("custom_components.baby_monitor.runtime.load_runtime", side_effect=load):
        yield lambda: loaded[-1]


@pytest.fixture
def no_model(tmp_path: Path) -> Generator[Path]:
    """Make the shipped model missing, so that setting an entry up fails and retries."""
    missing = tmp_path / "missing.json"
    with patch("custom_components.baby_monitor.runtime.DEFAULT_MODEL", missing):
        yield missing


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Skip setting entries up (config flow tests)."""
    with patch(
        "custom_components.baby_monitor.async_setup_entry", return_value=True
    ) as mock:
        yield mock


async def wait_until(
    hass: HomeAssistant, predicate: Callable[[], bool], timeout: float = 30.0
) -> None:
    """Let the loop, executor and background tasks run until predicate holds.

    Counts real pauses rather than reading clocks, so it also works under a frozen clock.
    """
    for _ in range(round(timeout / 0.002)):
        await hass.async_block_till_done()
        if predicate():
            return
        # a real pause in a thread (freezegun freezes the loop's clock, not sleeps)
        await hass.async_add_executor_job(time.sleep, 0.002)
    raise AssertionError("condition not reached in time")


async def settle(hass: HomeAssistant) -> None:
    """Let background tasks take a few turns."""
    for _ in range(10):
        await asyncio.sleep(0)
        await hass.async_block_till_done()


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Move the clock and run what became due."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await settle(hass)


def log_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """Messages of the integration's log records that contain `text`."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.baby_monitor")
        and text in record.getMessage()
    ]


def record_states(hass: HomeAssistant, *entity_ids: str) -> list[State]:
    """Collect every state these entities write (new value or attributes), in order."""
    states: list[State] = []

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] in entity_ids and (new := event.data["new_state"]):
            states.append(new)

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record)
    return states


def changes(states: list[State]) -> list[str]:
    """List the state values, consecutive repeats folded."""
    values: list[str] = []
    for state in states:
        if not values or values[-1] != state.state:
            values.append(state.state)
    return values


def state_of(hass: HomeAssistant, entity_id: str) -> State:
    """Get the current state of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, f"{entity_id} has no state"
    return state


@dataclass
class Room:
    """The nursery under test: its entry and the fake sources the entry opens."""

    hass: HomeAssistant
    entry: MockConfigEntry
    sources: SourceFactory

    @property
    def runtime(self) -> BabyMonitorRuntime:
        """The running entry's runtime (a new one after each reload)."""
        return self.entry.runtime_data.runtime

    @property
    def clips(self) -> ClipRecorder:
        """The running entry's clip recorder (a new one after each reload)."""
        return self.entry.runtime_data.clips

    def with_options(self, options: dict[str, Any], version: int = 1) -> Room:
        """Make the same room and source another entry, with these options (see same_room)."""
        return replace(self, entry=same_room(self.entry, options, version))

    async def async_start(self, audio: npt.NDArray[np.float32] | None = None) -> None:
        """Set the entry up, its source to play `audio` (if given); do not wait for it."""
        if audio is not None:
            self.sources.audio = audio
        await setup_integration(self.hass, self.entry)

    async def async_listen(
        self, audio: npt.NDArray[np.float32] | None = None
    ) -> BabyMonitorRuntime:
        """Set the entry up and wait until it has heard and scored all of `audio`."""
        await self.async_start(audio)
        await self.async_heard()
        return self.runtime

    async def async_heard(self) -> None:
        """Wait until the source open now has played everything and every window is scored."""
        await wait_until(self.hass, lambda: bool(self.sources.created))
        source = self.sources.last
        await wait_until(
            self.hass, lambda: source.drained.is_set() and self.runtime.idle
        )


@pytest.fixture
def room(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
) -> Room:
    """Make the nursery, heard through a fake source by the shipped model."""
    return Room(hass, mock_config_entry, source_factory)


@pytest.fixture
def listening_room(room: Room, scripted_model: Callable[[], ScriptedRuntime]) -> Room:
    """Make the nursery, heard through a fake source by a model that follows `script`."""
    return room


@pytest.fixture
def media(tmp_path: Path, hass: HomeAssistant) -> Path:
    """Point Home Assistant's local media folder at a temporary folder."""
    folder = tmp_path / "media"
    folder.mkdir()
    hass.config.media_dirs = {"local": str(folder)}
    return folder


@pytest.fixture
def allowed_tmp_path(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Let Home Assistant read files in tmp_path (as allowlist_external_dirs would)."""
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    return tmp_path


@pytest.fixture
def wav_file(allowed_tmp_path: Path) -> Path:
    """Write a 30-s WAV file with a quiet tone (a stand-in for a camera stream)."""
    return write_wav(allowed_tmp_path / "nursery.wav", tone(30.0, amplitude=0.1))


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create every entity enabled, those disabled by default too (as HA core's fixture)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshot registry entries and states as HA core does (ids and times left out)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)
