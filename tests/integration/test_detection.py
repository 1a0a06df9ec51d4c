"""Entities driven by audio through the real engine: states, events, bus events, sensors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.baby_monitor.const import (
    CONF_CONFIRM_S,
    CONF_HOP_S,
    EVENT_BABY_MONITOR,
)
from custom_components.baby_monitor.engine.audio import decode_file
from custom_components.baby_monitor.engine.detector import OFFSET_FILL, ONSET_FILL
from homeassistant.const import (
    EVENT_STATE_REPORTED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant, State, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .conftest import Room, changes, record_states, silence, tone, wait_until

CRYING = "binary_sensor.nursery_crying"
LAUGHING = "binary_sensor.nursery_laughing"
SOUND = "event.nursery_sound"
LEVEL = "sensor.nursery_sound_level"
CRY_PROBABILITY = "sensor.nursery_cry_probability"


def transitions(states: list[State]) -> list[tuple[str, str]]:
    """List (entity_id, state) each time an entity's state changes value, in order."""
    shown: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for state in states:
        if shown.get(state.entity_id) != state.state:
            shown[state.entity_id] = state.state
            found.append((state.entity_id, state.state))
    return found


@pytest.mark.usefixtures("no_drops")
async def test_shipped_model_hears_a_real_cry(
    hass: HomeAssistant,
    room: Room,
    validation_clip: Callable[[str, str], Path],
    device_registry: dr.DeviceRegistry,
) -> None:
    """A real cry clip (never trained on) turns crying on, then off after it ends.

    The cry (7 s of Donate-a-cry) comes after more than a window of silence, so that its
    first window above threshold is the one that heard its start.
    """
    cry = decode_file(validation_clip("cry", "donateacry"))
    crying = record_states(hass, CRYING)
    bus_events = async_capture_events(hass, EVENT_BABY_MONITOR)

    runtime = await room.async_listen(
        np.concatenate([silence(8.0), cry, silence(15.0)])
    )

    assert changes(crying) == [
        STATE_UNAVAILABLE,  # until the first audio arrives
        STATE_OFF,
        STATE_ON,
        STATE_OFF,
    ]
    cry_events = [
        event.data for event in bus_events if event.data["type"].startswith("cry")
    ]
    assert [event["type"] for event in cry_events] == ["cry_started", "cry_stopped"]
    device = device_registry.async_get_device(
        identifiers={("baby_monitor", room.entry.entry_id)}
    )
    assert device is not None
    assert all(event["device_id"] == device.id for event in cry_events)
    assert cry_events[0]["confidence"] >= runtime.settings.detectors["cry"].threshold
    # the cry's own length (7 s), not the ~11.5 s its 7-s windows stay above threshold
    # one clip: models/lags.py finds the middle half of cries' duration errors in -2.4…+0.3 s
    assert cry_events[1]["duration"] == pytest.approx(len(cry) / 16000, abs=1.5)
    assert runtime.windows_dropped == 0


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    "script",
    [
        # window:  1-2 quiet, 3-12 cry, 13-16 quiet (hold 3 s), 17-18 laughter, then quiet
        [(0.1, 0.0)] * 2
        + [(0.99, 0.1)]
        + [(0.97, 0.2)] * 8
        + [(0.98, 0.1)]
        + [(0.1, 0.0)] * 4
        + [(0.2, 0.99), (0.1, 0.96)]
        + [(0.0, 0.0)] * 6
    ],
)
async def test_event_order_and_data(hass: HomeAssistant, listening_room: Room) -> None:
    """Events come in order, with confidence and the sound's own duration, on the entity and bus.

    A sound is timed from its estimated start (before its first window above threshold ends)
    to its estimated end (after its last window above threshold starts), not by its windows.
    """
    changes = record_states(hass, CRYING, LAUGHING)
    sound = record_states(hass, SOUND)
    bus_events = async_capture_events(hass, EVENT_BABY_MONITOR)

    await listening_room.async_listen(silence(7.0 + 24.0))

    fired = [
        (
            state.attributes["event_type"],
            {
                "confidence": state.attributes["confidence"],
                "duration": state.attributes["duration"],
            },
        )
        for state in sound
        if state.state not in ("unknown", "unavailable")
    ]

    # windows (7 s long) end at t = 7, 8, ...: cry above threshold at 9-18, laughter at 23-24;
    # the cry began ONSET_FILL of a window before 9 s and ended OFFSET_FILL into the 11-18 s one
    heard = round(ONSET_FILL * 7.0, 1)  # when it starts: 1.8 s
    cry = round(18 - 9 - (1 - ONSET_FILL - OFFSET_FILL) * 7.0, 1)  # 5.4 s, not 9 s
    # two windows of laughter are fewer than its windows' smear: no time left of their own
    assert fired == [
        ("cry_started", {"confidence": 0.99, "duration": heard}),
        ("cry_stopped", {"confidence": 0.99, "duration": cry}),
        ("laughter_started", {"confidence": 0.99, "duration": heard}),
        ("laughter_stopped", {"confidence": 0.99, "duration": 0.0}),
    ]
    assert [(event.data["type"], event.data["duration"]) for event in bus_events] == [
        ("cry_started", heard),
        ("cry_stopped", cry),
        ("laughter_started", heard),
        ("laughter_stopped", 0.0),
    ]
    assert transitions(changes) == [
        (CRYING, STATE_UNAVAILABLE),
        (LAUGHING, STATE_UNAVAILABLE),
        (CRYING, STATE_OFF),
        (LAUGHING, STATE_OFF),
        (CRYING, STATE_ON),
        (CRYING, STATE_OFF),
        (LAUGHING, STATE_ON),
        (LAUGHING, STATE_OFF),
    ]
    assert hass.states.get(SOUND).attributes["event_types"] == [
        "cry_started",
        "cry_stopped",
        "laughter_started",
        "laughter_stopped",
    ]


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    "script", [[(0.1, 0.0)] * 2 + [(0.99, 0.0)] * 10 + [(0.0, 0.0)] * 10]
)
async def test_crying_says_since_when_while_on(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """While on, crying's `started_at` is when the cry began, before it was confirmed; off, none."""
    states = record_states(hass, CRYING)
    room = listening_room.with_options({CONF_CONFIRM_S: 3.0, CONF_HOP_S: 1.0})
    await room.async_listen(silence(7.0 + 21.0))

    on = [state for state in states if state.state == STATE_ON]
    assert on
    started_at = on[0].attributes["started_at"]
    assert started_at.tzinfo is not None
    assert all(state.attributes["started_at"] == started_at for state in on)
    # windows end at t = 7, 8, ...: above threshold from 9 s, confirmed at 12 s; the cry
    # began ONSET_FILL of a 7-s window before 9 s, so it had gone on for 4.75 s when confirmed
    since = on[0].last_changed - started_at
    assert since.total_seconds() == pytest.approx(12 - 9 + ONSET_FILL * 7.0, abs=0.5)
    assert states[-1].state == STATE_OFF
    assert "started_at" not in states[-1].attributes


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [[(0.3, 0.0), (0.42, 0.0)]])
async def test_sound_level_and_probability_sensors(
    hass: HomeAssistant, listening_room: Room, entity_registry: er.EntityRegistry
) -> None:
    """The level is the RMS of the audio in dBFS; probabilities (opt-in) are in percent."""
    await listening_room.async_start()
    assert hass.states.get(LEVEL).state == STATE_UNAVAILABLE  # nothing heard yet
    entry = entity_registry.async_get(CRY_PROBABILITY)
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    entity_registry.async_update_entity(CRY_PROBABILITY, disabled_by=None)
    listening_room.sources.audio = tone(8.5, amplitude=0.5)
    assert await hass.config_entries.async_reload(listening_room.entry.entry_id)
    await listening_room.async_heard()
    await wait_until(
        hass, lambda: hass.states.get(LEVEL).state not in ("unavailable", "unknown")
    )
    # 0.5 amplitude sine: RMS 0.354 = -9.0 dBFS
    assert float(hass.states.get(LEVEL).state) == pytest.approx(-9.0, abs=0.1)
    assert hass.states.get(LEVEL).attributes["unit_of_measurement"] == "dBFS"
    assert float(hass.states.get(CRY_PROBABILITY).state) == pytest.approx(42.0)
    assert hass.states.get(CRY_PROBABILITY).attributes["unit_of_measurement"] == "%"


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    "script",
    # windows every 0.5 s from t = 7 s; a cry at 9.5 s only
    [
        [(0.10 + 0.01 * i, 0.0) for i in range(5)]
        + [(0.99, 0.0)]
        + [(0.15 + 0.01 * i, 0.0) for i in range(7)]
    ],
)
async def test_readings_are_published_once_a_second_and_sounds_at_once(
    hass: HomeAssistant, listening_room: Room, entity_registry: er.EntityRegistry
) -> None:
    """Twice-a-second windows update the readings once a second; a cry shows in its own window.

    The hop of 0.5 s is chosen in a current (version 2) entry: migration keeps it there.
    """
    room = listening_room.with_options(
        {CONF_CONFIRM_S: 0.0, CONF_HOP_S: 0.5}, version=2
    )
    await room.async_start()
    entity_registry.async_update_entity(CRY_PROBABILITY, disabled_by=None)
    room.sources.audio = silence(13.0)
    written = record_states(hass, CRY_PROBABILITY, CRYING)
    assert await hass.config_entries.async_reload(room.entry.entry_id)
    await room.async_heard()

    readings = transitions(written)
    published = [state for entity, state in readings if entity == CRY_PROBABILITY]
    assert published[published.index("10.0") :] == [
        "10.0",  # 7.0 s
        "12.0",  # 8.0 s
        "14.0",  # 9.0 s
        "99.0",  # 9.5 s: crying started
        "16.0",  # 10.5 s
        "18.0",  # 11.5 s
        "20.0",  # 12.5 s: crying stopped (hold 3 s)
    ]
    assert [state for entity, state in readings if entity == CRYING][-2:] == [
        STATE_ON,
        STATE_OFF,
    ]
    assert room.runtime.windows_scored == 13


@pytest.mark.usefixtures("no_drops")
async def test_unchanged_readings_write_no_state(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """Readings that change nothing shown (steady silence) write no state, not even a report."""
    listening_room.sources.start_gate = gate = asyncio.Event()
    await listening_room.async_start(silence(15.0))
    runtime = listening_room.runtime
    reported: list[str] = []
    hass.bus.async_listen(
        EVENT_STATE_REPORTED,
        callback(lambda event: reported.append(event.data["entity_id"])),
        event_filter=callback(
            lambda data: data["entity_id"] in (LEVEL, CRYING, LAUGHING, SOUND)
        ),
    )
    changed = record_states(hass, LEVEL, CRYING, LAUGHING, SOUND)
    gate.set()
    await listening_room.async_heard()

    assert runtime.windows_scored == 9
    assert (LEVEL, "-120.0") in transitions(changed)
    assert reported == []
