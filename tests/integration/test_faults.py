"""Fault injection: a stream, ffmpeg, a microphone, the model or the host misbehaving.

Each fault of the fault-injection issue is scripted and asserted here, or where an existing test
already asserts it fully, named here:

| fault | tests |
| --- | --- |
| 1. stream server dies mid-cry, comes back | `test_stream_server_dying_mid_cry_closes_the_episode_once` |
| 2. ffmpeg missing | `test_missing_ffmpeg_is_retried_logged_and_repaired`, `test_ffmpeg_vanishing_after_setup_is_survived`; `tests/engine/test_sources.py::test_ffmpeg_not_found` (reason and message); `test_runtime.py::test_backoff_doubles_to_a_minute` (1 s ... 60 s) |
| 3. microphone disappears | `test_pulseaudio_microphone_unplugged_and_back`, `test_portaudio_microphone_unplugged_and_back`; `tests/engine/test_sources.py::test_sounddevice_stream_closing_raises`, `::test_missing_alsa_device_is_device_not_found` |
| 4. inference slower than real time | `test_slow_inference_drops_windows_and_still_detects`; `test_runtime.py::test_backpressure_drops_oldest_windows` (exact count) |
| 5. corrupt model file | `test_corrupt_model_retries_and_loads_once_fixed`; `test_init.py::test_setup_retry_when_model_cannot_load` |
| 6. 20 reloads with real ffmpeg | `test_twenty_reloads_leak_no_process_thread_or_descriptor` |
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from datetime import timedelta
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import shutil
import struct
import sys
import threading
import time
import types
from typing import Any, Final
from unittest.mock import AsyncMock, patch

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
import psutil
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed_exact,
)

from custom_components.baby_monitor.const import (
    CONF_DEVICE,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DOMAIN,
    EVENT_BABY_MONITOR,
    SOURCE_MICROPHONE,
    SOURCE_URL,
)
from custom_components.baby_monitor.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.baby_monitor.engine.audio import decode_file
from custom_components.baby_monitor.engine.model import ModelMetadata
from custom_components.baby_monitor.runtime import MAX_PENDING_WINDOWS, load_model
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from tests.conftest import write_wav

from . import setup_integration
from .conftest import (
    RATE,
    FakeSource,
    Room,
    changes,
    log_lines,
    record_states,
    settle,
    silence,
    tone,
    wait_until,
)

CRYING = "binary_sensor.nursery_crying"
SOUND = "event.nursery_sound"
PACKAGE = "custom_components.baby_monitor"
RUNTIME = f"{PACKAGE}.runtime"
BLOCK_S = 0.1
HA_POOL_THREADS = ("SyncWorker", "ImportExecutor", "ThreadPoolExecutor")
NIGHT_LIGHT = {"input_boolean": {"night_light": {"name": "Night light"}}}


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Move the clock and run what became due (exactly: no rounding to half seconds)."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed_exact(hass)
    await settle(hass)


def ffmpeg_children() -> list[psutil.Process]:
    """List the ffmpeg processes this process started, running or not yet reaped."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):  # reaped meanwhile
            if child.name() == "ffmpeg":
                found.append(child)
    return found


async def assert_home_assistant_carries_on(hass: HomeAssistant) -> None:
    """Home Assistant is running and another integration's entity still obeys."""
    assert hass.state is CoreState.running
    await hass.services.async_call(
        "input_boolean",
        "turn_on",
        {"entity_id": "input_boolean.night_light"},
        blocking=True,
    )
    assert hass.states.get("input_boolean.night_light").state == STATE_ON


