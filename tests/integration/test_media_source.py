"""Saved clips in the media browser: rooms by name, days and clips newest first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from custom_components.baby_monitor.media_source import clip_title
from homeassistant.components import media_source
from homeassistant.components.media_player import BrowseError
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from .conftest import ENTRY_ID, Room
from .test_clips import make_clip, options  # noqa: F401 - clips saved

SOURCE = "media-source://baby_monitor"


@pytest.fixture
async def browser(hass: HomeAssistant, media: Path, listening_room: Room) -> Path:
    """Set up the nursery and the media browser; returns the clips folder."""
    assert await async_setup_component(hass, "media_source", {})
    await listening_room.async_start()
    return media / "baby_monitor"


async def test_rooms_are_listed_by_name(
    hass: HomeAssistant,
    browser: Path,
    media: Path,
) -> None:
    """A room's folder is its entry id, shown as its name; other folders as they are."""
    hour = timedelta(hours=1)
    make_clip(media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 10, hour)
    make_clip(media, "kitchen/2025-01-07/010000_cry.wav", 10, hour)  # shared, old
    make_clip(media, "01JREMOVEDROOM/2025-01-07/010000_cry.wav", 10, hour)

    root = await media_source.async_browse_media(hass, SOURCE)

    assert root.title == "Baby Monitor"
    assert [(child.title, child.media_content_id) for child in root.children] == [
        ("01JREMOVEDROOM", f"{SOURCE}/01JREMOVEDROOM"),
        ("kitchen", f"{SOURCE}/kitchen"),
        ("Nursery", f"{SOURCE}/{ENTRY_ID}"),
    ]
    sources = await media_source.async_browse_media(hass, None)
    assert "Baby Monitor" in [child.title for child in sources.children]


async def test_a_room_without_clips_yet_is_listed_empty(
    hass: HomeAssistant, browser: Path
) -> None:
    """A parent who just turned Save clips on finds the room, with nothing in it yet."""
    root = await media_source.async_browse_media(hass, SOURCE)
    assert [child.title for child in root.children] == ["Nursery"]
    room = await media_source.async_browse_media(
        hass, root.children[0].media_content_id
    )
    assert room.title == "Nursery"
    assert room.children == []


async def test_days_and_clips_newest_first_and_playable(
    hass: HomeAssistant,
    browser: Path,
    media: Path,
) -> None:
    """A room lists its days, a day its clips with their time and sound; clips play."""
    hour = timedelta(hours=1)
    make_clip(media, f"{ENTRY_ID}/2025-01-06/230000_cry.wav", 10, hour)
    make_clip(media, f"{ENTRY_ID}/2025-01-07/010000_cry.wav", 10, hour)
    make_clip(media, f"{ENTRY_ID}/2025-01-07/031405_laughter.wav", 10, hour)
    make_clip(media, f"{ENTRY_ID}/2025-01-07/.040000_cry.wav.part", 10, hour)

    room = await media_source.async_browse_media(hass, f"{SOURCE}/{ENTRY_ID}")
    assert room.title == "Nursery"
    assert [child.title for child in room.children] == ["2025-01-07", "2025-01-06"]

    day = await media_source.async_browse_media(hass, room.children[0].media_content_id)
    assert [(child.title, child.can_play) for child in day.children] == [
        ("03:14:05 laughter", True),
        ("01:00:00 cry", True),
    ]

    played = await media_source.async_resolve_media(
        hass, day.children[0].media_content_id, None
    )
    assert (
        played.url
        == f"/media/local/baby_monitor/{ENTRY_ID}/2025-01-07/031405_laughter.wav"
    )
    assert played.mime_type == "audio/wav"


@pytest.mark.usefixtures("browser")
@pytest.mark.parametrize(
    "identifier",
    [
        "..",
        f"{ENTRY_ID}/..",
        f"{ENTRY_ID}/2025-01-07/../../../secrets.yaml",
        "missing-room",
        f"{ENTRY_ID}/2025-01-07/010000_cry.wav",
    ],
)
async def test_only_clip_folders_are_browsed(
    hass: HomeAssistant, identifier: str
) -> None:
    """Paths outside the clips, missing folders and clips themselves are not browsed."""
    with pytest.raises(BrowseError):
        await media_source.async_browse_media(hass, f"{SOURCE}/{identifier}")


@pytest.mark.usefixtures("browser")
@pytest.mark.parametrize(
    "identifier",
    [
        f"{ENTRY_ID}/2025-01-07/missing.wav",
        f"{ENTRY_ID}/2025-01-07",
        f"{ENTRY_ID}/2025-01-07/../../../secrets.wav",
    ],
)
async def test_only_existing_clips_play(hass: HomeAssistant, identifier: str) -> None:
    """A missing clip, a folder or a path outside the clips does not resolve."""
    with pytest.raises(media_source.Unresolvable):
        await media_source.async_resolve_media(hass, f"{SOURCE}/{identifier}", None)


def test_clip_titles() -> None:
    """Clip file names read as time and sound; numbered twins keep their number."""
    assert clip_title("031405_cry.wav") == "03:14:05 cry"
    assert clip_title("031405_manual_2.wav") == "03:14:05 manual (2)"
    assert clip_title("something.wav") == "something.wav"
