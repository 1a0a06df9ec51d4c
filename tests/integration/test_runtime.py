"""The runtime: reconnect with backoff, availability, logs, repair issues, back-pressure, pause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import logging
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
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

from . import setup_integration
from .conftest import (
    ScriptedRuntime,
    SourceFactory,
    silence,
    tone,
    wait_processed,
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
    """Log messages of the integration containing text."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.baby_monitor")
        and text in record.getMessage()
    ]


@pytest.mark.usefixtures("scripted_model")
async def test_source_down_then_back(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing source makes entities unavailable, logged once; recovery is logged once too."""
    caplog.set_level(logging.INFO)
    source_factory.start_error = DOWN
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert hass.states.get(LEVEL).state == STATE_UNAVAILABLE
    assert hass.states.get(LISTENING).state == STATE_ON  # can always be switched

    for seconds in (1, 2, 4):
        await tick(hass, freezer, seconds)
    assert len(source_factory.created) == 4
    assert all(source.stopped for source in source_factory.created)
    assert log_lines(caplog, "Lost audio") == [
        (
            "Lost audio in Nursery: "
            "cannot open rtsp://192.0.2.10:554: Connection refused; retrying"
        )
    ]

    source_factory.start_error = None
    source_factory.audio = silence(1.0)
    await tick(hass, freezer, 8)
    assert hass.states.get(CRYING).state == STATE_OFF
    assert log_lines(caplog, "is back") == ["Audio from rtsp://192.0.2.10:554 is back"]
    assert "hunter2" not in caplog.text
    assert "s3cr3t" not in caplog.text


@pytest.mark.usefixtures("scripted_model")
async def test_backoff_doubles_to_a_minute(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Reconnects wait 1, 2, 4 ... seconds, at most 60."""
    source_factory.start_error = DOWN
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    for _ in range(260):
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(source_factory.calls, source_factory.calls[1:], strict=False)
    ]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.usefixtures("scripted_model")
async def test_backoff_resets_after_a_steady_connection(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A stream that brought audio for a minute and then ended is retried after a second."""
    source_factory.audio = silence(1.0)
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    for _ in range(2):
        await tick(hass, freezer, 61)
        await source_factory.last.stop()  # the camera drops the stream
        await settle(hass)
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(source_factory.calls, source_factory.calls[1:], strict=False)
    ]
    assert gaps == [62, 62]


@pytest.mark.usefixtures("scripted_model")
async def test_stream_ending_quickly_again_and_again_backs_off(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Audio that ends within a minute each time does not reset the wait: 1, 2, 4 ... 60 s."""
    source_factory.audio = silence(1.5)
    source_factory.end = "fail"
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    for _ in range(200):
        await tick(hass, freezer, 1)
    gaps = [
        round(b - a)
        for a, b in zip(source_factory.calls, source_factory.calls[1:], strict=False)
    ]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize("script", [[(0.99, 0.0)] * 1000])
async def test_recording_played_again_is_not_heard_again(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
    scripted_model: Callable[[], ScriptedRuntime],
) -> None:
    """A file behind a URL starts over on every reconnect: its cry is one episode, not many.

    A new recording at the same address (or a live stream) is heard again.
    """
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    source_factory.audio = tone(8.5)
    await setup_integration(hass, mock_config_entry)
    runtime = mock_config_entry.runtime_data.runtime
    await wait_processed(hass, runtime, source_factory.last)
    source_factory.end = "fail"
    await source_factory.last.stop()  # the file is over
    await settle(hass)
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    scored = runtime.windows_scored

    for seconds in (1, 2, 4, 8):
        await tick(hass, freezer, seconds)
    assert len(source_factory.created) == 5
    assert runtime.windows_scored == scored
    assert len(events) == 2
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert "plays the same recording again from its start" in str(runtime.last_error)

    source_factory.audio = tone(8.5, freq=330.0)  # the file was replaced
    source_factory.end = "hold"
    await tick(hass, freezer, 16)
    await wait_processed(hass, runtime, source_factory.last)
    await source_factory.last.stop()
    await settle(hass)
    assert runtime.windows_scored > scored
    assert [event.data["type"] for event in events][2:] == [
        "cry_started",
        "cry_stopped",
    ]


@pytest.mark.usefixtures("scripted_model")
async def test_repair_issue_after_five_minutes_down(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A source down 5 minutes raises a repair issue; audio coming back deletes it."""
    issue_id = f"source_down_{mock_config_entry.entry_id}"
    source_factory.start_error = DOWN
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
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

    source_factory.start_error = None
    source_factory.audio = silence(1.0)
    await tick(hass, freezer, 60)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(CRYING).state == STATE_OFF


@pytest.mark.usefixtures("scripted_model")
async def test_unload_withdraws_repair_issue(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Unloading a monitor whose source is down leaves no issue and no timer behind."""
    source_factory.start_error = DOWN
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    await tick(hass, freezer, 300)
    assert issue_registry.issues
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert not issue_registry.issues


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [CRY_THEN_QUIET])
async def test_stream_ending_closes_the_episode(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    scripted_model: Callable[[], ScriptedRuntime],
) -> None:
    """A stream that ends while the baby cries fires cry_stopped and goes unavailable."""
    source_factory.audio = silence(8.5)
    source_factory.end = "fail"
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    await setup_integration(hass, mock_config_entry)
    await wait_until(hass, lambda: len(events) == 2)
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert mock_config_entry.runtime_data.runtime.last_error == "fake stream ended"


async def test_backpressure_drops_oldest_windows(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    scripted_model: Callable[[], ScriptedRuntime],
) -> None:
    """When inference falls behind, the oldest pending windows are dropped and counted."""
    source_factory.audio = silence(7.0 + 40.0)
    with patch("custom_components.baby_monitor.runtime.MAX_PENDING_WINDOWS", 3):
        await setup_integration(hass, mock_config_entry)
        runtime = mock_config_entry.runtime_data.runtime
        scripted_model().delay_s = 0.02
        peak = 0

        def drained() -> bool:
            nonlocal peak
            peak = max(peak, len(runtime._pending))
            return (
                source_factory.last.drained.is_set()
                and not runtime._pending
                and not runtime._lock.locked()
            )

        await wait_until(hass, drained)
    assert peak <= 3
    assert runtime.windows_dropped > 0
    assert runtime.windows_scored + runtime.windows_dropped == 41
    assert runtime.diagnostics()["windows_dropped"] == runtime.windows_dropped


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [CRY_THEN_QUIET])
async def test_listening_switch_pauses_and_resumes(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    scripted_model: Callable[[], ScriptedRuntime],
) -> None:
    """Off closes the source and ends an ongoing cry; on opens a new source."""
    source_factory.audio = silence(8.5)
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    await setup_integration(hass, mock_config_entry)
    runtime = mock_config_entry.runtime_data.runtime
    await wait_processed(hass, runtime, source_factory.last)
    assert hass.states.get(CRYING).state == STATE_ON

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await wait_until(hass, lambda: source_factory.last.stopped and len(events) == 2)
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert hass.states.get(LISTENING).state == STATE_OFF
    assert hass.states.get(CRYING).state == STATE_OFF
    assert hass.states.get(LEVEL).state == STATE_UNKNOWN
    assert len(source_factory.created) == 1

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await wait_until(
        hass,
        lambda: (
            len(source_factory.created) == 2 and source_factory.last.drained.is_set()
        ),
    )
    assert hass.states.get(LISTENING).state == STATE_ON
    assert runtime.listening