def url_entry(url: str) -> MockConfigEntry:
    """Make an entry for the nursery listened to through a stream URL or file."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        unique_id=f"url:{url}",
        data={CONF_SOURCE_TYPE: SOURCE_URL, CONF_URL: url},
    )


def wav_header() -> bytes:
    """Make a 16 kHz mono 16-bit WAV header whose length is unknown (a live stream)."""
    size = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16)
        + b"data"
        + struct.pack("<I", size)
    )


class LiveStream:
    """A baby cam on 127.0.0.1: a never-ending WAV over HTTP, `speed` times real time.

    Each connection hears `intro` once, then `loop` over and over. `kill` makes it die like a
    crashed server (connections cut, port closed); `start` brings it back on the same port.
    """

    def __init__(self, speed: float) -> None:
        """Describe the stream; nothing listens until `start`."""
        self.speed = speed
        self.intro = silence(0.0)
        self.loop = silence(1.0)
        self.port = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._open: set[asyncio.Transport] = set()

    @property
    def url(self) -> str:
        """Where ffmpeg finds the stream."""
        return f"http://127.0.0.1:{self.port}/nursery.wav"

    async def start(self) -> None:
        """Listen (on the same port as before, if any)."""
        app = web.Application()
        app.router.add_get("/nursery.wav", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def kill(self) -> None:
        """Die: cut every connection and stop listening."""
        for transport in self._open:
            transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _blocks(self) -> AsyncIterator[bytes]:
        """16-bit PCM in 0.1-s blocks, paced: the intro, then the loop for ever."""
        step = round(BLOCK_S * RATE)
        audio = self.intro
        while True:
            pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
            for offset in range(0, len(pcm), step):
                yield pcm[offset : offset + step].tobytes()
                await asyncio.sleep(BLOCK_S / self.speed)
            audio = self.loop

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await response.prepare(request)
        transport = request.transport
        assert transport is not None
        self._open.add(transport)
        try:
            await response.write(wav_header())
            async for chunk in self._blocks():
                await response.write(chunk)
        except ConnectionError:
            pass  # the listener went away, or we died
        finally:
            self._open.discard(transport)
        return response


@pytest.fixture
async def live_stream(socket_enabled: None) -> AsyncIterator[LiveStream]:
    """Serve a live stream at 5x real time on a free loopback port.

    The integration would hold a stream faster than real time back to real speed once it is
    ahead; these tests want the speed, so pacing is off.
    """
    stream = LiveStream(speed=5.0)
    await stream.start()
    with patch(f"{PACKAGE}.source.PACE_LEAD_S", math.inf):
        yield stream
    await stream.kill()


@pytest.fixture
async def ffmpeg_component(hass: HomeAssistant) -> None:
    """Set up Home Assistant's FFmpeg integration (it names the ffmpeg binary)."""
    assert await async_setup_component(hass, "ffmpeg", {})


# --- 1. The stream server dies mid-cry and comes back -------------------------------------


