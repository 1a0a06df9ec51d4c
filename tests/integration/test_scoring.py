"""Never deaf without saying so: a model that raises or hangs, and listeners that break."""

from __future__ import annotations

from collections.abc import Callable, Generator
import logging
import threading
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.baby_monitor.const import DOMAIN, EVENT_BABY_MONITOR
from custom_components.baby_monitor.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.baby_monitor.engine.detector import SoundEvent
from custom_components.baby_monitor.engine.health import (
    FAILURES_BEFORE_DEAF,
    STALL_HOPS,
)
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .conftest import Room, ScriptedRuntime, silence, tick, wait_until

CRYING = "binary_sensor.nursery_crying"
# the first window is scored once this much audio has arrived (hop 1 s here)
WINDOW_S = 7.0


class Breakdown:
    """Makes the scripted model raise on chosen windows, or hang until released."""

    def __init__(self) -> None:
        """Start healthy: no window fails, none hangs."""
        self.failing: Callable[[int], bool] = lambda _call: False
        self.hang = threading.Event()
        self.hang.set()
        self.calls = 0


@pytest.fixture
def breakdown(
    scripted_model: Callable[[], ScriptedRuntime], monkeypatch: pytest.MonkeyPatch
) -> Generator[Breakdown]:
    """Let a test break the scripted model (released at the end, so no thread hangs on)."""
    item = Breakdown()
    score_rows = ScriptedRuntime.score_rows

    def broken(
        model: ScriptedRuntime,
        rows: npt.NDArray[np.float32],
        *args: Any,
        **kwargs: Any,
    ) -> npt.NDArray[np.float32]:
        call, item.calls = item.calls, item.calls + 1
        item.hang.wait(timeout=30)
        if item.failing(call):
            raise FloatingPointError(f"window {call} is broken")
        return score_rows(model, rows, *args, **kwargs)

    monkeypatch.setattr(ScriptedRuntime, "score_rows", broken)
    yield item
    item.hang.set()


