"""Daily statistics: episodes, crying time and last cry, across midnight and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
import datetime as dt
from datetime import date, datetime, timedelta
import json
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)

from custom_components.baby_monitor.const import CONF_SOUNDS
from custom_components.baby_monitor.engine.detector import (
    OFFSET_FILL,
    ONSET_FILL,
    SoundEvent,
)
from custom_components.baby_monitor.engine.pipeline import Scored, Window
from custom_components.baby_monitor.statistics import DailyStatistics, next_midnight
from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_component import async_update_entity
import homeassistant.util.dt as dt_util

from .conftest import Room, record_states, silence, state_of, wait_until

CRY_EPISODES = "sensor.nursery_cry_episodes_today"
CRYING_TIME = "sensor.nursery_crying_time_today"
LAST_CRY = "sensor.nursery_last_cry"
LAUGHTER_EPISODES = "sensor.nursery_laughter_episodes_today"
STATISTICS = (CRY_EPISODES, CRYING_TIME, LAST_CRY, LAUGHTER_EPISODES)
LEVEL = "sensor.nursery_sound_level"
LISTENING = "switch.nursery_listening"

QUIET = (0.0, 0.0)
CRY = (0.99, 0.0)
LAUGH = (0.0, 0.99)

# Windows (7 s long) end at stream time 7, 8, 9 ... s (one a second), one script row each;
# crying time is shown in whole seconds.
# A sound began ON_S before its first window above threshold ended and ended SMEAR_S before its
# last one did; it is over 3 s after that window (the hold time), which is not counted either.
ON_S = ONSET_FILL * 7.0
SMEAR_S = (1 - OFFSET_FILL) * 7.0
# Two cries (windows above at 9-18 s and 29-36 s) and a laugh (23-24 s): the cries began at
# 9 - ON_S and 29 - ON_S s and lasted 9 - SMEAR_S + ON_S and 7 - SMEAR_S + ON_S s.
TWO_CRIES_AND_A_LAUGH = (
    [QUIET] * 2 + [CRY] * 10 + [QUIET] * 4 + [LAUGH] * 2 + [QUIET] * 4 + [CRY] * 8
)
TWO_CRIES_AND_A_LAUGH_S = 7.0 + 33.0
TWO_CRIES_S = 16.0 - 2 * (SMEAR_S - ON_S)
# A cry heard from 9 s to 16 s; the audio ends at 18 s, within the hold time, and the source
# then stays silent without ending, so the cry goes on until the source closes.
ONGOING_CRY = [QUIET] * 2 + [CRY] * 8 + [QUIET]
ONGOING_CRY_S = 18.0


def local(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> datetime:
    """Make a time in Home Assistant's time zone (US/Pacific in tests)."""
    return datetime(
        year, month, day, hour, minute, second, tzinfo=dt_util.get_default_time_zone()
    )


def minutes(entity_id: str, hass: HomeAssistant) -> float:
    """Read a duration sensor (shown in minutes) in seconds."""
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["unit_of_measurement"] == "min"
    return round(float(state.state) * 60, 3)


async def listen_in_real_time(
    room: Room, freezer: FrozenDateTimeFactory, start: datetime, audio_s: float
) -> None:
    """Set the room up at `start` and play `audio_s` of audio in real time.

    The clock follows the stream: the window ending at stream time t is scored at start + t,
    and timers due by then fire, as they would on a real monitor.
    """
    freezer.move_to(start)
    room.sources.start_gate = gate = asyncio.Event()
    await room.async_start(silence(audio_s))
    runtime = room.runtime

    @callback
    def follow_stream(window: Window, scored: Scored) -> None:
        freezer.move_to(start + timedelta(seconds=window.t))
        async_fire_time_changed(room.hass)

    room.entry.async_on_unload(runtime.async_add_window_listener(follow_stream))
    gate.set()
    await room.async_heard()


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: datetime
) -> None:
    """Move the clock to `to` and run what became due."""
    freezer.move_to(to)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def stop_listening(room: Room) -> None:
    """Turn the listening switch off, which ends a sound going on."""
    await room.hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await wait_until(room.hass, lambda: not any(room.runtime.active.values()))


