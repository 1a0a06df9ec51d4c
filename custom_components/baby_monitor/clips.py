"""Saved clips: a ring of recent audio, WAV files of cries and laughter, retention, repairs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
import shutil
import time
from typing import Any, Final
import wave

import numpy as np
import numpy.typing as npt

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import slugify
import homeassistant.util.dt as dt_util

from .const import (
    CONF_CLIP_MAX_SIZE_MB,
    CONF_CLIP_RETENTION_DAYS,
    CONF_KEEP_CLIPS_ON_REMOVE,
    CONF_SAVE_CLIPS,
    DEFAULT_CLIP_MAX_SIZE_MB,
    DEFAULT_CLIP_RETENTION_DAYS,
    DEFAULT_KEEP_CLIPS_ON_REMOVE,
    DEFAULT_SAVE_CLIPS,
    DOMAIN,
    EVENT_CLIP_SAVED,
    ISSUE_CLIPS_UNWRITABLE,
    LOGGER,
)
from .engine.detector import SoundEvent
from .engine.pcm import PCM16_SCALE, SAMPLE_RATE, float_to_pcm16
from .issues import async_raise_issue, async_withdraw_issue

type Samples = npt.NDArray[np.int16]

PRE_ROLL_S: Final = 5.0
"""A clip begins this long before the end of its sound's first window above threshold. The model
hears a sound 1-2 s after it begins, so about 3 s of calm lead in."""
POST_ROLL_S: Final = 2.0
"""A clip ends this long after the end of its sound's last window above threshold (within the hold
time): a clip holds everything the windows that heard the sound heard."""
MAX_CLIP_S: Final = 120.0
"""Longest clip, pre-roll included; a longer sound is saved when its clip reaches this length."""
MAX_MANUAL_S: Final = 60.0
"""Most audio `baby_monitor.save_clip` can keep (the ring always holds at least this much)."""
DEFAULT_MANUAL_S: Final = 30.0
LAG_S: Final = 10.0
"""Room in the ring for inference running behind the audio when a sound is reported."""
CLIPS_FOLDER: Final = "baby_monitor"
"""Folder of the clips in the local media folder, one subfolder per room (its entry id)."""
RETENTION_INTERVAL: Final = timedelta(days=1)
"""How often the retention is applied besides at start-up and after each clip."""
LOCAL_MEDIA: Final = "local"
SOUND_MANUAL: Final = "manual"
MB: Final = 1_000_000


def media_root(hass: HomeAssistant) -> Path:
    """Home Assistant's local media folder."""
    return Path(hass.config.media_dirs.get(LOCAL_MEDIA) or hass.config.path("media"))


def room_folder(hass: HomeAssistant, entry_id: str) -> Path:
    """Folder of a room's clips: named by its entry id, so it is its own and survives renames."""
    return media_root(hass) / CLIPS_FOLDER / entry_id


@callback
def async_title_folder(hass: HomeAssistant, entry: ConfigEntry) -> Path | None:
    """Find the title-named folder older versions saved the room's clips to, if only its.

    None when the title has no slug or another Baby Monitor entry has a title of the same
    slug (their clips shared that folder, so it cannot be told whose they are).
    """
    slug = slugify(entry.title)
    if not slug or any(
        slugify(other.title) == slug
        for other in hass.config_entries.async_entries(DOMAIN)
        if other.entry_id != entry.entry_id
    ):
        return None
    return media_root(hass) / CLIPS_FOLDER / slug


def _free_path(day: Path, stem: str) -> Path:
    """`<day>/<stem>.wav`, numbered (`_2`, `_3`, ...) if that name is taken."""
    path = day / f"{stem}.wav"
    number = 2
    while path.exists():
        path = day / f"{stem}_{number}.wav"
        number += 1
    return path


