"""The per-entry runtime: owns the audio source task, runs the engine, pushes state to entities."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import math
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_call_later, async_track_time_interval
import homeassistant.util.dt as dt_util

from .const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    CONF_CONFIRM_S,
    CONF_HOLD_S,
    CONF_HOP_S,
    CONF_SOUNDS,
    CONF_SOURCE_TYPE,
    DOMAIN,
    EVENT_BABY_MONITOR,
    ISSUE_SCORING_FAILED,
    ISSUE_SOURCE_DOWN,
    LOGGER,
    SOURCE_MICROPHONE,
    THRESHOLD_OPTIONS,
)
from .engine.backends import ModelRuntime, load_runtime
from .engine.detector import (
    DEFAULT_CONFIRM_S,
    DEFAULT_HOLD_S,
    DetectorConfig,
    SoundEvent,
    confirm_for,
)
from .engine.health import ScoringHealth
from .engine.model import DEFAULT_MODEL, load_metadata
from .engine.pipeline import DEFAULT_HOP_S, Scored, SoundPipeline, Window
from .engine.replay import OpeningCheck
from .engine.room import RoomHead
from .engine.sources import AudioSource, SourceError
from .issues import async_raise_issue, async_withdraw_issue
from .source import async_create_source, describe_source

RECONNECT_MIN_S: Final = 1.0
RECONNECT_MAX_S: Final = 60.0
STEADY_AFTER_S: Final = 60.0
"""A connection that brought audio this long was steady: the next reconnect waits
RECONNECT_MIN_S again. Shorter ones keep doubling the wait, so a stream that ends quickly
over and over (a file, a flapping camera) is retried less and less often."""
ISSUE_AFTER_S: Final = 300.0
"""A source down this long raises a repair issue."""
MAX_PENDING_WINDOWS: Final = 8
"""Windows waiting for inference (4 s of audio at the default hop); older ones are dropped."""
SCORER_STOP_S: Final = 2.0
"""How long unloading waits for the window being scored before it leaves the scorer thread."""
PUBLISH_EVERY_S: Final = 1.0
"""Stream seconds between entity updates of window readings (level, probabilities): however
short the analysis interval, the recorder stores at most one sound level a second. Sound events
are published at once."""


def load_model(backend: str = BACKEND_AUTO, path: Path | None = None) -> ModelRuntime:
    """Read the shipped model and load it on `backend` (blocking: run it in an executor)."""
    meta = load_metadata(path or DEFAULT_MODEL)
    return load_runtime(meta, backend)  # type: ignore[arg-type]


def event_type(event: SoundEvent) -> str:
    """Event type of a sound event, e.g. "cry_started"."""
    return f"{event.label}_{event.kind}"


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """Detection settings of an entry, from its options with the model's defaults."""

    sounds: tuple[str, ...]
    detectors: dict[str, DetectorConfig]
    hop_s: float
    backend: str

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], model: ModelRuntime
    ) -> DetectionSettings:
        """Read the options; sounds the model does not know are ignored."""
        meta = model.meta
        sounds = tuple(
            label
            for label in options.get(CONF_SOUNDS, meta.labels)
            if label in meta.labels
        )
        confirm_s = float(options.get(CONF_CONFIRM_S, DEFAULT_CONFIRM_S))
        hold_s = float(options.get(CONF_HOLD_S, DEFAULT_HOLD_S))
        detectors = {
            label: DetectorConfig(
                float(
                    options.get(
                        THRESHOLD_OPTIONS.get(label, ""), meta.thresholds[label]
                    )
                ),
                confirm_for(label, confirm_s),
                hold_s,
                meta.window_s,
            )
            for label in sounds
        }
        return cls(
            sounds=sounds,
            detectors=detectors,
            hop_s=float(options.get(CONF_HOP_S, DEFAULT_HOP_S)),
            backend=str(options.get(CONF_BACKEND, BACKEND_AUTO)),
        )


