"""A room learns from its parent: `baby_monitor.teach`, its buttons, its count, its store."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.baby_monitor.const import CONF_SOUNDS, DOMAIN, ISSUE_LEARNT_RESET
from custom_components.baby_monitor.issues import issue_id
from custom_components.baby_monitor.learning import storage_key
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir

from .conftest import ENTRY_ID, Room, log_lines, record_states, silence, state_of, tone

CRYING = "binary_sensor.nursery_crying"
SOUND = "event.nursery_sound"
LEARNT = "sensor.nursery_learnt_examples"
NOT_A_CRY = "button.nursery_not_a_cry"
FORGET = "button.nursery_forget_what_this_room_learnt"
KEY = storage_key(ENTRY_ID)

# A 12-s tone the scripted model scores as below, then 8 s of silence.
HEARD = 6
AUDIO_S = (12.0, 8.0)
FALSE_ALARM = [(0.95, 0.0)] * HEARD + [(0.0, 0.0)] * 8
QUIET_CRY = [(0.5, 0.0)] * HEARD + [(0.0, 0.0)] * 8


def audio() -> npt.NDArray[np.float32]:
    """Make the sound the room hears in every test."""
    return np.concatenate([tone(AUDIO_S[0], amplitude=0.3), silence(AUDIO_S[1])])


async def teach(
    hass: HomeAssistant, verdict: str, sound: str = "cry", **extra: Any
) -> dict[str, Any]:
    """Call baby_monitor.teach on the nursery and return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        "teach",
        {ATTR_ENTITY_ID: CRYING, "sound": sound, "verdict": verdict, **extra},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def press(hass: HomeAssistant, button: str) -> None:
    """Press a button of the nursery."""
    await hass.services.async_call(
        "button", SERVICE_PRESS, {ATTR_ENTITY_ID: button}, blocking=True
    )


async def replay(hass: HomeAssistant, room: Room) -> list[str]:
    """Restart the room and play the audio again; returns the crying sensor's states.

    The scripted model starts its script again, as a real one would score the same audio.
    """
    states = record_states(hass, CRYING)
    await hass.config_entries.async_reload(room.entry.entry_id)
    await room.async_heard()
    return [s.state for s in states]


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [FALSE_ALARM])
async def test_not_a_cry_stops_the_same_false_alarm_after_a_restart(
    hass: HomeAssistant, listening_room: Room, hass_storage: dict[str, Any]
) -> None:
    """Told "not a cry", the room no longer cries at the same sound, also after a restart.

    It keeps a few KB of that episode's patches in .storage.
    """
    states = record_states(hass, CRYING)
    await listening_room.async_listen(audio())
    assert STATE_ON in [s.state for s in states]

    response = await teach(hass, "not_this_sound")
    assert response["examples"]["cry"] == {"not_this_sound": 1, "this_sound": 0}
    assert state_of(hass, LEARNT).state == "1"
    assert state_of(hass, LEARNT).attributes["cry_not_this_sound"] == 1
    stored = hass_storage[KEY]["data"]["examples"]
    assert [(e["sound"], e["verdict"]) for e in stored] == [("cry", "not_this_sound")]
    # features of 16 patches: less than 6 s of the room's audio would take as 16-bit PCM
    assert len(stored[0]["rows"]) < 20_000

    assert STATE_ON not in await replay(hass, listening_room)
    assert state_of(hass, LEARNT).state == "1"


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [QUIET_CRY])
async def test_was_a_cry_makes_a_missed_quiet_cry_heard(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """A cry too quiet to report is still heard; "was a cry" (the latest) makes it count."""
    states = record_states(hass, CRYING)
    await listening_room.async_listen(audio())
    assert STATE_ON not in [s.state for s in states]

    await teach(hass, "this_sound")
    assert state_of(hass, LEARNT).attributes["cry_this_sound"] == 1
    assert STATE_ON in await replay(hass, listening_room)


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [FALSE_ALARM])
async def test_the_episode_of_a_cry_is_on_its_sensor_and_event(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """While on, the crying sensor names its episode, as the cry's events do.

    A verdict on it is learnt; one on an episode no longer kept is refused by name.
    """
    states = record_states(hass, CRYING, SOUND)
    await listening_room.async_listen(audio())
    on = next(s for s in states if s.entity_id == CRYING and s.state == STATE_ON)
    episode = on.attributes["episode"]
    assert isinstance(episode, int)
    started = [
        s.attributes for s in states if s.attributes.get("event_type") == "cry_started"
    ]
    assert started and started[0]["episode"] == episode

    with pytest.raises(ServiceValidationError) as err:
        await teach(hass, "not_this_sound", episode=episode + 100)
    assert err.value.translation_key == "episode_gone"
    assert "Nursery" in str(err.value)

    await teach(hass, "not_this_sound", episode=episode)
    assert state_of(hass, LEARNT).state == "1"


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [FALSE_ALARM])
async def test_buttons_teach_the_last_cry_and_forget_everything(
    hass: HomeAssistant, listening_room: Room, hass_storage: dict[str, Any]
) -> None:
    """A dashboard's "Not a cry" teaches the latest cry; "Forget" undoes everything.

    The store is emptied and the room cries as shipped again.
    """
    await listening_room.async_listen(audio())
    await press(hass, NOT_A_CRY)
    assert state_of(hass, LEARNT).attributes["cry_not_this_sound"] == 1

    await press(hass, FORGET)
    assert state_of(hass, LEARNT).state == "0"
    assert hass_storage[KEY]["data"]["examples"] == []
    assert STATE_ON in await replay(hass, listening_room)