def write_clip(folder: Path, started_at: datetime, sound: str, audio: Samples) -> Path:
    """Write a 16 kHz mono WAV as <folder>/<YYYY-MM-DD>/<HHMMSS>_<sound>.wav (blocking).

    The file appears complete or not at all: it is written under a hidden name, then renamed.
    """
    day = folder / f"{started_at:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    path = _free_path(day, f"{started_at:%H%M%S}_{sound}")
    partial = day / f".{path.name}.part"
    try:
        with wave.open(str(partial), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(audio.astype("<i2").tobytes())
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path


def prune_clips(
    folder: Path, max_age: timedelta, max_bytes: int, keep: Path | None = None
) -> list[Path]:
    """Delete clips older than `max_age`, then the oldest until under `max_bytes` (blocking).

    `keep` (the clip just written) is never deleted; empty day folders are removed.
    Returns the clips deleted.
    """
    if not folder.is_dir():
        return []
    clips: list[tuple[float, Path, int]] = []
    for path in folder.glob("*/*.wav"):
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            clips.append((stat.st_mtime, path, stat.st_size))
    clips.sort()
    deadline = time.time() - max_age.total_seconds()
    total = sum(size for _, _, size in clips)
    removed: list[Path] = []
    for mtime, path, size in clips:
        if mtime >= deadline and total <= max_bytes:
            break
        if path == keep:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            LOGGER.debug("Cannot delete old clip %s: %s", path, err)
            continue
        total -= size
        removed.append(path)
    for day in folder.iterdir():
        if day.is_dir() and not any(day.iterdir()):
            with contextlib.suppress(OSError):
                day.rmdir()
    return removed


def remove_partials(folder: Path) -> list[Path]:
    """Delete the hidden `.part` files that interrupted writes left behind (blocking)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.glob("*/.*.part"):
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            LOGGER.debug("Cannot delete the unfinished clip %s: %s", path, err)
            continue
        removed.append(path)
    return removed


def move_clips(old: Path, new: Path) -> list[Path]:
    """Move the clips of `old` into the same day folders of `new` (blocking).

    A clip whose name is taken there gets a number. Interrupted writes are dropped; `old`
    and its day folders are removed once empty (anything else in them stays). Returns
    where the clips went.
    """
    moved: list[Path] = []
    if old == new or not old.is_dir():
        return moved
    remove_partials(old)
    for path in sorted(old.glob("*/*.wav")):
        day = new / path.parent.name
        day.mkdir(parents=True, exist_ok=True)
        target = _free_path(day, path.stem)
        path.replace(target)
        moved.append(target)
    for folder in (*old.iterdir(), old):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return moved


def tidy_clips(folder: Path, title_folder: Path | None) -> tuple[int, int]:
    """Move clips from the old title-named folder and drop unfinished ones (blocking).

    Returns how many clips were moved and how many `.part` files were deleted.
    """
    moved = move_clips(title_folder, folder) if title_folder is not None else []
    return len(moved), len(remove_partials(folder))


def delete_clips(folders: list[Path]) -> None:
    """Delete clip folders with everything in them (blocking; missing ones are skipped)."""
    for folder in folders:
        if folder.is_dir():
            shutil.rmtree(folder)


@dataclass(frozen=True, slots=True)
class ClipSettings:
    """Whether sounds are saved and how long and how much of them is kept."""

    enabled: bool = DEFAULT_SAVE_CLIPS
    retention_days: float = DEFAULT_CLIP_RETENTION_DAYS
    max_size_mb: float = DEFAULT_CLIP_MAX_SIZE_MB
    keep_on_remove: bool = DEFAULT_KEEP_CLIPS_ON_REMOVE

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ClipSettings:
        """Read the options, with defaults for those never set."""
        return cls(
            enabled=bool(options.get(CONF_SAVE_CLIPS, DEFAULT_SAVE_CLIPS)),
            retention_days=float(
                options.get(CONF_CLIP_RETENTION_DAYS, DEFAULT_CLIP_RETENTION_DAYS)
            ),
            max_size_mb=float(
                options.get(CONF_CLIP_MAX_SIZE_MB, DEFAULT_CLIP_MAX_SIZE_MB)
            ),
            keep_on_remove=bool(
                options.get(CONF_KEEP_CLIPS_ON_REMOVE, DEFAULT_KEEP_CLIPS_ON_REMOVE)
            ),
        )


@dataclass(frozen=True, slots=True)
class SavedClip:
    """A clip on disk and how Home Assistant reaches it."""

    sound: str
    path: Path
    media_content_id: str
    url: str
    duration: float

    def as_dict(self) -> dict[str, Any]:
        """Path, media-source id, URL and duration (the action's response)."""
        return {
            "path": str(self.path),
            "media_content_id": self.media_content_id,
            "url": self.url,
            "duration": self.duration,
        }


class AudioRing:
    """The last `seconds` of audio as 16-bit samples, addressed by index since the start."""

    def __init__(self, seconds: float) -> None:
        """Make an empty ring."""
        self._buffer: Samples = np.zeros(round(seconds * SAMPLE_RATE), np.int16)
        self.end = 0
        """Index after the newest sample."""
        self._floor = 0

    @property
    def start(self) -> int:
        """Index of the oldest sample still held."""
        return max(self._floor, self.end - self._buffer.size)

    def clear(self) -> None:
        """Forget everything held (indices go on, so open recordings keep their place)."""
        self._buffer.fill(0)
        self._floor = self.end

    def append(self, samples: Samples) -> None:
        """Add samples, overwriting the oldest."""
        size = self._buffer.size
        kept = samples[-size:]
        # at most two slice copies: up to the buffer's end, then from its start
        at = (self.end + samples.size - kept.size) % size
        first = min(kept.size, size - at)
        self._buffer[at : at + first] = kept[:first]
        self._buffer[: kept.size - first] = kept[first:]
        self.end += samples.size

    def read(self, begin: int, end: int) -> Samples:
        """Copy the samples from index `begin` to `end`, as far as they are still held."""
        begin, end = max(begin, self.start), min(end, self.end)
        if end <= begin:
            return np.zeros(0, np.int16)
        samples: Samples = self._buffer[np.arange(begin, end) % self._buffer.size]
        return samples


@dataclass(slots=True)
class Recording:
    """A clip being recorded: from its first sample until the sound stops or the cap."""

    sound: str
    begin: int
    started_at: datetime
    episode: int | None = None
    chunks: list[Samples] = field(default_factory=list)
    samples: int = 0

    def add(self, samples: Samples) -> None:
        """Append audio."""
        self.chunks.append(samples)
        self.samples += samples.size


class ClipRecorder:
    """Keeps recent audio of one room and saves clips of its sounds under the media folder."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        settings: ClipSettings,
        stream_seconds: Callable[[], float],
        ring_s: float = MAX_MANUAL_S,
    ) -> None:
        """Prepare the ring; `stream_seconds` reads the runtime's stream clock."""
        self.hass = hass
        self.entry = entry
        self.settings = settings
        self.media_root = media_root(hass)
        self.folder = room_folder(hass, entry.entry_id)
        self.clips_saved = 0
        self.last_error: str | None = None
        self._stream_seconds = stream_seconds
        self._ring = AudioRing(max(ring_s, MAX_MANUAL_S))
        self._origin = 0
        self._recordings: dict[str, Recording] = {}
        self._running = True
        self._unwritable = False
        self._lock = asyncio.Lock()

    @callback
    def async_handle_audio(self, block: npt.NDArray[np.float32]) -> None:
        """Keep a block (called before it reaches the stream) and feed open recordings."""
        if not self._running:
            return
        # stream time 0 is where the current connection began in the ring
        self._origin = self._ring.end - round(self._stream_seconds() * SAMPLE_RATE)
        samples = float_to_pcm16(block)
        self._ring.append(samples)
        for recording in list(self._recordings.values()):
            self._record(recording, samples)

    def heard_audio(self, start: float, end: float) -> npt.NDArray[np.float32] | None:
        """Audio heard between stream times `start` and `end` (s); None unless all still held."""
        begin, stop = self._index(max(start, 0.0)), self._index(end)
        if (
            begin < max(self._ring.start, self._origin)
            or not begin < stop <= self._ring.end
        ):
            return None
        return self._ring.read(begin, stop).astype(np.float32) / np.float32(PCM16_SCALE)

    @callback
    def async_handle_event(self, event: SoundEvent) -> None:
        """Start a clip when a sound starts and finish it when it stops."""
        if not self._running or not self.settings.enabled:
            return
        if event.kind == "started":
            self._finish(event.label)
            begin = max(
                self._index(event.first_window - PRE_ROLL_S),
                self._origin,
                self._ring.start,
            )
            recording = self._recordings[event.label] = Recording(
                event.label,
                begin,
                dt_util.now()
                - timedelta(seconds=(self._ring.end - begin) / SAMPLE_RATE),
                event.episode,
            )
            self._record(recording, self._ring.read(begin, self._ring.end))
            return
        if (open_recording := self._recordings.get(event.label)) is not None:
            end = (
                event.t
                if event.last_window is None
                else min(event.last_window + POST_ROLL_S, event.t)
            )
            self._finish(event.label, self._index(end) - open_recording.begin)

    @callback
    def async_forget(self) -> None:
        """Drop the audio held: detection was paused for privacy, so nothing before can be saved."""
        self._ring.clear()

    async def async_save_last(self, seconds: float) -> SavedClip:
        """Save the last `seconds` of audio heard (the `save_clip` action)."""
        audio = self._ring.read(
            self._ring.end - round(seconds * SAMPLE_RATE), self._ring.end
        )
        if not audio.size:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_audio",
                translation_placeholders={"room": self.entry.title},
            )
        started_at = dt_util.now() - timedelta(seconds=audio.size / SAMPLE_RATE)
        try:
            return await self._async_write(SOUND_MANUAL, started_at, audio)
        except OSError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="clip_write_failed",
                translation_placeholders={
                    "folder": str(self.folder),
                    "error": str(err),
                },
            ) from err

    async def async_start(self, title_folder: Path | None) -> None:
        """Move clips from the room's old title-named folder, drop unfinished ones, prune."""
        async with self._lock:
            try:
                moved, partials = await self.hass.async_add_executor_job(
                    tidy_clips, self.folder, title_folder
                )
            except OSError as err:
                LOGGER.warning(
                    "Cannot move the clips of %s from %s to %s: %s",
                    self.entry.title,
                    title_folder,
                    self.folder,
                    err,
                )
            else:
                if moved:
                    LOGGER.info(
                        "Moved %d clips of %s from %s to %s",
                        moved,
                        self.entry.title,
                        title_folder,
                        self.folder,
                    )
                if partials:
                    LOGGER.debug(
                        "Deleted %d unfinished clips of %s", partials, self.entry.title
                    )
            await self._async_prune()

    async def async_prune(self, now: datetime | None = None) -> None:
        """Apply the retention to this room's clips (daily; in the executor)."""
        async with self._lock:
            await self._async_prune()

    async def _async_prune(self, keep: Path | None = None) -> None:
        """Apply the retention, never deleting `keep`; the caller holds the lock."""
        try:
            removed = await self.hass.async_add_executor_job(
                prune_clips,
                self.folder,
                timedelta(days=self.settings.retention_days),
                round(self.settings.max_size_mb * MB),
                keep,
            )
        except OSError as err:
            LOGGER.warning("Cannot clean up the clips in %s: %s", self.folder, err)
            return
        if removed:
            LOGGER.debug("Removed %d old clips of %s", len(removed), self.entry.title)

    @callback
    def async_stop(self) -> None:
        """Stop recording (saving clips still open) and withdraw the repair issue."""
        for sound in list(self._recordings):
            self._finish(sound)
        self._running = False
        async_withdraw_issue(self.hass, ISSUE_CLIPS_UNWRITABLE, self.entry.entry_id)

    def diagnostics(self) -> dict[str, Any]:
        """Clip settings and counters."""
        return {
            "save_clips": self.settings.enabled,
            "retention_days": self.settings.retention_days,
            "max_size_mb": self.settings.max_size_mb,
            "keep_on_remove": self.settings.keep_on_remove,
            "folder": str(self.folder),
            "audio_held_s": (self._ring.end - self._ring.start) / SAMPLE_RATE,
            "recording": sorted(self._recordings),
            "clips_saved": self.clips_saved,
            "last_error": self.last_error,
        }

    @callback
    def _record(self, recording: Recording, samples: Samples) -> None:
        """Add audio to a recording; save it once it reaches the longest clip."""
        cap = round(MAX_CLIP_S * SAMPLE_RATE)
        recording.add(samples[: cap - recording.samples])
        if recording.samples >= cap:
            self._finish(recording.sound)

    def _index(self, t: float) -> int:
        """Ring index of stream time `t` (seconds since the connection began)."""
        return self._origin + round(t * SAMPLE_RATE)

    @callback
    def _finish(self, sound: str, samples: int | None = None) -> None:
        """Close a recording (keeping its first `samples`) and save it in the background."""
        if (recording := self._recordings.pop(sound, None)) is None:
            return
        audio = np.concatenate(recording.chunks)
        if samples is not None:
            audio = audio[: max(samples, 0)]
        if audio.size:
            self.entry.async_create_task(
                self.hass,
                self._async_save_episode(
                    sound, recording.started_at, audio, recording.episode
                ),
                f"{DOMAIN} save {sound} clip {self.entry.title}",
            )

    async def _async_save_episode(
        self, sound: str, started_at: datetime, audio: Samples, episode: int | None
    ) -> None:
        """Save a sound's clip; a failure is reported in Repairs, not raised."""
        with contextlib.suppress(OSError):
            await self._async_write(sound, started_at, audio, episode)

    async def _async_write(
        self,
        sound: str,
        started_at: datetime,
        audio: Samples,
        episode: int | None = None,
    ) -> SavedClip:
        """Write a clip, apply the retention and announce it; OSError when it cannot be written."""
        async with self._lock:
            try:
                path = await self.hass.async_add_executor_job(
                    write_clip, self.folder, started_at, sound, audio
                )
            except OSError as err:
                self._write_failed(err)
                raise
            self._write_succeeded()
            await self._async_prune(keep=path)
        relative = path.relative_to(self.media_root).as_posix()
        clip = SavedClip(
            sound=sound,
            path=path,
            media_content_id=f"media-source://media_source/{LOCAL_MEDIA}/{relative}",
            url=f"/media/{LOCAL_MEDIA}/{relative}",
            duration=round(audio.size / SAMPLE_RATE, 1),
        )
        device = dr.async_get(self.hass).async_get_device(
            identifiers={(DOMAIN, self.entry.entry_id)}
        )
        self.hass.bus.async_fire(
            EVENT_CLIP_SAVED,
            {
                "device_id": device.id if device else None,
                "entry_id": self.entry.entry_id,
                "sound": sound,
                "path": str(path),
                "media_content_id": clip.media_content_id,
                "url": clip.url,
                "duration": clip.duration,
                # what `baby_monitor.teach` calls the sound's episode (none for save_clip)
                "episode": episode,
            },
        )
        LOGGER.debug(
            "Saved a %g-s %s clip of %s: %s",
            clip.duration,
            sound,
            self.entry.title,
            path,
        )
        return clip

    @callback
    def _write_failed(self, err: OSError) -> None:
        """Log once and raise a repair issue; detection goes on."""
        self.last_error = str(err)
        if self._unwritable or not self._running:
            LOGGER.debug("Still cannot save clips to %s: %s", self.folder, err)
            return
        self._unwritable = True
        LOGGER.error(
            "Cannot save clips of %s to %s: %s; detection goes on",
            self.entry.title,
            self.folder,
            err,
        )
        async_raise_issue(
            self.hass,
            ISSUE_CLIPS_UNWRITABLE,
            self.entry.entry_id,
            {"room": self.entry.title, "folder": str(self.folder), "error": str(err)},
        )

    @callback
    def _write_succeeded(self) -> None:
        """Count the clip; after failures, log the recovery and withdraw the repair issue."""
        self.clips_saved += 1
        if self._unwritable:
            self._unwritable = False
            LOGGER.info(
                "Clips of %s are saved to %s again", self.entry.title, self.folder
            )
            async_withdraw_issue(self.hass, ISSUE_CLIPS_UNWRITABLE, self.entry.entry_id)