@pytest.mark.usefixtures("scripted_model")
async def test_pausing_a_down_source_withdraws_its_issue(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A paused monitor is off on purpose: available, no reconnects, no repair issue."""
    source_factory.start_error = DOWN
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    await tick(hass, freezer, 300)
    assert issue_registry.issues
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await settle(hass)
    assert not issue_registry.issues
    assert hass.states.get(CRYING).state == STATE_OFF
    attempts = len(source_factory.created)
    await tick(hass, freezer, 600)
    assert len(source_factory.created) == attempts


@pytest.mark.usefixtures("scripted_model")
async def test_listening_off_is_restored(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
) -> None:
    """A monitor paused before a restart stays paused and opens no source."""
    mock_restore_cache(hass, [State(LISTENING, STATE_OFF)])
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    assert hass.states.get(LISTENING).state == STATE_OFF
    assert not mock_config_entry.runtime_data.runtime.listening
    assert source_factory.created == []
    assert hass.states.get(CRYING).state == STATE_OFF


@pytest.mark.usefixtures("scripted_model")
async def test_unexpected_error_is_retried(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bug in a source does not end monitoring: it reads as down and is retried."""
    source_factory.start_error = RuntimeError("boom")  # type: ignore[assignment]
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    assert (
        mock_config_entry.runtime_data.runtime.last_error
        == "unexpected error: RuntimeError('boom')"
    )
    await tick(hass, freezer, 1)
    assert len(source_factory.created) == 2


@pytest.mark.usefixtures("scripted_model")
async def test_stream_that_just_ends_is_retried(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A stream that ends without an error (a file, a server closing) counts as down."""
    source_factory.audio = silence(0.5)
    source_factory.end = "end"
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    runtime = mock_config_entry.runtime_data.runtime
    assert not runtime.available
    assert runtime.last_error == "rtsp://192.0.2.10:554 ended"
    await tick(hass, freezer, 1)
    assert len(source_factory.created) == 2


@pytest.mark.usefixtures("scripted_model")
async def test_pause_while_connecting_reads_nothing(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    source_factory: SourceFactory,
) -> None:
    """Pausing while the source is still opening closes it without reading any audio."""
    source_factory.audio = silence(1.0)
    source_factory.start_gate = gate = asyncio.Event()
    await setup_integration(hass, mock_config_entry)
    await settle(hass)
    source = source_factory.last
    assert source.started
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    gate.set()
    await settle(hass)
    assert source.stopped
    assert not source.read
    assert len(source_factory.created) == 1