class BabyMonitorRuntime:
    """Listens to one source: reconnects with backoff, scores windows, reports sounds."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        model: ModelRuntime,
        settings: DetectionSettings,
    ) -> None:
        """Set up the engine for an entry; nothing runs until `run`."""
        self.hass = hass
        self.entry = entry
        self.model = model
        self.settings = settings
        self.options = dict(entry.options)
        self.pipeline = SoundPipeline(model, settings.detectors, settings.hop_s)
        self.source_name = describe_source(entry.data)
        self.is_running = True
        self.listening = True
        self.level_dbfs: float | None = None
        self.probabilities: dict[str, float] = {}
        self.active = dict.fromkeys(settings.sounds, False)
        self.windows_scored = 0
        self.windows_dropped = 0
        self._published_t = -math.inf  # stream time of the last entity update
        self.connections = 0
        self.last_error: str | None = None
        self.receiving_since: datetime | None = None
        self._receiving = False
        self._heard_since: datetime | None = None
        self._opening: bytes | None = None
        self._down = False
        self._issue_timer: CALLBACK_TYPE | None = None
        self._source: AudioSource | None = None
        self._pending: deque[Window] = deque(maxlen=MAX_PENDING_WINDOWS)
        self._scorer: ThreadPoolExecutor | None = None
        self._work = asyncio.Event()
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._listeners: list[CALLBACK_TYPE] = []
        self._reading_listeners: list[CALLBACK_TYPE] = []
        self._event_listeners: list[Callable[[SoundEvent], None]] = []
        self._audio_listeners: list[Callable[[npt.NDArray[np.float32]], None]] = []
        self._window_listeners: list[Callable[[Window, Scored], None]] = []
        self._pause_listeners: list[CALLBACK_TYPE] = []
        self.health = ScoringHealth(settings.hop_s)
        """Scoring failures and progress: a room whose model broke or hangs is not available."""
        self.stalled = False
        self._broken_listeners: set[int] = set()

    @property
    def available(self) -> bool:
        """Audio arrives and is scored (a paused monitor is available: it is off on purpose)."""
        if not self.listening:
            return True
        return self._receiving and not self.health.failing and not self.stalled

    @property
    def idle(self) -> bool:
        """No window waits for inference or is being scored (all audio heard so far is scored)."""
        return not self._pending and not self._lock.locked()

    @callback
    def async_add_listener(
        self, update_callback: CALLBACK_TYPE, *, readings: bool = False
    ) -> CALLBACK_TYPE:
        """Call `update_callback` whenever state changes; returns the remover.

        With `readings`, also whenever new window readings (level, probabilities) are
        published, about once a second; without, only when availability, listening or the
        sounds going on change.
        """
        listeners = self._reading_listeners if readings else self._listeners
        listeners.append(update_callback)
        return lambda: listeners.remove(update_callback)

    @callback
    def async_add_event_listener(
        self, event_callback: Callable[[SoundEvent], None]
    ) -> CALLBACK_TYPE:
        """Call `event_callback` with every sound that starts or stops; returns the remover."""
        self._event_listeners.append(event_callback)
        return lambda: self._event_listeners.remove(event_callback)

    @callback
    def async_add_audio_listener(
        self, audio_callback: Callable[[npt.NDArray[np.float32]], None]
    ) -> CALLBACK_TYPE:
        """Call `audio_callback` with every block heard (16 kHz mono float); returns the remover.

        Runs on the event loop for each ~0.1-s block: keep it to a copy into a buffer.
        """
        self._audio_listeners.append(audio_callback)
        return lambda: self._audio_listeners.remove(audio_callback)

    @callback
    def async_add_window_listener(
        self, window_callback: Callable[[Window, Scored], None]
    ) -> CALLBACK_TYPE:
        """Call `window_callback` with every scored window (its features too); returns the remover."""
        self._window_listeners.append(window_callback)
        return lambda: self._window_listeners.remove(window_callback)

    @callback
    def async_add_pause_listener(self, pause_callback: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `pause_callback` when listening is paused (what was heard is private); returns the remover."""
        self._pause_listeners.append(pause_callback)
        return lambda: self._pause_listeners.remove(pause_callback)

    async def run(self) -> None:
        """Listen until stopped: connect, read, and reconnect with backoff (1 s to 60 s).

        Windows are scored on a thread of the room's own rather than Home Assistant's shared
        executor: handed from thread to thread, every window paid again for cold caches and
        fresh memory (about a quarter more CPU on the numpy backend).
        """
        self._scorer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"{DOMAIN}_scorer"
        )
        scorer = self.entry.async_create_background_task(
            self.hass, self._score_loop(), f"{DOMAIN} scorer {self.entry.title}"
        )
        stop_watchdog = async_track_time_interval(
            self.hass, self._watchdog, timedelta(seconds=self.settings.hop_s)
        )
        backoff = RECONNECT_MIN_S
        try:
            while self.is_running:
                if not self.listening:
                    await self._wait_for_change()
                    continue
                if await self._listen_once() >= STEADY_AFTER_S:
                    backoff = RECONNECT_MIN_S
                if not self._wanted():
                    continue
                LOGGER.debug("Reconnecting to %s in %g s", self.source_name, backoff)
                await self._wait_for_change(backoff)
                backoff = min(2 * backoff, RECONNECT_MAX_S)
        finally:
            stop_watchdog()
            scorer.cancel()
            self._cancel_issue_timer()
            await self._stop_scorer()

    async def _stop_scorer(self) -> None:
        """End the scorer thread once the window it may be scoring is done (bounded wait)."""
        if (executor := self._scorer) is None:
            return
        self._scorer = None
        executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SCORER_STOP_S):
                await self.hass.async_add_executor_job(executor.shutdown)

    @callback
    def stop(self) -> None:
        """Ask `run` to finish (the entry cancels its task) and withdraw the repair issue."""
        self.is_running = False
        self._changed.set()
        self._cancel_issue_timer()
        async_withdraw_issue(self.hass, ISSUE_SOURCE_DOWN, self.entry.entry_id)
        async_withdraw_issue(self.hass, ISSUE_SCORING_FAILED, self.entry.entry_id)

    async def async_set_listening(self, listening: bool) -> None:
        """Pause (closing the source) or resume detection."""
        if listening == self.listening:
            return
        self.listening = listening
        if not listening:
            self._clear_down()
            if self._source is not None:
                await self._source.stop()
            self._call_each(self._pause_listeners)
        self._changed.set()
        self._notify()

    async def _wait_for_change(self, timeout: float | None = None) -> None:
        """Sleep until `timeout` passes, listening is toggled or the runtime stops."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        self._changed.clear()

    async def _listen_once(self) -> float:
        """Run one connection until it fails or is paused; returns the seconds audio arrived."""
        self._heard_since = None
        source: AudioSource | None = None
        try:
            source = self._source = await async_create_source(
                self.hass, self.entry.data
            )
            self.connections += 1
            await source.start()
            await self._read(source)
        except asyncio.CancelledError:
            raise
        except SourceError as err:
            self._source_down(str(err))
        except Exception as err:  # noqa: BLE001 - whatever breaks, keep monitoring
            LOGGER.debug("Unexpected error from %s", self.source_name, exc_info=True)
            self._source_down(f"unexpected error: {err!r}")
        finally:
            self._source = None
            if source is not None:
                await source.stop()
            await self._close_episodes()
        return self._heard_for()

    def _heard_for(self) -> float:
        """Seconds since this connection's audio began to count (0 if it never did)."""
        if self._heard_since is None:
            return 0.0
        return (dt_util.utcnow() - self._heard_since).total_seconds()

    async def _read(self, source: AudioSource) -> None:
        """Feed the source's blocks to the engine until paused; SourceError when it ends.

        The connection's opening is held back until it is known not to replay the previous
        connection's recording from its start (see engine.replay).
        """
        if not self._wanted():
            return
        # a microphone has no recording behind it to replay
        opening = (
            None
            if self.entry.data[CONF_SOURCE_TYPE] == SOURCE_MICROPHONE
            else OpeningCheck(self._opening)
        )
        blocks = source.blocks()
        try:
            async for block in blocks:
                self._hear([block] if opening is None else opening.push(block), opening)
                if not self._wanted():
                    return
            if opening is not None:
                self._hear(opening.flush(), opening)
        except SourceError:
            if opening is not None:  # a file shorter than its opening
                self._hear(opening.flush(), opening)
            raise
        finally:
            if (aclose := getattr(blocks, "aclose", None)) is not None:
                await aclose()
        if self._wanted():
            raise SourceError("stream_ended", f"{self.source_name} ended")

    @callback
    def _hear(
        self, blocks: list[npt.NDArray[np.float32]], opening: OpeningCheck | None
    ) -> None:
        """Pass released blocks on; SourceError when the opening replays the last recording."""
        if opening is not None and opening.replayed:
            raise SourceError(
                "stream_ended",
                f"{self.source_name} plays the same recording again from its start "
                "(a file, not a live stream); it is only heard once",
            )
        if opening is not None and opening.digest is not None:
            self._opening = opening.digest
        # after a connection that had sound, up only once this one is known not to replay it
        if (
            blocks
            and self._heard_since is None
            and (opening is None or opening.cleared or self._opening is None)
        ):
            self._heard_since = dt_util.utcnow()
            self._source_up()
        for block in blocks:
            self._push(block)

    def _wanted(self) -> bool:
        """Whether the runtime should be listening now (re-read after every await)."""
        return self.is_running and self.listening

    @callback
    def _push(self, block: npt.NDArray[np.float32]) -> None:
        """Cut audio into windows and queue them for inference, dropping the oldest when full."""
        self._call_each(self._audio_listeners, block)
        for window in self.pipeline.stream.push(block):
            if len(self._pending) == self._pending.maxlen:
                self.windows_dropped += 1
                if self.windows_dropped == 1 or self.windows_dropped % 100 == 0:
                    LOGGER.debug(
                        "Inference for %s is behind: %d windows dropped",
                        self.source_name,
                        self.windows_dropped,
                    )
            self._pending.append(window)
        if self._pending:
            self._work.set()

    async def _score_loop(self) -> None:
        """Score queued windows one at a time on the room's scorer thread; a failure drops the window.

        Nothing raised while scoring or publishing ends this task: it lives as long as `run`.
        """
        while True:
            await self._work.wait()
            self._work.clear()
            while self._pending:
                async with self._lock:
                    if not self._pending:
                        break
                    window = self._pending.popleft()
                    try:
                        scored = await self.hass.loop.run_in_executor(
                            self._scorer, self.pipeline.score, window
                        )
                    except Exception as err:  # noqa: BLE001 - a window is lost, not the room
                        self._scoring_failed(err)
                        continue
                    self._scoring_worked()
                    try:
                        self._apply(window, scored)
                    except Exception:  # noqa: BLE001 - keep scoring whatever a listener does
                        LOGGER.exception(
                            "Publishing a window of %s failed", self.entry.title
                        )

    @callback
    def _scoring_failed(self, err: Exception) -> None:
        """Count a window that could not be scored: logged once a streak, deaf after 10."""
        if self.health.failures_in_row == 0:
            LOGGER.error(
                "Scoring a window of %s failed; it is dropped",
                self.entry.title,
                exc_info=err,
            )
        else:
            LOGGER.debug(
                "Scoring a window of %s failed again: %r", self.entry.title, err
            )
        if not self.health.failed(repr(err), self._now()):
            return
        LOGGER.error(
            "%s cannot hear: %d windows in a row could not be scored (%r)",
            self.entry.title,
            self.health.failures_in_row,
            err,
        )
        async_raise_issue(
            self.hass,
            ISSUE_SCORING_FAILED,
            self.entry.entry_id,
            {
                "room": self.entry.title,
                "count": str(self.health.failures_in_row),
                "error": repr(err),
            },
        )
        self._notify()

    @callback
    def _scoring_worked(self) -> None:
        """Record a scored window: end a failing streak or a stall, said once."""
        if self.health.succeeded(self._now()):
            LOGGER.info("%s hears again: windows are scored", self.entry.title)
            async_withdraw_issue(self.hass, ISSUE_SCORING_FAILED, self.entry.entry_id)
            self._notify()
        if self.stalled:
            LOGGER.info("Scoring in %s goes on again", self.entry.title)
            self.stalled = False
            self._notify()

    @callback
    def _watchdog(self, _now: datetime) -> None:
        """Mark the room unavailable while windows wait and none was scored for a few hops."""
        if self.stalled or not self._receiving:
            return
        if self.health.stalled(self._now(), waiting=bool(self._pending)):
            self.stalled = True
            LOGGER.warning(
                "%s cannot hear: no window scored for %.1f s",
                self.entry.title,
                self._now() - self.health.last_progress,
            )
            self._notify()

    @staticmethod
    def _now() -> float:
        """Seconds on Home Assistant's clock, for scoring progress."""
        return dt_util.utcnow().timestamp()

    @callback
    def _apply(self, window: Window, scored: Scored) -> None:
        """Publish one scored window and the events it caused."""
        self.windows_scored += 1
        self.level_dbfs = scored.level_dbfs
        self.probabilities = scored.probabilities
        self._call_each(self._window_listeners, window, scored)
        for event in scored.events:
            self._dispatch(event)
        # negative after a reconnect has restarted the stream clock
        since = window.t - self._published_t
        if scored.events:
            self._published_t = window.t
            self._notify()
        elif not 0.0 <= since < PUBLISH_EVERY_S - 1e-6:
            self._published_t = window.t
            self._call_each(self._reading_listeners)

    async def _close_episodes(self) -> None:
        """Forget pending audio and close open sounds (their stop events fire)."""
        async with self._lock:
            self._pending.clear()
            for event in self.pipeline.close(self.pipeline.stream.seconds):
                self._dispatch(event)
            self.level_dbfs = None
            self.probabilities = {}
            self._notify()

    @callback
    def _dispatch(self, event: SoundEvent) -> None:
        """Hand a sound event to the entities and fire it on the bus."""
        self.active[event.label] = event.kind == "started"
        LOGGER.debug("%s: %s %s", self.entry.title, event.label, event.kind)
        self._call_each(self._event_listeners, event)
        device = dr.async_get(self.hass).async_get_device(
            identifiers={(DOMAIN, self.entry.entry_id)}
        )
        self.hass.bus.async_fire(
            EVENT_BABY_MONITOR,
            {
                "device_id": device.id if device else None,
                "type": event_type(event),
                "confidence": round(event.confidence, 3),
                "duration": round(event.duration, 1),
                "episode": event.episode,
            },
        )

    async def async_with_model[T](self, job: Callable[[], T]) -> T:
        """Run `job` between two windows, on the room's scoring thread while it listens.

        It may use the model's interpreters.
        """
        async with self._lock:
            if self._scorer is None:
                return await self.hass.async_add_executor_job(job)
            return await self.hass.loop.run_in_executor(self._scorer, job)

    def set_room(self, room: RoomHead | None) -> None:
        """Score from the next window on with what the room has learnt (None: as shipped)."""
        self.pipeline.room = room

    @callback
    def _notify(self) -> None:
        """Tell every entity that state changed (readings included)."""
        self._call_each(self._listeners)
        self._call_each(self._reading_listeners)

    @callback
    def _call_each(self, callbacks: list[Callable[..., None]], *args: Any) -> None:
        """Call every listener; one that raises is logged (once) and the others still run."""
        for listener in list(callbacks):
            try:
                listener(*args)
            except Exception:  # noqa: BLE001 - a broken listener must not deafen the room
                if id(listener) in self._broken_listeners:
                    LOGGER.debug("A listener of %s failed again", self.entry.title)
                    continue
                self._broken_listeners.add(id(listener))
                LOGGER.exception("A listener of %s failed", self.entry.title)

    @callback
    def _source_up(self) -> None:
        """Mark the source up: available again, logged once after an outage."""
        self._receiving = True
        self.receiving_since = dt_util.utcnow()
        self.health.restart(self._now())
        if self._down:
            LOGGER.info("Audio from %s is back", self.source_name)
            self._clear_down()
        self._notify()

    @callback
    def _source_down(self, error: str) -> None:
        """Mark the source down: unavailable, logged once, repair issue after ISSUE_AFTER_S."""
        self.last_error = error
        self._receiving = False
        self.receiving_since = None
        if not self._down:
            self._down = True
            # the error names the source (redacted), so the room is what is added here
            LOGGER.info("Lost audio in %s: %s; retrying", self.entry.title, error)
            self._issue_timer = async_call_later(
                self.hass, ISSUE_AFTER_S, self._raise_issue
            )
        else:
            LOGGER.debug("%s is still down: %s", self.source_name, error)
        self._notify()

    @callback
    def _raise_issue(self, _now: datetime) -> None:
        """Tell the user in Repairs that the source has been down for a while."""
        self._issue_timer = None
        async_raise_issue(
            self.hass,
            ISSUE_SOURCE_DOWN,
            self.entry.entry_id,
            {
                "room": self.entry.title,
                "source": self.source_name,
                "error": self.last_error or "",
                "minutes": f"{ISSUE_AFTER_S / 60:g}",
            },
        )

    @callback
    def _clear_down(self) -> None:
        """Forget an outage: no timer, no repair issue."""
        self._down = False
        self._cancel_issue_timer()
        async_withdraw_issue(self.hass, ISSUE_SOURCE_DOWN, self.entry.entry_id)

    @callback
    def _cancel_issue_timer(self) -> None:
        if self._issue_timer is not None:
            self._issue_timer()
            self._issue_timer = None

    def diagnostics(self) -> dict[str, Any]:
        """State worth seeing when something goes wrong (source name already redacted)."""
        meta = self.model.meta
        return {
            "source": self.source_name,
            "available": self.available,
            "listening": self.listening,
            "receiving_since": self.receiving_since,
            "connections": self.connections,
            "last_error": self.last_error,
            "windows_scored": self.windows_scored,
            "windows_dropped": self.windows_dropped,
            "windows_pending": len(self._pending),
            "scoring": {
                "errors": self.health.errors,
                "failures_in_row": self.health.failures_in_row,
                "last_error": self.health.last_error,
                "failing": self.health.failing,
                "stalled": self.stalled,
            },
            "level_dbfs": self.level_dbfs,
            "probabilities": self.probabilities,
            "active": self.active,
            "model": {
                "name": meta.name,
                "version": meta.version,
                "sha256": meta.sha256,
                "backend": self.model.backend,
                "thresholds": meta.thresholds,
            },
            "settings": {
                "sounds": list(self.settings.sounds),
                "hop_s": self.settings.hop_s,
                "backend": self.settings.backend,
                "detectors": {
                    label: {
                        "threshold": config.threshold,
                        "confirm_s": config.confirm_s,
                        "hold_s": config.hold_s,
                    }
                    for label, config in self.settings.detectors.items()
                },
            },
        }