@callback
def async_setup_clips(
    hass: HomeAssistant,
    entry: ConfigEntry,
    stream_seconds: Callable[[], float],
    confirm_s: float,
) -> ClipRecorder:
    """Make the entry's clip recorder; tidy its folder now, prune daily.

    The caller feeds it the runtime's audio and events; `confirm_s` is the longest confirm time,
    which a sound's pre-roll must reach back over.
    """
    recorder = ClipRecorder(
        hass,
        entry,
        ClipSettings.from_options(entry.options),
        stream_seconds,
        # the pre-roll of a sound reported after its confirm time, with inference lagging
        ring_s=confirm_s + PRE_ROLL_S + LAG_S,
    )
    entry.async_on_unload(recorder.async_stop)
    entry.async_on_unload(
        async_track_time_interval(
            hass,
            recorder.async_prune,
            RETENTION_INTERVAL,
            name=f"{DOMAIN} clip retention {entry.title}",
        )
    )
    entry.async_create_task(
        hass,
        recorder.async_start(async_title_folder(hass, entry)),
        f"{DOMAIN} clip retention {entry.title}",
    )
    return recorder


async def async_remove_clips(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete a removed room's clips unless its options keep them."""
    if ClipSettings.from_options(entry.options).keep_on_remove:
        return
    folders = [room_folder(hass, entry.entry_id)]
    if (title_folder := async_title_folder(hass, entry)) is not None:
        folders.append(title_folder)
    try:
        await hass.async_add_executor_job(delete_clips, folders)
    except OSError as err:
        LOGGER.warning("Cannot delete the clips of %s: %s", entry.title, err)
    else:
        LOGGER.info("Deleted the clips of %s", entry.title)
