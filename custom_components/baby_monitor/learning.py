"""What a room learns from its parent: verdicts kept in `.storage`, the room's head refit on them."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
import homeassistant.util.dt as dt_util

from .clips import ClipRecorder
from .const import DOMAIN, ISSUE_LEARNT_RESET, LOGGER, SOUND_WORDS
from .engine.backends import ModelRuntime
from .engine.room import (
    TAUGHT_AUDIO_S,
    TAUGHT_HOP_S,
    VERDICTS,
    Example,
    ExampleError,
    Heard,
    RoomHead,
    Verdict,
    fit_room,
    newest,
    taught_patches,
)
from .issues import async_raise_issue
from .runtime import BabyMonitorRuntime

type Floats = npt.NDArray[np.float32]

STORAGE_VERSION: Final = 1


def storage_key(entry_id: str) -> str:
    """Name the `.storage` file of one room's examples."""
    return f"{DOMAIN}.{entry_id}.learnt"


async def async_remove_learnt(hass: HomeAssistant, entry_id: str) -> None:
    """Delete what a removed room had learnt."""
    await Store[dict[str, Any]](
        hass, STORAGE_VERSION, storage_key(entry_id)
    ).async_remove()


def _fit(examples: tuple[Example, ...], model: ModelRuntime) -> RoomHead | None:
    """Fit the room's head on `examples` (None: nothing taught, score as shipped). Blocking."""
    if not examples:
        return None
    meta = model.meta
    assert meta.backbone is not None
    return fit_room(
        examples,
        model.patch_probabilities,
        meta.labels,
        meta.backbone.embedding_columns,
    )


class RoomLearning:
    """The examples a parent taught one room, kept across restarts, and the head they make."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        runtime: BabyMonitorRuntime,
        clips: ClipRecorder,
    ) -> None:
        """Nothing is read until `async_load`; `clips` holds the audio last heard."""
        self.hass = hass
        self.entry = entry
        self.runtime = runtime
        self.clips = clips
        self.examples: list[Example] = []
        self._store = Store[dict[str, Any]](
            hass, STORAGE_VERSION, storage_key(entry.entry_id), private=True
        )
        self._lock = asyncio.Lock()
        self._listeners: list[CALLBACK_TYPE] = []

    @property
    def supported(self) -> bool:
        """Whether the model has per-patch rows to learn from (a backbone)."""
        return self.runtime.model.meta.backbone is not None

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per detected sound and verdict."""
        counts: dict[str, dict[str, int]] = {
            sound: dict.fromkeys(VERDICTS, 0) for sound in self.runtime.settings.sounds
        }
        for example in self.examples:
            if example.sound in counts:
                counts[example.sound][example.verdict] += 1
        return counts

    @callback
    def async_add_listener(self, update_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update_callback` whenever the examples change; returns the remover."""
        self._listeners.append(update_callback)
        return lambda: self._listeners.remove(update_callback)

    async def async_load(self) -> None:
        """Read the stored examples and score with them; a corrupt store starts afresh."""
        if not self.supported:
            return
        features = self.runtime.model.meta.input_shape[-1]
        try:
            stored = await self._store.async_load()
            examples = [
                Example.from_dict(item, features)
                for item in (stored or {}).get("examples", [])
            ]
        except (HomeAssistantError, ExampleError, AttributeError, TypeError) as err:
            LOGGER.warning(
                "What %s had learnt cannot be read (%s); it starts again from the "
                "shipped model",
                self.entry.title,
                err,
            )
            async_raise_issue(
                self.hass,
                ISSUE_LEARNT_RESET,
                self.entry.entry_id,
                {"room": self.entry.title, "error": str(err)},
                severity=ir.IssueSeverity.WARNING,
            )
            examples = []
            await self._store.async_save({"examples": []})
        async with self._lock:
            self.examples = examples
            await self._async_refit()

    async def async_teach(
        self, sound: str, verdict: Verdict, episode: int | None = None
    ) -> Example:
        """Learn that the heard stretch `episode` (default: the latest) was or was not `sound`."""
        runtime = self.runtime
        if not self.supported or sound not in runtime.settings.sounds:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="sound_not_detected",
                translation_placeholders={
                    "room": self.entry.title,
                    "sound": SOUND_WORDS.get(sound, sound),
                },
            )
        model = runtime.model
        column = model.meta.labels.index(sound)
        # "not a cry" by default means the latest cry reported, "was a cry" the latest heard
        reported = runtime.pipeline.detectors[sound].config.threshold
        peak = reported if verdict == "not_this_sound" else 0.0

        def find() -> tuple[Heard, Floats] | None:
            heard = runtime.pipeline.heard.find(sound, episode, peak=peak)
            return None if heard is None else (heard, heard.patch_rows())

        def example(rows: Floats, audio: Floats | None) -> Example:
            if audio is not None:
                rows = np.concatenate((rows, model.embed_audio(audio, TAUGHT_HOP_S)))
            probabilities = model.patch_probabilities(rows)[:, column]
            return Example(
                sound,
                verdict,
                taught_patches(rows, probabilities),
                dt_util.utcnow().timestamp(),
            )

        async with self._lock:
            found = await runtime.async_with_model(find)
            if found is None:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="nothing_heard"
                    if episode is None
                    else "episode_gone",
                    translation_placeholders={
                        "room": self.entry.title,
                        "sound": SOUND_WORDS.get(sound, sound),
                        "episode": str(episode),
                    },
                )
            heard, rows = found
            audio = None
            if heard.fresh:
                # the stretch's windows began window_s before their ends
                start = heard.start - model.meta.window_s
                audio = self.clips.heard_audio(
                    start, min(heard.end, start + TAUGHT_AUDIO_S)
                )
            taught = await runtime.async_with_model(lambda: example(rows, audio))
            self.examples = newest([*self.examples, taught])
            await self._async_refit()
            await self._async_save()
        LOGGER.info(
            "%s learnt that episode %s was %s%s",
            self.entry.title,
            "latest" if episode is None else episode,
            "" if verdict == "this_sound" else "not ",
            sound,
        )
        return taught

    async def async_forget(self) -> None:
        """Forget every example: the room scores as the shipped model again."""
        async with self._lock:
            self.examples = []
            await self._async_refit()
            await self._async_save()
        LOGGER.info("%s forgot what it had learnt", self.entry.title)

    async def _async_refit(self) -> None:
        """Fit the room's head on the examples (on the executor) and swap it in."""
        examples = tuple(self.examples)
        model = self.runtime.model
        room = await self.runtime.async_with_model(lambda: _fit(examples, model))
        self.runtime.set_room(room)
        for listener in list(self._listeners):
            listener()

    async def _async_save(self) -> None:
        await self._store.async_save(
            {"examples": [example.as_dict() for example in self.examples]}
        )
