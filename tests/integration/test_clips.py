"""Saved clips: WAV files of cries and laughter, the save_clip action, retention, repairs."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
import errno
import logging
import os
from pathlib import Path
import re
import time
from typing import Any
from unittest.mock import patch
import wave

from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
import voluptuous as vol

from custom_components.baby_monitor.const import (
    CONF_CLIP_MAX_SIZE_MB,
    CONF_CLIP_RETENTION_DAYS,
    CONF_CONFIRM_S,
    CONF_HOP_S,
    CONF_KEEP_CLIPS_ON_REMOVE,
    CONF_SAVE_CLIPS,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DOMAIN,
    EVENT_BABY_MONITOR,
    EVENT_CLIP_SAVED,
    SOURCE_URL,
)
from custom_components.baby_monitor.engine.pcm import float_to_pcm16
from homeassistant.components import media_source
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.icon import async_get_icons
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from . import setup_integration
from .conftest import ENTRY_ID, RATE, Room, silence, wait_until

CRYING = "binary_sensor.nursery_crying"
WRITE = "custom_components.baby_monitor.clips.write_clip"
ISSUE_ID = f"clips_unwritable_{ENTRY_ID}"

# Windows end at t = 7, 8, ... s (hop 1 s): cry above threshold at 9-11 s, then quiet,
# so the cry starts at 9 s (its event's `start`) and stops at 14 s (hold 3 s, end 11 s).
CRY_9_TO_11 = [(0.0, 0.0)] * 2 + [(0.99, 0.0)] * 3 + [(0.0, 0.0)] * 30


@pytest.fixture
def options() -> dict[str, Any]:
    """Options of the entry: clips saved."""
    return {CONF_SAVE_CLIPS: True}


@pytest.fixture
def unwritable() -> Generator[None]:
    """Make every clip write fail with a permission error."""
    with patch(WRITE, side_effect=PermissionError(errno.EACCES, "Permission denied")):
        yield


def noise(seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Random audio: every stretch differs, so a clip shows which part it holds."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def pcm(audio: npt.NDArray[np.float32], start_s: float, end_s: float) -> np.ndarray:
    """Return the 16-bit samples a clip of audio from start_s to end_s must hold."""
    part = audio[round(start_s * RATE) : round(end_s * RATE)]
    return float_to_pcm16(part)


def read_wav(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """(channels, sample width, rate) and the samples of a WAV file."""
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    return params, samples


def clips(media: Path, room: str = ENTRY_ID) -> list[Path]:
    """WAV files in a room's clip folder."""
    return sorted((media / "baby_monitor" / room).glob("*/*.wav"))


def make_clip(media: Path, name: str, size: int, age: timedelta) -> Path:
    """Put a clip file of `size` bytes, last written `age` ago, under media/baby_monitor."""
    path = media / "baby_monitor" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(size))
    mtime = time.time() - age.total_seconds()
    os.utime(path, (mtime, mtime))
    return path


def error_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages the integration logged at error level."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.baby_monitor")
        and record.levelno >= logging.ERROR
    ]