def saved(
    day: date, episodes: int, seconds: float, last_start: datetime | None
) -> dict[str, object]:
    """Make the extra data a statistics sensor saves for a restart."""
    return {
        "day": day.isoformat(),
        "episodes": episodes,
        "seconds": seconds,
        "last_start": None if last_start is None else last_start.isoformat(),
    }


# --- the sensors, driven through the real engine -------------------------------------------


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [TWO_CRIES_AND_A_LAUGH])
async def test_episodes_time_and_last_cry_follow_what_is_heard(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """Each cry and laugh counts once when it starts; crying time adds up the cries' own lengths."""
    start = local(2025, 6, 1, 9, 0, 0)
    cry_counts = record_states(hass, CRY_EPISODES)

    await listen_in_real_time(listening_room, freezer, start, TWO_CRIES_AND_A_LAUGH_S)

    assert [state.state for state in cry_counts] == ["0", "1", "2"]
    assert state_of(hass, CRY_EPISODES).state == "2"
    assert state_of(hass, LAUGHTER_EPISODES).state == "1"
    # 4.2 s + 2.2 s, where their windows span 9 s and 7 s
    assert minutes(CRYING_TIME, hass) == round(TWO_CRIES_S)
    last_cry = dt_util.parse_datetime(state_of(hass, LAST_CRY).state)
    assert last_cry == (start + timedelta(seconds=29 - ON_S)).replace(microsecond=0)
    midnight = local(2025, 6, 1, 0, 0, 0).isoformat()
    for entity_id in (CRY_EPISODES, CRYING_TIME, LAUGHTER_EPISODES):
        attributes = state_of(hass, entity_id).attributes
        assert attributes["state_class"] == "total"
        assert attributes["last_reset"] == midnight
    assert state_of(hass, CRYING_TIME).attributes["device_class"] == "duration"
    assert state_of(hass, LAST_CRY).attributes["device_class"] == "timestamp"


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [ONGOING_CRY])
async def test_crying_time_grows_every_minute_while_the_baby_cries(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """A long cry shows in crying time minute by minute, and settles when the cry ends."""
    start = local(2025, 6, 1, 9, 0, 0)
    await listen_in_real_time(listening_room, freezer, start, ONGOING_CRY_S)
    assert state_of(hass, "binary_sensor.nursery_crying").state == "on"
    began = 9 - ON_S
    # written when the cry was confirmed (at 9 s), ON_S after it began
    assert minutes(CRYING_TIME, hass) == round(ON_S)

    await tick(hass, freezer, start + timedelta(seconds=70))
    assert minutes(CRYING_TIME, hass) == round(70 - began)
    await tick(hass, freezer, start + timedelta(seconds=130))
    assert minutes(CRYING_TIME, hass) == round(130 - began)

    # The cry is closed at stream time 18 s; its last window above threshold (16 s) ended
    # SMEAR_S after the cry did, so it lasted until 18 - 16 + SMEAR_S before the source closed.
    await stop_listening(listening_room)
    lasted = 130 - (18 - 16 + SMEAR_S) - began
    assert minutes(CRYING_TIME, hass) == round(lasted)
    await tick(hass, freezer, start + timedelta(seconds=400))
    assert minutes(CRYING_TIME, hass) == round(lasted)
    assert state_of(hass, CRY_EPISODES).state == "1"


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [TWO_CRIES_AND_A_LAUGH])
async def test_counts_restart_at_local_midnight_every_night(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """At local midnight the day's counts go back to 0; the last cry is kept."""
    start = local(2025, 6, 1, 23, 58, 0)
    await listen_in_real_time(listening_room, freezer, start, TWO_CRIES_AND_A_LAUGH_S)
    await tick(hass, freezer, local(2025, 6, 1, 23, 59, 59))
    assert state_of(hass, CRY_EPISODES).state == "2"
    last_cry = state_of(hass, LAST_CRY).state

    await tick(hass, freezer, local(2025, 6, 2, 0, 0, 0))
    assert state_of(hass, CRY_EPISODES).state == "0"
    assert minutes(CRYING_TIME, hass) == 0.0
    assert state_of(hass, LAUGHTER_EPISODES).state == "0"
    assert state_of(hass, LAST_CRY).state == last_cry
    assert (
        state_of(hass, CRY_EPISODES).attributes["last_reset"]
        == local(2025, 6, 2, 0, 0, 0).isoformat()
    )

    await tick(hass, freezer, local(2025, 6, 3, 0, 0, 0))
    assert (
        state_of(hass, CRY_EPISODES).attributes["last_reset"]
        == local(2025, 6, 3, 0, 0, 0).isoformat()
    )
    assert state_of(hass, LAST_CRY).state == last_cry


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [ONGOING_CRY])
async def test_cry_across_midnight_is_split_between_the_days(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """A cry from 23:59:09 - ON_S on: 51 + ON_S s close the old day, the rest the new one.

    The episode counts on the day it started, so the new day starts with 0 episodes.
    """
    start = local(2025, 6, 1, 23, 59, 0)
    crying_time = record_states(hass, CRYING_TIME)
    episodes = record_states(hass, CRY_EPISODES)
    await listen_in_real_time(listening_room, freezer, start, ONGOING_CRY_S)
    assert state_of(hass, CRY_EPISODES).state == "1"

    midnight = local(2025, 6, 2, 0, 0, 0)
    await tick(hass, freezer, midnight)
    closing, opening = crying_time[-2:]
    assert round(float(closing.state) * 60, 3) == round(60 - (9 - ON_S))
    assert closing.attributes["last_reset"] == local(2025, 6, 1, 0, 0, 0).isoformat()
    assert float(opening.state) == 0.0
    assert opening.attributes["last_reset"] == midnight.isoformat()
    assert [state.state for state in episodes] == ["0", "1", "0"]

    await tick(hass, freezer, midnight + timedelta(seconds=90))
    assert minutes(CRYING_TIME, hass) == 90.0
    await stop_listening(listening_room)
    # closed at stream time 18 s; the cry ended SMEAR_S before its last window (16 s) did
    assert minutes(CRYING_TIME, hass) == round(90 - (18 - 16 + SMEAR_S))
    assert state_of(hass, CRY_EPISODES).state == "0"
    # shown to the second, the fraction dropped
    began = start + timedelta(seconds=9 - ON_S)
    assert dt_util.parse_datetime(state_of(hass, LAST_CRY).state) == began.replace(
        microsecond=0
    )


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [TWO_CRIES_AND_A_LAUGH])
async def test_restart_restores_the_days_statistics(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """After a restart on the same day, counting goes on from the saved values."""
    start = local(2025, 6, 1, 15, 0, 0)
    earlier = local(2025, 6, 1, 14, 30, 0)
    mock_restore_cache_with_extra_data(
        hass,
        [
            (State(CRY_EPISODES, "3"), saved(start.date(), 3, 150.0, earlier)),
            (State(CRYING_TIME, "2.5"), saved(start.date(), 3, 150.0, earlier)),
            (
                State(LAST_CRY, earlier.isoformat()),
                saved(start.date(), 3, 150.0, earlier),
            ),
            (State(LAUGHTER_EPISODES, "2"), saved(start.date(), 2, 20.0, earlier)),
        ],
    )
    cry_counts = record_states(hass, CRY_EPISODES)
    await listen_in_real_time(listening_room, freezer, start, TWO_CRIES_AND_A_LAUGH_S)
    assert [state.state for state in cry_counts] == ["3", "4", "5"]
    assert state_of(hass, CRY_EPISODES).state == "5"
    assert minutes(CRYING_TIME, hass) == round(150.0 + TWO_CRIES_S)
    last_cry = dt_util.parse_datetime(state_of(hass, LAST_CRY).state)
    assert last_cry == (start + timedelta(seconds=29 - ON_S)).replace(microsecond=0)
    assert state_of(hass, LAUGHTER_EPISODES).state == "3"


async def test_restart_on_a_later_day_keeps_only_the_last_cry(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """Values saved on an earlier day are not today's: they start at 0; the last cry stays."""
    yesterday = local(2025, 5, 31, 21, 0, 0)
    mock_restore_cache_with_extra_data(
        hass,
        [
            (State(entity_id, "3"), saved(yesterday.date(), 3, 150.0, yesterday))
            for entity_id in STATISTICS
        ],
    )
    freezer.move_to(local(2025, 6, 1, 7, 0, 0))
    await listening_room.async_start()
    assert state_of(hass, CRY_EPISODES).state == "0"
    assert minutes(CRYING_TIME, hass) == 0.0
    assert state_of(hass, LAUGHTER_EPISODES).state == "0"
    assert dt_util.parse_datetime(state_of(hass, LAST_CRY).state) == yesterday


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [TWO_CRIES_AND_A_LAUGH])
async def test_reload_keeps_the_days_statistics(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """Reloading the entry (new options, a new source) does not lose today's counts."""
    await listen_in_real_time(
        listening_room,
        freezer,
        local(2025, 6, 1, 9, 0, 0),
        TWO_CRIES_AND_A_LAUGH_S,
    )
    before = {entity_id: state_of(hass, entity_id).state for entity_id in STATISTICS}
    assert before[CRY_EPISODES] == "2"

    listening_room.sources.audio = silence(0.0)
    assert await hass.config_entries.async_reload(listening_room.entry.entry_id)
    await hass.async_block_till_done()
    assert {
        entity_id: state_of(hass, entity_id).state for entity_id in STATISTICS
    } == before


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [TWO_CRIES_AND_A_LAUGH])
async def test_statistics_stay_available_while_the_source_is_down(
    hass: HomeAssistant, listening_room: Room, freezer: FrozenDateTimeFactory
) -> None:
    """What was heard today still holds when the stream is lost."""
    await listen_in_real_time(
        listening_room,
        freezer,
        local(2025, 6, 1, 9, 0, 0),
        TWO_CRIES_AND_A_LAUGH_S,
    )
    await listening_room.sources.last.stop()  # the stream is lost once all is heard
    await wait_until(hass, lambda: not listening_room.runtime.available)
    for entity_id in STATISTICS:
        await async_update_entity(hass, entity_id)
    assert state_of(hass, LEVEL).state == STATE_UNAVAILABLE
    assert state_of(hass, CRY_EPISODES).state == "2"
    assert minutes(CRYING_TIME, hass) == round(TWO_CRIES_S)
    assert state_of(hass, LAST_CRY).state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    assert state_of(hass, LAUGHTER_EPISODES).state == "1"


async def test_nothing_heard_yet_reads_zero_and_unknown(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """A new monitor has no episodes, no crying time and no last cry, even without audio."""
    await listening_room.async_start()
    assert state_of(hass, LEVEL).state == STATE_UNAVAILABLE
    assert state_of(hass, CRY_EPISODES).state == "0"
    assert minutes(CRYING_TIME, hass) == 0.0
    assert state_of(hass, LAST_CRY).state == STATE_UNKNOWN
    assert state_of(hass, LAUGHTER_EPISODES).state == "0"


async def test_unticking_a_sound_removes_its_statistics(
    hass: HomeAssistant, listening_room: Room, entity_registry: er.EntityRegistry
) -> None:
    """Only detected sounds have statistics; unticking crying removes the cry statistics."""
    await listening_room.async_start()
    entry = listening_room.entry
    assert all(entity_registry.async_get(entity_id) for entity_id in STATISTICS)

    hass.config_entries.async_update_entry(entry, options={CONF_SOUNDS: ["laughter"]})
    await hass.async_block_till_done()
    for entity_id in (CRY_EPISODES, CRYING_TIME, LAST_CRY):
        assert entity_registry.async_get(entity_id) is None
        assert hass.states.get(entity_id) is None
    assert state_of(hass, LAUGHTER_EPISODES).state == "0"
    assert {
        registered.unique_id
        for registered in er.async_entries_for_config_entry(
            entity_registry, entry.entry_id
        )
        if registered.domain == "sensor"
    } == {
        f"{entry.entry_id}-{key}"
        for key in ("sound_level", "laughter_probability", "laughter_episodes_today")
    }


# --- the bookkeeping, on its own ------------------------------------------------------------


@pytest.fixture
def pacific() -> Generator[dt.tzinfo]:
    """Count days in US/Pacific (DST from 9 March to 2 November 2025)."""
    zone = ZoneInfo("US/Pacific")
    dt_util.set_default_time_zone(zone)
    yield zone
    dt_util.set_default_time_zone(dt.UTC)


def at(
    zone: dt.tzinfo,
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
) -> datetime:
    """Make a local time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def started(t: float, start: float) -> SoundEvent:
    """Make a cry confirmed at stream time t, going on since `start`."""
    return SoundEvent("cry", "started", t, start, None, 0.99, start + 1, None)


def stopped(t: float, start: float, end: float) -> SoundEvent:
    """Make a cry from `start` to `end` (its windows last longer), declared over at time t."""
    return SoundEvent("cry", "stopped", t, start, end, 0.99, start + 1, end + 6)


def test_episode_counts_when_it_starts_and_its_time_when_it_ends(
    pacific: dt.tzinfo,
) -> None:
    """An episode counts at its start; its time is the sound's own, not its windows'."""
    t0 = at(pacific, 2025, 6, 1, 9, 0, 0)
    stats = DailyStatistics.for_day_of(t0)
    stats.record(started(t=12, start=10), t0 + timedelta(seconds=12))
    assert stats.episodes == 1
    assert stats.last_start == t0 + timedelta(seconds=10)
    assert stats.seconds(t0 + timedelta(seconds=40)) == 30.0  # going on: up to now

    stats.record(stopped(t=48, start=10, end=45), t0 + timedelta(seconds=48))
    assert (
        stats.seconds(t0 + timedelta(seconds=48)) == 35.0
    )  # the hold time is not counted
    assert stats.seconds(t0 + timedelta(hours=5)) == 35.0
    assert stats.episodes == 1


def test_cry_across_midnight_counts_on_the_day_it_started(
    pacific: dt.tzinfo,
) -> None:
    """The old day keeps the episode and its time until midnight; the new day gets the rest."""
    evening = at(pacific, 2025, 6, 1, 23, 50, 0)
    midnight = at(pacific, 2025, 6, 2, 0, 0, 0)
    stats = DailyStatistics.for_day_of(evening)
    stats.record(started(t=100, start=100), evening)
    # read after midnight but before the day is rolled: the old day's final value
    assert stats.seconds(midnight + timedelta(minutes=1)) == 600.0
    assert stats.episodes == 1

    assert stats.roll(midnight)
    assert stats.day == date(2025, 6, 2)
    assert (stats.episodes, stats.seconds(midnight)) == (0, 0.0)
    assert stats.seconds(midnight + timedelta(minutes=2)) == 120.0
    stats.record(stopped(t=1003, start=100, end=1000), evening + timedelta(seconds=903))
    assert stats.seconds(midnight + timedelta(hours=1)) == 300.0
    assert stats.episodes == 0
    assert stats.last_start == evening
    assert not stats.roll(midnight + timedelta(hours=23))


def test_sound_confirmed_after_midnight_counts_on_the_new_day(
    pacific: dt.tzinfo,
) -> None:
    """A day once over is not changed: a cry begun at 23:59:58, confirmed at 00:00:03, is new."""
    stats = DailyStatistics.for_day_of(at(pacific, 2025, 6, 1, 23, 0, 0))
    midnight = at(pacific, 2025, 6, 2, 0, 0, 0)
    stats.record(started(t=55, start=50), midnight + timedelta(seconds=3))
    assert stats.day == date(2025, 6, 2)
    assert stats.episodes == 1
    assert stats.last_start == midnight - timedelta(seconds=2)
    assert stats.seconds(midnight + timedelta(seconds=10)) == 10.0


def test_a_stop_without_its_start_changes_nothing(pacific: dt.tzinfo) -> None:
    """A cry that started before the statistics existed adds no time and no episode."""
    t0 = at(pacific, 2025, 6, 1, 9, 0, 0)
    stats = DailyStatistics.for_day_of(t0)
    stats.record(stopped(t=20, start=5, end=17), t0)
    assert (stats.episodes, stats.seconds(t0)) == (0, 0.0)


@pytest.mark.parametrize(
    ("now", "hours"),
    [
        ((2025, 3, 8, 12, 0, 0), 23),  # clocks go forward on 9 March
        ((2025, 11, 1, 12, 0, 0), 25),  # and back on 2 November
        ((2025, 6, 1, 0, 0, 0), 24),
    ],
)
def test_next_midnight_is_local_midnight_on_dst_days(
    pacific: dt.tzinfo, now: tuple[int, int, int, int, int, int], hours: int
) -> None:
    """The day ends at local midnight, whatever the length of the next day."""
    first = next_midnight(at(pacific, *now))
    second = next_midnight(first)
    assert (first.hour, first.minute, second.hour, second.minute) == (0, 0, 0, 0)
    assert dt_util.as_utc(second) - dt_util.as_utc(first) == timedelta(hours=hours)


def test_saved_statistics_come_back_the_same_day(pacific: dt.tzinfo) -> None:
    """Saved through JSON: the day's counts, time so far (episode going on included)."""
    t0 = at(pacific, 2025, 6, 1, 9, 0, 0)
    stats = DailyStatistics.for_day_of(t0)
    stats.record(started(t=10, start=10), t0)
    data = json.loads(json.dumps(stats.as_dict(t0 + timedelta(seconds=45))))

    restored = DailyStatistics.from_dict(data, t0 + timedelta(hours=1))
    assert restored == DailyStatistics(
        day=date(2025, 6, 1), episodes=1, closed_s=45.0, last_start=t0
    )
    assert restored.seconds(t0 + timedelta(hours=2)) == 45.0  # no episode goes on


def test_saved_statistics_of_an_earlier_day_keep_only_the_last_start(
    pacific: dt.tzinfo,
) -> None:
    """A day that is over starts from 0 after a restart; the last start survives."""
    evening = at(pacific, 2025, 6, 1, 22, 0, 0)
    data = saved(date(2025, 6, 1), 4, 300.0, evening)
    restored = DailyStatistics.from_dict(data, at(pacific, 2025, 6, 2, 6, 0, 0))
    assert restored == DailyStatistics(day=date(2025, 6, 2), last_start=evening)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"day": "yesterday", "episodes": 1, "seconds": 1.0, "last_start": None},
        {"day": "2025-06-01", "episodes": "many", "seconds": 1.0},
        {"day": "2025-06-01", "episodes": -1, "seconds": 1.0},
        {"day": "2025-06-01", "episodes": 1, "seconds": float("nan")},
        {"day": "2025-06-01", "episodes": 1, "last_start": "not a time"},
    ],
)
def test_unreadable_saved_statistics_start_empty(
    pacific: dt.tzinfo, data: dict[str, object]
) -> None:
    """Damaged saved data gives today's empty statistics rather than an error."""
    now = at(pacific, 2025, 6, 1, 12, 0, 0)
    assert DailyStatistics.from_dict(data, now) == DailyStatistics(day=now.date())
