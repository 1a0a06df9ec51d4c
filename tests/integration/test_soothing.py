"""The soothing audio a blueprint plays must not make the monitor deaf (or cry wolf).

The Soothe-on-cry blueprint starts white noise or a lullaby in the nursery; the microphone then
hears it together with the baby. Real clips from ../shared/data (validation fold, never trained
on): a sound-machine recording and a lullaby-like piece, played alone and with a real cry mixed in
at the same level (0 dB SNR), through the integration with the shipped model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.baby_monitor.const import EVENT_BABY_MONITOR
from custom_components.baby_monitor.engine.audio import decode_file
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from models.augment import active_rms
from models.dataset import DEFAULT_DATA as DATA

from .conftest import RATE, Room, changes, record_states
from .test_detection import CRYING

SOOTHING = {
    "white_noise": "baby_sleep_sounds/other/white_noise.flac",
    "lullaby": "librosa_data/other/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.flac",
}
ALONE_S = 20.0


def _soothing(name: str, seconds: float, rms: float) -> npt.NDArray[np.float32]:
    """Loop the soothing sound to `seconds`, at active RMS `rms`."""
    audio = decode_file(DATA / SOOTHING[name])
    looped = np.resize(audio, round(seconds * RATE))
    return (looped * (rms / active_rms(audio))).astype(np.float32)


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    ("cry_source", "soothing"),
    [
        pytest.param(
            cry_source,
            soothing,
            id=f"{cry_source}-{soothing}",
            marks=[
                pytest.mark.xfail(
                    strict=True,
                    reason="issue 23: this cry under white noise at equal level peaks "
                    "at 0.66 with the v2 head, under its 0.75 default",
                )
            ]
            if (cry_source, soothing) == ("esc50", "white_noise")
            else [],
        )
        for cry_source in ("esc50", "donateacry")
        for soothing in SOOTHING
    ],
)
async def test_a_cry_is_heard_through_the_soothing_audio(
    hass: HomeAssistant,
    room: Room,
    validation_clip: Callable[[str, str], Path],
    soothing: str,
    cry_source: str,
) -> None:
    """Soothing audio alone never turns crying on; a cry at the same level over it does."""
    cry = decode_file(validation_clip("cry", cry_source))
    level = active_rms(cry)
    total = ALONE_S + cry.size / RATE + ALONE_S
    audio = _soothing(soothing, total, level)
    start = round(ALONE_S * RATE)
    audio[start : start + cry.size] += cry
    crying = record_states(hass, CRYING)
    bus_events = async_capture_events(hass, EVENT_BABY_MONITOR)

    await room.async_listen(np.clip(audio, -1.0, 1.0))

    assert changes(crying) == [STATE_UNAVAILABLE, STATE_OFF, STATE_ON, STATE_OFF]
    cry_events = [e.data for e in bus_events if e.data["type"].startswith("cry")]
    assert [e["type"] for e in cry_events] == ["cry_started", "cry_stopped"]
    # one episode, no longer than the cry plus a window: the soothing parts added nothing
    assert cry_events[1]["duration"] <= cry.size / RATE + 7
