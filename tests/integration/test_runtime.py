"""The runtime: reconnect with backoff, availability, logs, repair issues, back-pressure, pause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    mock_restore_cache,
)

from custom_components.baby_monitor.const import DOMAIN, EVENT_BABY_MONITOR
from custom_components.baby_monitor.engine.sources import SourceError
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import issue_registry as ir

from .conftest import (
    Room,
    ScriptedRuntime,
    log_lines,
    settle,
    silence,
    tick,
    tone,
    wait_until,
)

CRYING = "binary_sensor.nursery_crying"
LEVEL = "sensor.nursery_sound_level"
LISTENING = "switch.nursery_listening"
DOWN = SourceError(
    "cannot_connect",
    "cannot open rtsp://192.0.2.10:554: Connection refused",
)

CRY_THEN_QUIET = [(0.99, 0.0)] * 3 + [(0.0, 0.0)] * 30


@pytest.fixture
async def cut_off_room(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> Room:
    """Set the nursery up, under the test's clock, with a source that cannot be opened."""
    listening_room.sources.start_error = DOWN
    await listening_room.async_start()
    await settle(hass)
    return listening_room


async def test_source_down_then_back(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing source makes entities unavailable, logged once; recovery is logged once too."""
    caplog.set_level(logging.INFO)
    listening_room.sources.start_error = DOWN
    await listening_room.async_start()
    await settle(hass)
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert hass.states.get(LEVEL).state == STATE_UNAVAILABLE
    assert hass.states.get(LISTENING).state == STATE_ON  # can always be switched

    for seconds in (1, 2, 4):
        await tick(hass, freezer, seconds)
    assert len(listening_room.sources.created) == 4
    assert all(source.stopped for source in listening_room.sources.created)
    assert log_lines(caplog, "Lost audio") == [
        (
            "Lost audio in Nursery: "
            "cannot open rtsp://192.0.2.10:554: Connection refused; retrying"
        )
    ]

    listening_room.sources.start_error = None
    listening_room.sources.audio = silence(1.0)
    await tick(hass, freezer, 8)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert log_lines(caplog, "is back") == ["Audio from rtsp://192.0.2.10:554 is back"]
    assert "hunter2" not in caplog.text
    assert "s3cr3t" not in caplog.text


async def test_backoff_doubles_to_a_minute(
    hass: HomeAssistant,
    cut_off_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Reconnects wait 1, 2, 4 ... seconds, at most 60."""
    for _ in range(260):
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(
            cut_off_room.sources.calls, cut_off_room.sources.calls[1:], strict=False
        )
    ]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_backoff_resets_after_a_steady_connection(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A stream that brought audio for a minute and then ended is retried after a second."""
    await listening_room.async_start(silence(1.0))
    await settle(hass)
    for _ in range(2):
        await tick(hass, freezer, 61)
        await listening_room.sources.last.stop()  # the camera drops the stream
        await settle(hass)
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(
            listening_room.sources.calls, listening_room.sources.calls[1:], strict=False
        )
    ]
    assert gaps == [62, 62]


async def test_stream_ending_quickly_again_and_again_backs_off(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Audio that ends within a minute each time does not reset the wait: 1, 2, 4 ... 60 s."""
    listening_room.sources.end = "fail"
    await listening_room.async_start(silence(1.5))
    await settle(hass)
    for _ in range(200):
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(
            listening_room.sources.calls, listening_room.sources.calls[1:], strict=False
        )
    ]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("script", [[(0.99, 0.0)] * 1000])