async def save_clip(
    hass: HomeAssistant, response: bool = True, **data: Any
) -> dict[str, Any] | None:
    """Call baby_monitor.save_clip for the nursery."""
    return await hass.services.async_call(
        DOMAIN,
        "save_clip",
        {"config_entry_id": ENTRY_ID, **data},
        blocking=True,
        return_response=response,
    )


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [CRY_9_TO_11])
async def test_cry_is_saved_from_before_it_was_heard_until_it_ends(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A cry heard at 9-11 s gives a 16 kHz mono WAV of 4-13 s: 5 s pre-roll, 2 s after."""
    audio = noise(20.0)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)

    await listening_room.async_listen(audio)
    await wait_until(hass, lambda: len(saved) == 1)

    [path] = clips(media)
    params, samples = read_wav(path)
    assert params == (1, 2, 16000)
    assert len(samples) == 9 * RATE
    np.testing.assert_array_equal(samples, pcm(audio, 4.0, 13.0))

    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}/\d{6}_cry\.wav", f"{path.parent.name}/{path.name}"
    )
    named = datetime.strptime(f"{path.parent.name} {path.stem[:6]}", "%Y-%m-%d %H%M%S")
    now = dt_util.now().replace(
        tzinfo=None
    )  # local time, like the folder and file names
    assert timedelta(0) <= now - named < timedelta(minutes=1)

    relative = path.relative_to(media).as_posix()
    device = device_registry.async_get_device(identifiers={(DOMAIN, ENTRY_ID)})
    assert device is not None
    assert saved[0].data == {
        "device_id": device.id,
        "entry_id": ENTRY_ID,
        "sound": "cry",
        "path": str(path),
        "media_content_id": f"media-source://media_source/local/{relative}",
        "url": f"/media/local/{relative}",
        "duration": 9.0,
    }
    assert relative.startswith(f"baby_monitor/{ENTRY_ID}/")


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("options", [{}, {CONF_SAVE_CLIPS: False}])
@pytest.mark.parametrize("script", [CRY_9_TO_11])
async def test_nothing_is_saved_when_the_option_is_off(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Saving clips is off by default: the cry is detected, no file is written."""
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    sounds = async_capture_events(hass, EVENT_BABY_MONITOR)

    await listening_room.async_listen(noise(20.0))
    await hass.async_block_till_done()

    assert [event.data["type"] for event in sounds] == ["cry_started", "cry_stopped"]
    assert saved == []
    assert not (media / "baby_monitor").exists()


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [[(0.0, 0.0)] * 2 + [(0.99, 0.0)] * 60])
async def test_a_long_cry_is_saved_when_its_clip_reaches_the_cap(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """A cry longer than the cap is saved at the cap, while it still goes on.

    The cap is lowered to 20 s so the test audio (played faster than real time) fits the ring.
    """
    audio = noise(50.0)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)

    with patch("custom_components.baby_monitor.clips.MAX_CLIP_S", 20.0):
        await listening_room.async_listen(audio)
        await hass.async_block_till_done()

    assert hass.states.get(CRYING).state == STATE_ON  # still crying
    assert [event.data["duration"] for event in saved] == [20.0]
    [path] = clips(media)
    _, samples = read_wav(path)
    np.testing.assert_array_equal(samples, pcm(audio, 4.0, 24.0))


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    "script",
    # first connection (10.5 s): windows at 7-10 s, quiet; second: cry at 8-9 s
    [[(0.0, 0.0)] * 4 + [(0.0, 0.0)] + [(0.99, 0.0)] * 2 + [(0.0, 0.0)] * 40],
)
async def test_clips_follow_the_stream_clock_across_reconnects(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """After a reconnect the stream clock restarts at 0; the clip is cut from the new audio."""
    first, second = noise(10.5, seed=1), noise(12.5, seed=2)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)

    await listening_room.async_listen(first)
    listening_room.sources.audio = second
    # the stream ends; the runtime reconnects in 1 s
    await listening_room.sources.last.stop()
    await wait_until(hass, lambda: len(listening_room.sources.created) == 2)
    await listening_room.async_heard()
    await wait_until(hass, lambda: len(saved) == 1)

    # cry windows end at 8 and 9 s of the second connection: 3 s (pre-roll) to 11 s
    _, samples = read_wav(clips(media)[0])
    np.testing.assert_array_equal(samples, pcm(second, 3.0, 11.0))


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize("script", [[(0.0, 0.0)] * 2 + [(0.99, 0.0)] * 60])
async def test_an_open_clip_is_saved_when_the_entry_unloads(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Unloading (e.g. for new options) during a cry keeps what was recorded so far."""
    audio = noise(20.0)
    await listening_room.async_listen(audio)
    assert hass.states.get(CRYING).state == STATE_ON

    assert await hass.config_entries.async_unload(ENTRY_ID)
    await hass.async_block_till_done()

    _, samples = read_wav(clips(media)[0])
    np.testing.assert_array_equal(samples, pcm(audio, 4.0, 20.0))


async def test_saved_clips_are_browsable_in_media(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """The clip's media_content_id browses and resolves through the local media source."""
    assert await async_setup_component(hass, "media_source", {})
    await listening_room.async_listen(noise(3.0))

    response = await save_clip(hass)
    assert response is not None
    folder_id, _, name = response["media_content_id"].rpartition("/")
    folder = await media_source.async_browse_media(hass, folder_id)
    [child] = folder.children
    assert (child.title, child.media_content_id, child.can_play) == (
        name,
        response["media_content_id"],
        True,
    )
    played = await media_source.async_resolve_media(
        hass, response["media_content_id"], None
    )
    assert played.url == response["url"]
    assert played.mime_type.startswith("audio/")


@pytest.mark.parametrize("options", [{}])
async def test_save_clip_keeps_the_last_seconds_also_with_clips_off(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """The action saves the latest `duration` s, returns where it went and announces it."""
    audio = noise(12.0)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    await listening_room.async_listen(audio)

    response = await save_clip(hass, duration=5)

    [path] = clips(media)
    assert path.name.endswith("_manual.wav")
    relative = path.relative_to(media).as_posix()
    assert response == {
        "path": str(path),
        "media_content_id": f"media-source://media_source/local/{relative}",
        "url": f"/media/local/{relative}",
        "duration": 5.0,
    }
    _, samples = read_wav(path)
    np.testing.assert_array_equal(samples, pcm(audio, 7.0, 12.0))
    assert [(event.data["sound"], event.data["path"]) for event in saved] == [
        ("manual", str(path))
    ]
    diagnostics = listening_room.clips.diagnostics()
    assert diagnostics["save_clips"] is False
    assert diagnostics["clips_saved"] == 1
    assert diagnostics["last_error"] is None


async def test_save_clip_without_response_saves_what_was_heard(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Without a response the clip is still written; 30 s asked, 12 s heard: 12 s saved."""
    audio = noise(12.0)
    await listening_room.async_listen(audio)

    assert await save_clip(hass, response=False) is None

    _, samples = read_wav(clips(media)[0])
    np.testing.assert_array_equal(samples, pcm(audio, 0.0, 12.0))


async def test_save_clip_is_described(hass: HomeAssistant) -> None:
    """The action has its fields, a translated name and an icon."""
    assert await async_setup_component(hass, DOMAIN, {})
    description = (await async_get_all_descriptions(hass))[DOMAIN]["save_clip"]
    assert description["name"] == "Save clip"
    assert description["fields"]["config_entry_id"]["selector"] == {
        "config_entry": {"integration": DOMAIN}
    }
    assert description["fields"]["duration"]["default"] == 30
    icons = await async_get_icons(hass, "services", [DOMAIN])
    assert icons[DOMAIN]["save_clip"] == {"service": "mdi:content-save-outline"}


@pytest.mark.parametrize("duration", [0, 61, "long"])
async def test_save_clip_rejects_durations_out_of_range(
    hass: HomeAssistant, duration: object
) -> None:
    """Durations are 1 to 60 s (the ring holds no more)."""
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(vol.Invalid):
        await save_clip(hass, duration=duration)


async def test_save_clip_for_an_unknown_entry(hass: HomeAssistant) -> None:
    """An id that is no Baby Monitor entry is a translated validation error."""
    assert await async_setup_component(hass, DOMAIN, {})
    other = MockConfigEntry(domain="demo", entry_id="not_a_baby_monitor")
    other.add_to_hass(hass)
    for entry_id in ("missing", "not_a_baby_monitor"):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "save_clip",
                {"config_entry_id": entry_id},
                blocking=True,
                return_response=True,
            )
        assert err.value.translation_key == "entry_not_found"
        assert str(err.value) == f"No Baby Monitor entry with id {entry_id}"


async def test_save_clip_for_an_unloaded_entry(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """A room that is not running has no audio to save."""
    await listening_room.async_start()
    assert await hass.config_entries.async_unload(ENTRY_ID)
    assert listening_room.entry.state is ConfigEntryState.NOT_LOADED

    with pytest.raises(ServiceValidationError) as err:
        await save_clip(hass)
    assert err.value.translation_key == "entry_not_loaded"
    assert "Nursery" in str(err.value)


async def test_pausing_forgets_the_audio_heard_before(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Listening switched off is a privacy pause: the action cannot save what came before it."""
    await listening_room.async_listen(noise(12.0))

    await listening_room.runtime.async_set_listening(False)

    with pytest.raises(ServiceValidationError) as err:
        await save_clip(hass)
    assert err.value.translation_key == "no_audio"
    assert clips(media) == []


async def test_save_clip_before_any_audio(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Nothing heard yet (the source gave no audio): a translated error, no file."""
    await listening_room.async_start(silence(0.0))

    with pytest.raises(ServiceValidationError) as err:
        await save_clip(hass)
    assert err.value.translation_key == "no_audio"
    assert clips(media) == []


@pytest.mark.usefixtures("no_drops")
@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["unwritable", "disk_full"],
)
@pytest.mark.parametrize("script", [CRY_9_TO_11])
async def test_write_failure_raises_a_repair_issue_and_detection_goes_on(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    error: OSError,
) -> None:
    """A clip that cannot be written raises a repair issue, logged once; crying still works.

    The action fails with a translated error; the next clip saved withdraws the issue.
    """
    sounds = async_capture_events(hass, EVENT_BABY_MONITOR)
    with patch(WRITE, side_effect=error):
        await listening_room.async_listen(noise(20.0))
        await wait_until(hass, lambda: (DOMAIN, ISSUE_ID) in issue_registry.issues)
        with pytest.raises(HomeAssistantError) as err:
            await save_clip(hass)

    assert [event.data["type"] for event in sounds] == ["cry_started", "cry_stopped"]
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.translation_key == "clips_unwritable"
    assert issue.translation_placeholders == {
        "room": "Nursery",
        "folder": str(media / "baby_monitor" / ENTRY_ID),
        "error": str(error),
    }
    assert err.value.translation_key == "clip_write_failed"
    assert str(error) in str(err.value)
    assert len(error_logs(caplog)) == 1  # the cry's clip, not again for the action
    clip_diagnostics = listening_room.clips.diagnostics()
    assert clip_diagnostics["last_error"] == str(error)
    assert clip_diagnostics["clips_saved"] == 0

    await save_clip(hass)

    assert (DOMAIN, ISSUE_ID) not in issue_registry.issues
    assert len(clips(media)) == 1


@pytest.mark.usefixtures("unwritable")
async def test_repair_issue_is_withdrawn_on_unload(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Unloading the entry withdraws its clip repair issue."""
    await listening_room.async_listen(noise(2.0))
    with pytest.raises(HomeAssistantError):
        await save_clip(hass)
    assert (DOMAIN, ISSUE_ID) in issue_registry.issues

    assert await hass.config_entries.async_unload(ENTRY_ID)

    assert (DOMAIN, ISSUE_ID) not in issue_registry.issues


@pytest.mark.parametrize("options", [{CONF_CLIP_RETENTION_DAYS: 7}])
async def test_retention_removes_old_clips_at_setup(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """Clips of this room older than the retention go, with their emptied day folders."""
    old = make_clip(
        media, f"{ENTRY_ID}/2025-01-01/010000_cry.wav", 1000, timedelta(days=8)
    )
    recent = make_clip(
        media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 1000, timedelta(days=6)
    )
    other_room = make_clip(
        media, "OTHERENTRY/2025-01-01/010000_cry.wav", 1000, timedelta(days=30)
    )

    await listening_room.async_start()

    assert not old.exists()
    assert not old.parent.exists()
    assert recent.exists()
    assert other_room.exists()


@pytest.mark.parametrize("options", [{CONF_CLIP_MAX_SIZE_MB: 10}])
async def test_retention_keeps_the_room_under_its_size_cap(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
) -> None:
    """The oldest clips go until the room is under the cap: at setup and after each clip."""
    size = 3_300_000
    ages = [timedelta(hours=hours) for hours in (4, 3, 2, 1)]
    files = [
        make_clip(media, f"{ENTRY_ID}/2025-01-07/0{n}0000_cry.wav", size, age)
        for n, age in enumerate(ages)
    ]

    await listening_room.async_start(noise(30.0))
    # 13.2 MB: the oldest goes, 9.9 MB stay
    assert [path.exists() for path in files] == [False, True, True, True]

    await listening_room.async_heard()
    response = await save_clip(hass)
    assert response is not None
    # + 0.96 MB: the next oldest goes; the new clip stays
    assert [path.exists() for path in files] == [False, False, True, True]
    assert Path(response["path"]).exists()
    assert sum(path.stat().st_size for path in clips(media)) <= 10_000_000


def other_room(title: str, number: int, options: dict[str, Any]) -> MockConfigEntry:
    """Make another room's entry, listened to through its own stream."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        entry_id=f"01JBABYMONITORTESTENTRY000{number}",
        unique_id=f"url:rtsp://192.0.2.{number}/stream1",
        data={
            CONF_SOURCE_TYPE: SOURCE_URL,
            CONF_URL: f"rtsp://192.0.2.{number}/stream1",
        },
        options={CONF_CONFIRM_S: 0.0, CONF_HOP_S: 1.0, **options},
    )


async def test_rooms_with_the_same_name_keep_their_clips_apart(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    options: dict[str, Any],
) -> None:
    """Each room's clips go to a folder named by its entry id, not by its title."""
    twin = other_room("Nursery", 2, options)
    await listening_room.async_start(noise(3.0))
    await setup_integration(hass, twin)
    for source in listening_room.sources.created:
        await wait_until(hass, source.drained.is_set)

    await save_clip(hass)
    await save_clip(hass, config_entry_id=twin.entry_id)

    assert len(clips(media)) == 1
    assert len(clips(media, twin.entry_id)) == 1


async def test_clips_in_the_old_title_folder_are_moved_at_setup(
    hass: HomeAssistant, media: Path, listening_room: Room
) -> None:
    """Clips an older version saved under the room's title move to its entry's folder.

    A name already taken there gets a number; unfinished writes are dropped; the old folder
    goes once empty.
    """
    age = timedelta(hours=1)
    moved = make_clip(media, "nursery/2025-01-07/010000_cry.wav", 1000, age)
    other_day = make_clip(media, "nursery/2025-01-06/230000_laughter.wav", 2000, age)
    make_clip(media, "nursery/2025-01-07/.020000_cry.wav.part", 10, age)
    taken = make_clip(media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 3000, age)

    await listening_room.async_start()

    folder = media / "baby_monitor" / ENTRY_ID
    assert clips(media) == [
        folder / "2025-01-06/230000_laughter.wav",
        taken,
        folder / "2025-01-07/010000_cry_2.wav",
    ]
    assert (folder / "2025-01-06/230000_laughter.wav").stat().st_size == 2000
    assert (folder / "2025-01-07/010000_cry_2.wav").stat().st_size == 1000
    assert not moved.exists()
    assert not other_day.exists()
    assert not (media / "baby_monitor" / "nursery").exists()


async def test_a_title_folder_two_rooms_share_is_left_alone(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    options: dict[str, Any],
) -> None:
    """Two rooms of one name shared the old folder: whose clips are whose is unknown."""
    shared = make_clip(
        media, "nursery/2025-01-07/010000_cry.wav", 1000, timedelta(hours=1)
    )
    other_room("Nursery", 2, options).add_to_hass(hass)

    await listening_room.async_start()

    assert shared.exists()
    assert clips(media) == []


async def test_unfinished_clips_are_removed_at_start(
    hass: HomeAssistant, media: Path, listening_room: Room
) -> None:
    """A write interrupted by a crash or power cut leaves a hidden .part file: it goes."""
    partial = make_clip(
        media, f"{ENTRY_ID}/2025-01-07/.010000_cry.wav.part", 100, timedelta(hours=1)
    )
    clip = make_clip(
        media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 100, timedelta(hours=1)
    )

    await listening_room.async_start()

    assert not partial.exists()
    assert clip.exists()


@pytest.mark.parametrize(
    "options", [{CONF_CLIP_RETENTION_DAYS: 7, CONF_CLIP_MAX_SIZE_MB: 10}]
)
async def test_retention_is_applied_every_day(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Clips that grow too old or too many while Home Assistant runs go within a day."""
    await listening_room.async_start()
    aging = make_clip(
        media, f"{ENTRY_ID}/2025-01-01/010000_cry.wav", 1000, timedelta(days=6.5)
    )
    older = make_clip(
        media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 6_000_000, timedelta(hours=2)
    )
    newer = make_clip(
        media, f"{ENTRY_ID}/2025-01-07/020000_cry.wav", 6_000_000, timedelta(hours=1)
    )
    freezer.tick(timedelta(hours=12))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert aging.exists()  # nothing happens before the day is up

    freezer.tick(timedelta(hours=12))
    async_fire_time_changed(hass)
    # the emptied day folder goes after its last clip: wait for both, not just the files
    await wait_until(
        hass,
        lambda: not aging.exists() and not older.exists() and not aging.parent.exists(),
    )

    assert newer.exists()
    assert not aging.parent.exists()


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        ({}, True),
        ({CONF_KEEP_CLIPS_ON_REMOVE: True}, True),
        ({CONF_KEEP_CLIPS_ON_REMOVE: False}, False),
    ],
    ids=["default", "keep", "delete"],
)
async def test_removing_a_room_keeps_or_deletes_its_clips(
    hass: HomeAssistant,
    media: Path,
    listening_room: Room,
    kept: bool,
) -> None:
    """The room's options decide whether its clips outlive it; other rooms keep theirs."""
    other_room = make_clip(
        media, "OTHERENTRY/2025-01-07/010000_cry.wav", 100, timedelta(hours=1)
    )
    await listening_room.async_listen(noise(3.0))
    response = await save_clip(hass)
    assert response is not None

    await hass.config_entries.async_remove(ENTRY_ID)
    await hass.async_block_till_done()

    assert Path(response["path"]).exists() is kept
    assert (media / "baby_monitor" / ENTRY_ID).exists() is kept
    assert other_room.exists()


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("options", [{CONF_KEEP_CLIPS_ON_REMOVE: False}])
async def test_removing_a_room_that_never_started_deletes_its_old_folder(
    hass: HomeAssistant, media: Path, room: Room
) -> None:
    """A room removed before its clips were moved loses the old title-named folder too."""
    old = make_clip(media, "nursery/2025-01-07/010000_cry.wav", 100, timedelta(hours=1))
    await room.async_start()
    assert room.entry.state is ConfigEntryState.SETUP_RETRY

    await hass.config_entries.async_remove(ENTRY_ID)
    await hass.async_block_till_done()

    assert not old.exists()
