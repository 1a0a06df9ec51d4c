"""Saved clips in the media browser, each room under its name (its folder is its entry id)."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Final

from homeassistant.components.media_player.const import MediaClass
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant

from .clips import CLIPS_FOLDER, LOCAL_MEDIA, media_root
from .const import DOMAIN

MIME_TYPE: Final = "audio/wav"
NAME: Final = "Baby Monitor"
_PARTS: Final = (
    re.compile(r"[^./][^/]*"),  # a room's folder
    re.compile(r"\d{4}-\d{2}-\d{2}"),  # a day
    re.compile(r"[^./][^/]*\.wav"),  # a clip
)
"""What each part of an identifier `<room folder>/<YYYY-MM-DD>/<clip>.wav` may be."""
_CLIP_NAME: Final = re.compile(r"(\d{2})(\d{2})(\d{2})_([a-z]+)(?:_(\d+))?")


async def async_get_media_source(hass: HomeAssistant) -> ClipMediaSource:
    """Offer the saved clips as a media source."""
    return ClipMediaSource(hass)


def _parts(identifier: str) -> list[str]:
    """Split an identifier into folder, day and clip; Unresolvable if it is none of ours."""
    parts = identifier.split("/") if identifier else []
    if len(parts) > len(_PARTS) or not all(
        pattern.fullmatch(part) for pattern, part in zip(_PARTS, parts, strict=False)
    ):
        raise Unresolvable(f"Not a Baby Monitor clip: {identifier}")
    return parts


def clip_title(name: str) -> str:
    """`031405_cry_2.wav` as `03:14:05 cry (2)`; other names as they are."""
    if (match := _CLIP_NAME.fullmatch(Path(name).stem)) is None:
        return name
    hours, minutes, seconds, sound, number = match.groups()
    title = f"{hours}:{minutes}:{seconds} {sound}"
    return f"{title} ({number})" if number else title


class ClipMediaSource(MediaSource):
    """Rooms (by their current names), their days and their clips, newest first."""

    name: str = NAME

    def __init__(self, hass: HomeAssistant) -> None:
        """Browse the clips under the local media folder."""
        super().__init__(DOMAIN)
        self.hass = hass

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """Play a clip through the local media folder's URL."""
        parts = _parts(item.identifier)
        path = media_root(self.hass) / CLIPS_FOLDER / item.identifier
        if len(parts) != len(_PARTS) or not await self.hass.async_add_executor_job(
            path.is_file
        ):
            raise Unresolvable(f"No such clip: {item.identifier}")
        return PlayMedia(
            f"/media/{LOCAL_MEDIA}/{CLIPS_FOLDER}/{item.identifier}", MIME_TYPE
        )

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """List the rooms, a room's days or a day's clips."""
        try:
            parts = _parts(item.identifier)
        except Unresolvable as err:
            raise BrowseError(str(err)) from err
        if len(parts) == len(_PARTS):
            raise BrowseError(f"A clip is played, not browsed: {item.identifier}")
        titles = {
            entry.entry_id: entry.title
            for entry in self.hass.config_entries.async_entries(DOMAIN)
        }
        return await self.hass.async_add_executor_job(self._browse, parts, titles)

    def _browse(self, parts: list[str], titles: dict[str, str]) -> BrowseMediaSource:
        """Build the folder's listing (blocking); rooms no longer set up show their folder.

        Every room is listed, also before its first clip (then it is empty).
        """
        folder = media_root(self.hass) / CLIPS_FOLDER / "/".join(parts)
        known_room = len(parts) == 1 and parts[0] in titles
        if parts and not folder.is_dir() and not known_room:
            raise BrowseError(f"No such folder: {'/'.join(parts)}")
        clips = len(parts) == len(_PARTS) - 1
        names = [
            path.name
            for path in (folder.iterdir() if folder.is_dir() else ())
            if _PARTS[len(parts)].fullmatch(path.name)
            and (path.is_file() if clips else path.is_dir())
        ]
        if not parts:  # rooms, by name
            title = NAME
            children = sorted(
                ((name, titles.get(name, name)) for name in {*names, *titles}),
                key=lambda child: child[1].casefold(),
            )
        else:  # days or clips, newest first
            title = titles.get(parts[0], parts[0]) if len(parts) == 1 else parts[-1]
            children = [
                (name, clip_title(name) if clips else name)
                for name in sorted(names, reverse=True)
            ]
        child_class = MediaClass.MUSIC if clips else MediaClass.DIRECTORY
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier="/".join(parts) or None,
            media_class=MediaClass.DIRECTORY,
            media_content_type="",
            title=title,
            can_play=False,
            can_expand=True,
            children_media_class=child_class,
            children=[
                BrowseMediaSource(
                    domain=DOMAIN,
                    identifier="/".join([*parts, name]),
                    media_class=child_class,
                    media_content_type=MIME_TYPE if clips else "",
                    title=child_title,
                    can_play=clips,
                    can_expand=not clips,
                )
                for name, child_title in children
            ],
        )