async def diagnostics_scoring(
    hass: HomeAssistant, entry: MockConfigEntry
) -> dict[str, object]:
    """Return the scoring part of the entry's diagnostics."""
    return (await async_get_config_entry_diagnostics(hass, entry))["runtime"]["scoring"]


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [[(0.99, 0.0)] * 100])
async def test_a_window_that_raises_is_dropped_logged_and_counted(
    hass: HomeAssistant,
    listening_room: Room,
    breakdown: Breakdown,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One window the model cannot score is lost; the room goes on hearing."""
    listening_room.sources.audio = silence(WINDOW_S + 5.0)
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    breakdown.failing = lambda call: call in (0, 2)
    runtime = await listening_room.async_listen()

    assert runtime.windows_scored == 4  # 6 windows, 2 raised
    assert await diagnostics_scoring(hass, listening_room.entry) == {
        "errors": 2,
        "failures_in_row": 0,
        "last_error": "FloatingPointError('window 2 is broken')",
        "failing": False,
        "stalled": False,
    }
    failures = [
        record
        for record in caplog.records
        if record.getMessage() == "Scoring a window of Nursery failed; it is dropped"
    ]
    assert len(failures) == 2  # once per streak, with the traceback
    assert all(record.exc_info is not None for record in failures)
    assert [event.data["type"] for event in events] == ["cry_started"]
    assert hass.states.get(CRYING).state == STATE_ON


@pytest.mark.usefixtures("no_drops")
async def test_a_room_scores_every_window_on_one_thread_of_its_own(
    hass: HomeAssistant,
    listening_room: Room,
    scripted_model: Callable[[], ScriptedRuntime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows stay on one thread (not handed around Home Assistant's pool); it ends on unload."""
    scored_on: list[threading.Thread] = []
    score_rows = ScriptedRuntime.score_rows

    def recording(
        model: ScriptedRuntime, rows: npt.NDArray[np.float32], *args: Any, **kwargs: Any
    ) -> npt.NDArray[np.float32]:
        scored_on.append(threading.current_thread())
        return score_rows(model, rows, *args, **kwargs)

    monkeypatch.setattr(ScriptedRuntime, "score_rows", recording)
    await listening_room.async_listen(silence(WINDOW_S + 9.0))

    assert len(scored_on) == 10
    (thread,) = set(scored_on)
    assert thread is not threading.main_thread()
    assert thread.name.startswith(f"{DOMAIN}_scorer")
    assert await hass.config_entries.async_unload(listening_room.entry.entry_id)
    await hass.async_block_till_done()
    assert not thread.is_alive()


@pytest.mark.usefixtures("no_drops")
async def test_scoring_failing_ten_times_in_a_row_is_deaf_until_it_works(
    hass: HomeAssistant,
    listening_room: Room,
    breakdown: Breakdown,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unavailable and a repair issue after ten failures; both go once a window is scored."""
    issue_id = f"scoring_failed_{listening_room.entry.entry_id}"
    listening_room.sources.audio = silence(WINDOW_S + FAILURES_BEFORE_DEAF - 2.0)
    listening_room.sources.end = "fail"
    breakdown.failing = lambda _call: True
    runtime = await listening_room.async_listen()
    await hass.async_block_till_done()
    assert runtime.health.failures_in_row == FAILURES_BEFORE_DEAF - 1
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    await tick(hass, freezer, 1)  # the stream reconnects and fails twice more
    await listening_room.async_heard()
    await hass.async_block_till_done()
    runtime_diag = await diagnostics_scoring(hass, listening_room.entry)
    assert runtime_diag["failing"] is True
    assert not runtime.available
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "scoring_failed"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["room"] == "Nursery"
    assert "cannot hear: 10 windows in a row could not be scored" in caplog.text

    breakdown.failing = lambda _call: False
    listening_room.sources.end = "hold"
    await tick(hass, freezer, 2)
    await listening_room.async_heard()
    await hass.async_block_till_done()
    assert runtime.available
    assert hass.states.get(CRYING).state == STATE_OFF
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert "Nursery hears again" in caplog.text


@pytest.mark.usefixtures("no_drops")
async def test_windows_still_waiting_when_the_stream_ends_are_not_scored(
    hass: HomeAssistant, listening_room: Room, breakdown: Breakdown
) -> None:
    """A stream that ends takes its queued windows with it; the one being scored counts."""
    breakdown.hang.clear()  # the first window is being scored, the other five wait
    listening_room.sources.end = "fail"
    await listening_room.async_start(silence(WINDOW_S + 5.0))
    runtime = listening_room.runtime
    await wait_until(hass, lambda: runtime.last_error == "fake stream ended")

    breakdown.hang.set()
    await wait_until(hass, lambda: runtime.idle)

    assert runtime.windows_scored == 1
    assert runtime.windows_dropped == 0
    assert breakdown.calls == 1


@pytest.mark.usefixtures("no_drops")
async def test_a_hung_model_makes_the_room_unavailable_until_it_scores_again(
    hass: HomeAssistant,
    listening_room: Room,
    breakdown: Breakdown,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Windows waiting while none is scored for three hops: unavailable, diagnostics say so."""
    caplog.set_level(logging.INFO)
    breakdown.hang.clear()
    await listening_room.async_start(silence(WINDOW_S + 3.0))
    await wait_until(hass, listening_room.sources.last.drained.is_set)
    await tick(hass, freezer, STALL_HOPS * 1.0 - 0.5)
    assert hass.states.get(CRYING).state == STATE_OFF  # not yet three hops

    await tick(hass, freezer, 1.0)
    assert hass.states.get(CRYING).state == STATE_UNAVAILABLE
    assert (await diagnostics_scoring(hass, listening_room.entry))["stalled"] is True
    assert "Nursery cannot hear: no window scored for" in caplog.text

    breakdown.hang.set()
    await listening_room.async_heard()
    await hass.async_block_till_done()
    assert hass.states.get(CRYING).state == STATE_OFF
    assert (await diagnostics_scoring(hass, listening_room.entry))["stalled"] is False
    assert "Scoring in Nursery goes on again" in caplog.text


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [[(0.99, 0.0)] * 3 + [(0.0, 0.0)] * 10])
async def test_a_broken_listener_does_not_stop_the_others(
    hass: HomeAssistant,
    listening_room: Room,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged once; events, states and scoring go on."""
    listening_room.sources.audio = silence(WINDOW_S + 9.0)
    listening_room.sources.end = "fail"
    events = async_capture_events(hass, EVENT_BABY_MONITOR)
    await listening_room.async_start()
    runtime = listening_room.runtime
    calls: list[SoundEvent] = []

    def broken(event: SoundEvent) -> None:
        calls.append(event)
        raise RuntimeError("listener bug")

    runtime.async_add_event_listener(broken)
    runtime.async_add_window_listener(lambda _window, _scored: 1 / 0)
    await listening_room.async_heard()
    await hass.async_block_till_done()

    assert runtime.windows_scored == 10
    assert [event.data["type"] for event in events] == ["cry_started", "cry_stopped"]
    assert len(calls) == 2
    logged = [
        record
        for record in caplog.records
        if record.levelno == logging.ERROR
        and record.getMessage() == "A listener of Nursery failed"
    ]
    assert len(logged) == 2  # each broken listener once, with its traceback
    assert runtime.connections >= 1
    assert not runtime.health.errors