@pytest.mark.usefixtures("ffmpeg_component")
async def test_stream_server_dying_mid_cry_closes_the_episode_once(
    hass: HomeAssistant,
    live_stream: LiveStream,
    validation_clip: Callable[[str, str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real cry over HTTP; the server is killed mid-cry and restarted (real ffmpeg and model).

    Crying goes from on to unavailable, the episode ends with exactly one cry_stopped, and once
    the server is back (the room quiet now) the entities are live again and no event repeats.
    """
    caplog.set_level(logging.INFO)
    live_stream.intro = silence(2.0)
    live_stream.loop = decode_file(validation_clip("cry", "esc50"))
    entry = url_entry(live_stream.url)
    crying = record_states(hass, CRYING)
    sound = record_states(hass, SOUND)
    events = async_capture_events(hass, EVENT_BABY_MONITOR)

    with patch(f"{RUNTIME}.RECONNECT_MIN_S", 0.25):
        await setup_integration(hass, entry)
        runtime = entry.runtime_data.runtime
        await wait_until(hass, lambda: runtime.active["cry"], timeout=20)

        await live_stream.kill()
        await wait_until(
            hass,
            lambda: "Connection refused" in str(runtime.last_error),
            timeout=20,
        )
        assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
        assert [event.data["type"] for event in events] == [
            "cry_started",
            "cry_stopped",
        ]

        live_stream.intro, live_stream.loop = silence(0.0), silence(1.0)
        await live_stream.start()
        await wait_until(hass, lambda: runtime.available, timeout=20)
        scored = runtime.windows_scored
        await wait_until(hass, lambda: runtime.windows_scored >= scored + 3, timeout=20)

    assert live_stream.requests == 2  # one connection before the crash, one after
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert changes(crying) == [STATE_UNAVAILABLE, "off", "on", STATE_UNAVAILABLE, "off"]
    fired = {
        (state.state, state.attributes["event_type"])
        for state in sound
        if state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    }
    assert [event_type for _when, event_type in sorted(fired)] == [
        "cry_started",
        "cry_stopped",
    ]
    assert len(log_lines(caplog, "Lost audio")) == 1
    # the stream's origin, never its path
    shown = f"http://127.0.0.1:{live_stream.port}"
    assert log_lines(caplog, "is back") == [f"Audio from {shown} is back"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not ffmpeg_children()


# --- 2. ffmpeg missing ------------------------------------------------------------------


def install_ffmpeg(path: Path) -> None:
    """Put the system's ffmpeg at `path` (a link, as a package would)."""
    system = shutil.which("ffmpeg")
    assert system is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(system)


async def test_missing_ffmpeg_is_retried_logged_and_repaired(
    hass: HomeAssistant,
    wav_file: Path,
    tmp_path: Path,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    issue_registry: ir.IssueRegistry,
) -> None:
    """FFmpeg's binary path points at nothing: the monitor is unavailable and says why.

    One log line names ffmpeg and the path; retries back off 1, 2, 4, 8 s; after 5 minutes a
    repair issue carries the same reason; Home Assistant carries on; installing ffmpeg at that
    path brings the audio back and withdraws the issue.
    """
    caplog.set_level(logging.INFO)
    binary = tmp_path / "bin" / "ffmpeg"
    assert await async_setup_component(
        hass, "ffmpeg", {"ffmpeg": {"ffmpeg_bin": str(binary)}}
    )
    assert await async_setup_component(hass, "input_boolean", NIGHT_LIGHT)
    entry = url_entry(str(wav_file))
    await setup_integration(hass, entry)
    runtime = entry.runtime_data.runtime
    reason = f"ffmpeg is not installed (looked for '{binary}')"

    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert runtime.last_error == reason
    for gap in (1, 2, 4, 8):
        attempts = runtime.connections
        await tick(hass, freezer, gap - 0.5)
        assert runtime.connections == attempts
        await tick(hass, freezer, 0.5)
        assert runtime.connections == attempts + 1
    assert log_lines(caplog, "Lost audio") == [
        f"Lost audio in Nursery: {reason}; retrying"
    ]

    issue_id = f"source_down_{entry.entry_id}"
    await tick(hass, freezer, 300 - 15 - 1)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await tick(hass, freezer, 1)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders["error"] == reason
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["runtime"]["last_error"] == reason
    await assert_home_assistant_carries_on(hass)

    install_ffmpeg(binary)
    await tick(hass, freezer, 60)
    await wait_until(hass, lambda: runtime.available, timeout=10)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert log_lines(caplog, "is back") == [f"Audio from {wav_file} is back"]
    assert len(log_lines(caplog, "Lost audio")) == 1


async def test_ffmpeg_vanishing_after_setup_is_survived(
    hass: HomeAssistant,
    tmp_path: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The ffmpeg binary crashes and is uninstalled while listening; reinstalled, audio is back."""
    binary = tmp_path / "bin" / "ffmpeg"
    install_ffmpeg(binary)
    assert await async_setup_component(
        hass, "ffmpeg", {"ffmpeg": {"ffmpeg_bin": str(binary)}}
    )
    # a quiet room: played again from its start after the crash, it is not a replayed sound
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    quiet = write_wav(tmp_path / "quiet.wav", silence(30.0))
    entry = url_entry(str(quiet))
    await setup_integration(hass, entry)
    runtime = entry.runtime_data.runtime
    await wait_until(hass, lambda: runtime.available, timeout=10)
    (process,) = ffmpeg_children()

    binary.unlink()
    process.kill()
    await wait_until(hass, lambda: not runtime.available, timeout=10)
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert str(runtime.last_error).startswith(f"{quiet} ended after")
    await tick(hass, freezer, 1)
    assert runtime.last_error == f"ffmpeg is not installed (looked for '{binary}')"
    assert not ffmpeg_children()  # the crashed one was reaped

    install_ffmpeg(binary)
    await tick(hass, freezer, 2)
    await wait_until(hass, lambda: runtime.available, timeout=10)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert len(ffmpeg_children()) == 1


# --- 3. The microphone disappears -------------------------------------------------------


class PulseServer:
    """A user-mode PulseAudio server of our own, with a test-tone source as the nursery mic."""

    def __init__(self, runtime_dir: Path) -> None:
        """Describe the server; `start` runs it."""
        self.runtime_dir = runtime_dir
        self.address = f"unix:{runtime_dir / 'native'}"
        self._process: asyncio.subprocess.Process | None = None
        self._mic: str | None = None

    async def pactl(self, *args: str) -> str:
        """Run pactl against this server; its output."""
        process = await asyncio.create_subprocess_exec(
            "pactl",
            "--server",
            self.address,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(5):
            out, _err = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"pactl {' '.join(args)} exited {process.returncode}")
        return out.decode()

    async def start(self) -> None:
        """Run the server and wait until it answers."""
        self._process = await asyncio.create_subprocess_exec(
            "pulseaudio",
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "-n",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.runtime_dir / 'native'}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={
                **os.environ,
                "HOME": str(self.runtime_dir),
                "XDG_RUNTIME_DIR": str(self.runtime_dir),
            },
        )
        for _ in range(100):
            with contextlib.suppress(RuntimeError):
                await self.pactl("info")
                return
            await asyncio.sleep(0.05)
        raise AssertionError("PulseAudio did not start")

    async def plug_in(self) -> None:
        """Add the nursery microphone (a 440 Hz test tone at 16 kHz)."""
        self._mic = (
            await self.pactl(
                "load-module",
                "module-sine-source",
                "source_name=nursery_mic",
                "rate=16000",
                "frequency=440",
            )
        ).strip()

    async def unplug(self) -> None:
        """Remove the nursery microphone."""
        assert self._mic is not None
        await self.pactl("unload-module", self._mic)
        self._mic = None

    async def stop(self) -> None:
        """Stop the server (ours, by its process)."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            async with asyncio.timeout(5):
                await self._process.wait()


@pytest.fixture
async def pulse_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PulseServer]:
    """Run a PulseAudio server that ffmpeg (started by the monitor) talks to."""
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("PulseAudio is not installed")
    runtime_dir = tmp_path / "pulse"
    runtime_dir.mkdir(mode=0o700)
    server = PulseServer(runtime_dir)
    monkeypatch.setenv("PULSE_SERVER", server.address)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.usefixtures("ffmpeg_component")
async def test_pulseaudio_microphone_unplugged_and_back(
    hass: HomeAssistant, pulse_server: PulseServer
) -> None:
    """A PulseAudio microphone that stops existing: unavailable, last_error says so, recovers."""
    await pulse_server.plug_in()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        data={CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "pulse:nursery_mic"},
    )
    with patch(f"{RUNTIME}.RECONNECT_MIN_S", 0.1):
        await setup_integration(hass, entry)
        runtime = entry.runtime_data.runtime
        await wait_until(hass, lambda: runtime.available, timeout=15)
        assert hass.states.get(CRYING).state == STATE_OFF

        await pulse_server.unplug()
        await wait_until(
            hass,
            lambda: str(runtime.last_error).startswith("cannot open pulse:nursery_mic"),
            timeout=15,
        )
        assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        assert diagnostics["runtime"]["available"] is False
        # ffmpeg says no more than "nursery_mic: Input/output error" when the source is gone
        assert diagnostics["runtime"]["last_error"].startswith(
            "cannot open pulse:nursery_mic: "
        )
        assert not ffmpeg_children()  # each failed attempt was reaped

        await pulse_server.plug_in()
        await wait_until(hass, lambda: runtime.available, timeout=15)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert len(ffmpeg_children()) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not ffmpeg_children()


class NoFlags:
    """PortAudio's callback flags when nothing went wrong."""

    def __bool__(self) -> bool:
        """No flag is set."""
        return False


class FakePortAudio(types.ModuleType):
    """A `sounddevice` module with one USB microphone that can be unplugged."""

    class PortAudioError(Exception):
        """sounddevice.PortAudioError."""

    DEVICE: Final = {
        "index": 3,
        "name": "USB mic",
        "max_input_channels": 1,
        "default_samplerate": 16000.0,
    }

    def __init__(self) -> None:
        """Start with the microphone plugged in."""
        super().__init__("sounddevice")
        self.plugged = True
        self.streams: list[FakeInputStream] = []

    def query_devices(
        self, device: int | str | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Find the microphone by name, as PortAudio would (only while it is plugged in)."""
        if not self.plugged or device not in ("USB mic", 3):
            raise ValueError(f"No input device matching {device!r}")
        return dict(self.DEVICE)

    def check_input_settings(self, **kwargs: Any) -> None:
        """16 kHz mono is fine."""

    def InputStream(self, **kwargs: Any) -> FakeInputStream:  # noqa: N802 - sounddevice's name
        """Open a stream on the microphone."""
        stream = FakeInputStream(self, **kwargs)
        self.streams.append(stream)
        return stream


class FakeInputStream:
    """Calls back with 0.1 s of quiet noise every 10 ms from its own thread.

    When the microphone is unplugged, PortAudio finishes the stream by itself.
    """

    def __init__(self, portaudio: FakePortAudio, **kwargs: Any) -> None:
        """Remember the callbacks."""
        self.portaudio = portaudio
        self.callback = kwargs["callback"]
        self.finished_callback = kwargs["finished_callback"]
        self.frames = int(kwargs["blocksize"])
        self.closed = False
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-portaudio")

    def _run(self) -> None:
        noise = np.random.default_rng(0).normal(0, 0.01, (self.frames, 1))
        while not self._halt.wait(0.01) and self.portaudio.plugged:
            self.callback(noise.astype(np.float32), self.frames, None, NoFlags())
        self.finished_callback()

    def start(self) -> None:
        """Start calling back."""
        self._thread.start()

    def stop(self) -> None:
        """Stop calling back."""
        self._halt.set()
        self._thread.join()

    def close(self) -> None:
        """Release the stream."""
        self.closed = True


async def test_portaudio_microphone_unplugged_and_back(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PortAudio microphone unplugged while listening: unavailable, a clear last_error, recovers."""
    portaudio = FakePortAudio()
    monkeypatch.setitem(sys.modules, "sounddevice", portaudio)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        data={CONF_SOURCE_TYPE: SOURCE_MICROPHONE, CONF_DEVICE: "sounddevice:USB mic"},
    )
    with patch(f"{RUNTIME}.RECONNECT_MIN_S", 0.05):
        await setup_integration(hass, entry)
        runtime = entry.runtime_data.runtime
        await wait_until(hass, lambda: runtime.available, timeout=10)

        portaudio.plugged = False
        await wait_until(hass, lambda: runtime.connections >= 3, timeout=10)
        assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        assert diagnostics["runtime"]["last_error"] == (
            "no audio input device 'USB mic': No input device matching 'USB mic'"
        )
        assert portaudio.streams[0].closed

        portaudio.plugged = True
        await wait_until(hass, lambda: runtime.available, timeout=10)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert len(portaudio.streams) == 2


# --- 4. Inference slower than real time -------------------------------------------------


class LoudModel:
    """A stand-in model that hears a cry in any window holding loud sound, slowly."""

    def __init__(self, meta: ModelMetadata, delay_s: float) -> None:
        """Take `delay_s` per window (blocking, like a real model on a slow host)."""
        self.meta = meta
        self.backend = "loud"
        self.delay_s = delay_s

    def new_cache(self) -> None:
        """Keep no patch rows: this stand-in reads the window's features itself."""

    def patch_ends(self, end: int) -> list[int]:
        """One stand-in patch per window."""
        return [end]

    def window_rows(
        self, features: npt.NDArray[np.float32], **_: object
    ) -> npt.NDArray[np.float32]:
        """One row: the window's loudest log-mel value."""
        return np.array([[features.max()]], np.float32)

    def score_rows(
        self,
        rows: npt.NDArray[np.float32],
        room: object = None,
        **_: object,
    ) -> npt.NDArray[np.float32]:
        """Cry if any frame is loud (log-mel silence is about -1.4, a 0.5 tone about 1.7)."""
        time.sleep(self.delay_s)
        return np.array([0.99 if rows.max() > 1.0 else 0.0, 0.0], np.float32)


class PacedSource(FakeSource):
    """Plays silence at `speed` times real time until `ready()`, then its audio, then holds."""

    def __init__(
        self, audio: npt.NDArray[np.float32], speed: float, ready: Callable[[], bool]
    ) -> None:
        """Describe the source."""
        super().__init__(audio)
        self.speed = speed
        self.ready = ready

    async def blocks(self) -> AsyncIterator[npt.NDArray[np.float32]]:
        """Yield 0.1-s blocks on a wall-clock schedule of `speed` times real time."""
        self.read = True
        step = round(BLOCK_S * RATE)
        started = time.monotonic()
        sent = 0

        def paced(block: npt.NDArray[np.float32]) -> float:
            nonlocal sent
            sent += 1
            return max(0.0, started + sent * BLOCK_S / self.speed - time.monotonic())

        quiet = silence(BLOCK_S)
        while not self.ready() and not self._stop.is_set():
            yield quiet
            await asyncio.sleep(paced(quiet))
        for offset in range(0, len(self.audio), step):
            if self._stop.is_set():
                return
            yield self.audio[offset : offset + step]
            await asyncio.sleep(paced(self.audio))
        self.drained.set()
        await self._stop.wait()


async def test_slow_inference_drops_windows_and_still_detects(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Inference 2.5 times slower than audio arrives: memory stays bounded, drops are counted.

    The model takes 0.1 s per window while a window's worth of audio arrives every 0.04 s. At
    most MAX_PENDING_WINDOWS windows ever wait; the dropped ones are in the diagnostics; a cry
    that starts after windows were dropped is still reported, start and stop.
    """
    source = PacedSource(
        np.concatenate([tone(4.0), silence(12.0)]),
        speed=25.0,
        ready=lambda: mock_config_entry.runtime_data.runtime.windows_dropped >= 3,
    )
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    pending: list[int] = []
    dropped_at_start: list[int] = []

    def load(meta: ModelMetadata, backend: str = "auto") -> LoudModel:
        return LoudModel(meta, delay_s=0.1)

    with (
        patch(f"{RUNTIME}.load_runtime", side_effect=load),
        patch(f"{RUNTIME}.async_create_source", AsyncMock(return_value=source)),
    ):
        await setup_integration(hass, mock_config_entry)
        runtime = mock_config_entry.runtime_data.runtime
        runtime.async_add_audio_listener(
            lambda _block: pending.append(runtime.diagnostics()["windows_pending"])
        )
        runtime.async_add_event_listener(
            lambda event: dropped_at_start.append(runtime.windows_dropped)
        )
        await wait_until(
            hass,
            lambda: source.drained.is_set() and runtime.idle,
            timeout=30,
        )

    assert max(pending) == MAX_PENDING_WINDOWS
    windows = int(runtime.pipeline.stream.seconds - 7.0) + 1
    assert runtime.windows_dropped > 0
    assert runtime.windows_scored + runtime.windows_dropped == windows
    diagnostics = await async_get_config_entry_diagnostics(hass, mock_config_entry)
    assert diagnostics["runtime"]["windows_dropped"] == runtime.windows_dropped
    assert diagnostics["runtime"]["windows_pending"] == 0
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert dropped_at_start[0] >= 3  # the cry came after windows had been dropped


# --- 5. A corrupt model file ------------------------------------------------------------


def truncate(json_path: Path) -> None:
    """Cut the .tflite in half (an interrupted download)."""
    tflite = json_path.with_suffix(".tflite")
    content = tflite.read_bytes()
    tflite.write_bytes(content[: len(content) // 2])


def garbage_with_matching_sha(json_path: Path) -> None:
    """Fill the .tflite with random bytes, the metadata's sha256 updated to match them."""
    tflite = json_path.with_suffix(".tflite")
    content = np.random.default_rng(7).bytes(tflite.stat().st_size)
    tflite.write_bytes(content)
    meta = json.loads(json_path.read_text())
    meta["sha256"] = hashlib.sha256(content).hexdigest()
    json_path.write_text(json.dumps(meta))


def wrong_sha(json_path: Path) -> None:
    """Leave the .tflite whole but make the metadata's sha256 disagree (a mismatched pair)."""
    meta = json.loads(json_path.read_text())
    meta["sha256"] = "0" * 64
    json_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (truncate, "does not match its metadata"),
        (garbage_with_matching_sha, "cannot load model"),
        (wrong_sha, f"expected {'0' * 64}"),
    ],
    ids=["truncated", "garbage", "sha_mismatch"],
)
async def test_corrupt_model_retries_and_loads_once_fixed(
    hass: HomeAssistant,
    room: Room,
    model_copy: Path,
    corrupt: Callable[[Path], None],
    problem: str,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A corrupt model: repair issue, one clear log line, SETUP_RETRY, HA carries on; fixed, it loads."""
    good = {path: path.read_bytes() for path in model_copy.parent.iterdir()}
    corrupt(model_copy)
    assert await async_setup_component(hass, "input_boolean", NIGHT_LIGHT)
    issue_id = f"model_error_{room.entry.entry_id}"

    with (
        patch(f"{RUNTIME}.DEFAULT_MODEL", model_copy),
        patch(f"{PACKAGE}.load_model", wraps=load_model) as loads,
    ):
        await room.async_start()
        assert room.entry.state is ConfigEntryState.SETUP_RETRY
        issue = issue_registry.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert problem in issue.translation_placeholders["error"]
        await assert_home_assistant_carries_on(hass)

        await tick(hass, freezer, 600)  # retried, still corrupt
        await wait_until(
            hass,
            lambda: (
                loads.call_count == 2
                and room.entry.state is ConfigEntryState.SETUP_RETRY
            ),
        )
        assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
        (logged,) = [
            record
            for record in caplog.records
            if record.name.startswith("custom_components.baby_monitor")
            and record.levelno >= logging.WARNING
        ]
        assert str(model_copy.with_suffix(".tflite")) in logged.getMessage()
        assert problem in logged.getMessage()

        for path, content in good.items():
            path.write_bytes(content)
        await tick(hass, freezer, 600)
        await wait_until(hass, lambda: room.entry.state is ConfigEntryState.LOADED)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    model = room.runtime.model
    assert model.meta.model_path == model_copy.with_suffix(".tflite")


# --- 6. Twenty reloads with a real ffmpeg source ----------------------------------------


def descriptors() -> int:
    """Open file descriptors of this process."""
    return sum(1 for _fd in Path("/proc/self/fd").iterdir())


def foreign_threads(before: set[threading.Thread]) -> list[str]:
    """Live threads started since `before` that are not Home Assistant's worker pools."""
    return [
        thread.name
        for thread in set(threading.enumerate()) - before
        if thread.is_alive() and not thread.name.startswith(HA_POOL_THREADS)
    ]


@pytest.mark.usefixtures("ffmpeg_component")
async def test_twenty_reloads_leak_no_process_thread_or_descriptor(
    hass: HomeAssistant, wav_file: Path
) -> None:
    """Reloading 20 times over a real ffmpeg leaves one ffmpeg, no new thread, no new descriptor."""
    entry = url_entry(str(wav_file))
    await setup_integration(hass, entry)
    await wait_until(hass, lambda: entry.runtime_data.runtime.available, timeout=10)
    threads = set(threading.enumerate())
    fds = descriptors()
    pids = {process.pid for process in ffmpeg_children()}
    assert len(pids) == 1

    for _ in range(20):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await wait_until(
            hass,
            lambda: (
                entry.state is ConfigEntryState.LOADED
                and entry.runtime_data.runtime.available
            ),
            timeout=10,
        )
        (process,) = ffmpeg_children()  # the old one is gone, zombies included
        pids.add(process.pid)

    assert len(pids) == 21
    assert foreign_threads(threads) == []
    assert descriptors() <= fds + 2
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert ffmpeg_children() == []
    assert foreign_threads(threads) == []
    assert descriptors() <= fds


# --- 7. A finite file behind a stream URL ---------------------------------------------------


class StaticFiles:
    """A plain web server on 127.0.0.1 serving the files of a folder as they are."""

    def __init__(self, root: Path) -> None:
        """Serve `root`; nothing listens until `start`."""
        self.root = root
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_static("/", self.root)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.mark.usefixtures("ffmpeg_component")
async def test_file_served_over_http_is_heard_once_at_real_speed(
    hass: HomeAssistant,
    tmp_path: Path,
    validation_clip: Callable[[str, str], Path],
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A static web server's recording with a cry (real ffmpeg and model).

    It is read at real speed (not in a blink), its cry is one episode, and the reconnects that
    follow wait longer and longer and replay nothing.
    """
    cry = decode_file(validation_clip("cry", "esc50"))
    program = np.concatenate([silence(1.0), cry, cry, silence(1.0)])
    write_wav(tmp_path / "program.wav", program)
    server = StaticFiles(tmp_path)
    await server.start()
    entry = url_entry(f"http://127.0.0.1:{server.port}/program.wav")
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    lead_s = 1.0
    caplog.set_level(logging.DEBUG, logger=PACKAGE)
    try:
        with (
            patch(f"{PACKAGE}.source.PACE_LEAD_S", lead_s),
            patch(f"{RUNTIME}.RECONNECT_MIN_S", 0.25),
        ):
            began = time.monotonic()
            await setup_integration(hass, entry)
            runtime = entry.runtime_data.runtime
            await wait_until(hass, lambda: runtime.connections >= 2, timeout=60)
            took = time.monotonic() - began
            await wait_until(hass, lambda: runtime.connections >= 4, timeout=20)
    finally:
        await server.stop()
    assert took >= program.size / RATE - lead_s - 0.5
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert "plays the same recording again" in str(runtime.last_error)
    waits = [line.rsplit(" in ", 1)[1] for line in log_lines(caplog, "Reconnecting")]
    assert waits[:3] == ["0.25 s", "0.5 s", "1 s"]
    assert await hass.config_entries.async_unload(entry.entry_id)