async def test_recording_played_again_is_not_heard_again(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A file behind a URL starts over on every reconnect: its cry is one episode, not many.

    A new recording at the same address (or a live stream) is heard again.
    """
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    runtime = await listening_room.async_listen(tone(8.5))
    listening_room.sources.end = "fail"
    await listening_room.sources.last.stop()  # the file is over
    await settle(hass)
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    scored = runtime.windows_scored

    for seconds in (1, 2, 4, 8):
        await tick(hass, freezer, seconds)
    assert len(listening_room.sources.created) == 5
    assert runtime.windows_scored == scored
    assert len(events) == 2
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert "plays the same recording again from its start" in str(runtime.last_error)

    listening_room.sources.audio = tone(8.5, freq=330.0)  # the file was replaced
    listening_room.sources.end = "hold"
    await tick(hass, freezer, 16)
    await listening_room.async_heard()
    await listening_room.sources.last.stop()
    await settle(hass)
    assert runtime.windows_scored > scored
    assert [event.data["type"] for event in events][2:] == [
        "cry_started",
        "cry_stopped",
    ]


async def test_repair_issue_after_five_minutes_down(
    hass: HomeAssistant,
    cut_off_room: Room,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A source down 5 minutes raises a repair issue; audio coming back deletes it."""
    issue_id = f"source_down_{cut_off_room.entry.entry_id}"
    await tick(hass, freezer, 299)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await tick(hass, freezer, 1)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "source_down"
    assert issue.translation_placeholders == {
        "room": "Nursery",
        "source": "rtsp://192.0.2.10:554",
        "error": "cannot open rtsp://192.0.2.10:554: Connection refused",
        "minutes": "5",
    }

    cut_off_room.sources.start_error = None
    cut_off_room.sources.audio = silence(1.0)
    await tick(hass, freezer, 60)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(CRYING).state == STATE_OFF


async def test_unload_withdraws_repair_issue(
    hass: HomeAssistant,
    cut_off_room: Room,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Unloading a monitor whose source is down leaves no issue and no timer behind."""
    await tick(hass, freezer, 300)
    assert issue_registry.issues
    assert await hass.config_entries.async_unload(cut_off_room.entry.entry_id)
    assert not issue_registry.issues


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [CRY_THEN_QUIET])
async def test_stream_ending_closes_the_episode(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """A stream that ends while the baby cries fires cry_stopped and goes unavailable."""
    listening_room.sources.audio = silence(8.5)
    listening_room.sources.end = "fail"
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    await listening_room.async_start()
    await wait_until(hass, lambda: len(events) == 2)
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert listening_room.runtime.last_error == "fake stream ended"


async def test_backpressure_drops_oldest_windows(
    hass: HomeAssistant,
    listening_room: Room,
    scripted_model: Callable[[], ScriptedRuntime],
) -> None:
    """When inference falls behind, the oldest pending windows are dropped and counted."""
    with patch("custom_components.baby_monitor.runtime.MAX_PENDING_WINDOWS", 3):
        await listening_room.async_start(silence(7.0 + 40.0))
        runtime = listening_room.runtime
        scripted_model().delay_s = 0.02
        peak = 0

        def drained() -> bool:
            nonlocal peak
            peak = max(peak, runtime.diagnostics()["windows_pending"])
            return listening_room.sources.last.drained.is_set() and runtime.idle

        await wait_until(hass, drained)
    assert peak <= 3
    assert runtime.windows_dropped > 0
    assert runtime.windows_scored + runtime.windows_dropped == 41
    assert runtime.diagnostics()["windows_dropped"] == runtime.windows_dropped


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [CRY_THEN_QUIET])
async def test_listening_switch_pauses_and_resumes(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """Off closes the source and ends an ongoing cry; on opens a new source."""
    listening_room.sources.audio = silence(8.5)
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    runtime = await listening_room.async_listen()
    assert hass.states.get(CRYING).state == STATE_ON

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await wait_until(
        hass, lambda: listening_room.sources.last.stopped and len(events) == 2
    )
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert hass.states.get(LISTENING).state == STATE_OFF
    assert hass.states.get(CRYING).state == STATE_OFF
    assert hass.states.get(LEVEL).state == STATE_UNKNOWN
    assert len(listening_room.sources.created) == 1

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await wait_until(
        hass,
        lambda: (
            len(listening_room.sources.created) == 2
            and listening_room.sources.last.drained.is_set()
        ),
    )
    assert hass.states.get(LISTENING).state == STATE_ON
    assert runtime.listening


async def test_pausing_a_down_source_withdraws_its_issue(
    hass: HomeAssistant,
    cut_off_room: Room,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A paused monitor is off on purpose: available, no reconnects, no repair issue."""
    await tick(hass, freezer, 300)
    assert issue_registry.issues
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await settle(hass)
    assert not issue_registry.issues
    assert hass.states.get(CRYING).state == STATE_OFF
    attempts = len(cut_off_room.sources.created)
    await tick(hass, freezer, 600)
    assert len(cut_off_room.sources.created) == attempts


async def test_listening_off_is_restored(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """A monitor paused before a restart stays paused and opens no source."""
    mock_restore_cache(hass, [State(LISTENING, STATE_OFF)])
    await listening_room.async_start()
    await settle(hass)
    assert hass.states.get(LISTENING).state == STATE_OFF
    assert not listening_room.runtime.listening
    assert listening_room.sources.created == []
    assert hass.states.get(CRYING).state == STATE_OFF


async def test_unexpected_error_is_retried(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bug in a source does not end monitoring: it reads as down and is retried."""
    listening_room.sources.start_error = RuntimeError("boom")  # type: ignore[assignment]
    await listening_room.async_start()
    await settle(hass)
    assert listening_room.runtime.last_error == "unexpected error: RuntimeError('boom')"
    await tick(hass, freezer, 1)
    assert len(listening_room.sources.created) == 2


async def test_stream_that_just_ends_is_retried(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A stream that ends without an error (a file, a server closing) counts as down."""
    listening_room.sources.end = "end"
    await listening_room.async_start(silence(0.5))
    await settle(hass)
    runtime = listening_room.runtime
    assert not runtime.available
    assert runtime.last_error == "rtsp://192.0.2.10:554 ended"
    await tick(hass, freezer, 1)
    assert len(listening_room.sources.created) == 2


async def test_pause_while_connecting_reads_nothing(
    hass: HomeAssistant,
    listening_room: Room,
) -> None:
    """Pausing while the source is still opening closes it without reading any audio."""
    listening_room.sources.start_gate = gate = asyncio.Event()
    await listening_room.async_start(silence(1.0))
    await settle(hass)
    source = listening_room.sources.last
    assert source.started
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    gate.set()
    await settle(hass)
    assert source.stopped
    assert not source.read
    assert len(listening_room.sources.created) == 1