@pytest.mark.usefixtures("listening_room")
@pytest.mark.parametrize("script", [[(0.0, 0.0)] * 20])
async def test_teaching_before_anything_was_heard_says_so(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """Nothing like a cry heard yet: the parent is told there is nothing to learn from."""
    await listening_room.async_listen(audio())
    with pytest.raises(ServiceValidationError) as err:
        await teach(hass, "not_this_sound")
    assert err.value.translation_key == "nothing_heard"
    assert "nothing like crying" in str(err.value)
    assert state_of(hass, LEARNT).state == "0"


@pytest.mark.parametrize("options", [{CONF_SOUNDS: ["laughter"]}])
async def test_a_sound_the_room_does_not_detect_cannot_be_taught(
    hass: HomeAssistant, listening_room: Room
) -> None:
    """A room that does not detect crying refuses verdicts on it and has no cry button."""
    await listening_room.async_listen(silence(1.0))
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "teach",
            {"config_entry_id": ENTRY_ID, "sound": "cry", "verdict": "this_sound"},
            blocking=True,
        )
    assert err.value.translation_key == "sound_not_detected"
    assert hass.states.get(NOT_A_CRY) is None


@pytest.mark.parametrize(
    "data",
    [
        {"examples": [{"sound": "cry", "verdict": "not_this_sound"}]},
        {
            "examples": [
                {"sound": "cry", "verdict": "nope", "rows": "", "shape": [1, 1]}
            ]
        },
        ["not", "a", "mapping"],
        {"examples": "many"},
    ],
)
async def test_a_corrupt_store_starts_afresh_with_a_repair_issue(
    hass: HomeAssistant,
    listening_room: Room,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    data: Any,
) -> None:
    """The room still loads and listens; the parent is told what was lost and why."""
    hass_storage[KEY] = {"version": 1, "minor_version": 1, "key": KEY, "data": data}
    await listening_room.async_listen(silence(1.0))
    assert state_of(hass, LEARNT).state == "0"
    assert state_of(hass, CRYING).state == STATE_OFF
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, issue_id(ISSUE_LEARNT_RESET, ENTRY_ID)
    )
    assert issue is not None and issue.translation_placeholders
    assert issue.translation_placeholders["room"] == "Nursery"
    assert log_lines(caplog, "cannot be read")
    assert hass_storage[KEY]["data"] == {"examples": []}


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [FALSE_ALARM])
async def test_removing_the_room_deletes_what_it_learnt(
    hass: HomeAssistant, listening_room: Room, hass_storage: dict[str, Any]
) -> None:
    """A removed room leaves no examples behind in .storage."""
    await listening_room.async_listen(audio())
    await teach(hass, "not_this_sound")
    assert KEY in hass_storage
    assert await hass.config_entries.async_remove(ENTRY_ID)
    await hass.async_block_till_done()
    assert KEY not in hass_storage


async def test_a_room_without_examples_has_none_stored(
    hass: HomeAssistant, listening_room: Room, hass_storage: dict[str, Any]
) -> None:
    """Nothing is written until a parent teaches: a room scores as shipped."""
    await listening_room.async_listen(silence(1.0))
    assert KEY not in hass_storage
