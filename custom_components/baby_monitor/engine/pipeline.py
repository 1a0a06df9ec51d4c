"""Streaming: audio blocks in, a model window out every hop, scored and turned into events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from .audio import sanitize
from .backends import ModelRuntime
from .blas import single_threaded
from .detector import DetectorConfig, SoundDetector, SoundEvent
from .frontend import FrontendConfig, StreamingFrontend
from .room import HEARD_SHARE, HeardLog, RoomHead
from .windows import FrameRing, silence_frame

__all__ = [
    "DEFAULT_HOP_S",
    "SCAN_HOP_S",
    "SoundPipeline",
    "Scored",
    "Window",
    "WindowStream",
    "level_dbfs",
]

DEFAULT_HOP_S = 1.0
"""Seconds between model windows of a live source (the integration's default).

The backbone embeds a patch every second; a window every second costs one patch, a shorter hop
one more patch per extra window. Files are scanned every `SCAN_HOP_S`, the hop the thresholds
are set on."""
SCAN_HOP_S = 1.0
"""Seconds between windows when a recording is scanned (`baby-monitor scan`, the benchmark)."""

type Floats = npt.NDArray[np.float32]

SILENCE_DBFS = -120.0


def level_dbfs(mean_square: float) -> float:
    """RMS level in dBFS (a full-scale square wave is 0 dBFS), floored at -120."""
    return max(SILENCE_DBFS, 10.0 * float(np.log10(max(mean_square, 1e-12))))


@dataclass(frozen=True, slots=True)
class Window:
    """One model input: the `window_s` of features ending at stream time `t`."""

    t: float
    features: Floats  # (frames, mels), owned copy
    level_dbfs: float  # loudness of the last hop of audio before the window's end
    end: int = 0  # frame number of the window's end; never repeats in a stream, even after reset


class WindowStream:
    """Cuts a stream into model windows every `hop_s`, once `window_s` of audio has passed."""

    def __init__(
        self,
        frontend: FrontendConfig,
        window_s: float,
        hop_s: float = DEFAULT_HOP_S,
        *,
        from_first_window: bool = False,
    ) -> None:
        """Set up the frontend and a frame ring sized to one window.

        Windows end at multiples of `hop_s` of stream time, or with `from_first_window` every
        `hop_s` after the first full window, as `clip_windows` cuts a file (the same windows
        when `hop_s` divides `window_s`).
        """
        self.frontend = StreamingFrontend(frontend)
        self._config = frontend
        self._size = frontend.frames_for(window_s)
        self._step = max(1, frontend.frames_for(hop_s))
        self._phase = self._size % self._step if from_first_window else 0
        self._ring = FrameRing(self._size, silence_frame(frontend))
        self._frames = 0
        self._origin = 0  # frames counted before the last reset, plus a window's gap
        self._level_span = self._step * frontend.hop_length
        self._recent: Floats = np.zeros(0, np.float32)  # the last `_level_span` samples
        self._samples = 0
        # Blocks wait here until a window is due: one frontend call per hop, not per block.
        self._queued: list[Floats] = []
        self._queued_samples = 0

    @property
    def seconds(self) -> float:
        """Stream time: seconds of audio pushed so far."""
        return (self._samples + self._queued_samples) / self._config.sample_rate

    def reset(self) -> None:
        """Start again from silence (a new connection)."""
        self.frontend.reset()
        self._ring.reset()
        self._origin += self._frames + self._size
        self._frames, self._samples = 0, 0
        self._recent = np.zeros(0, np.float32)
        self._queued.clear()
        self._queued_samples = 0

    def _next_target(self) -> int:
        """Frame count at which the next window is due."""
        after = self._frames + 1 - self._phase
        return max(self._size, self._phase - (-after // self._step) * self._step)

    def push(self, samples: npt.ArrayLike) -> list[Window]:
        """Add audio (float in [-1, 1], any block size); returns the windows it completes."""
        block = sanitize(samples)
        self._queued.append(block)
        self._queued_samples += block.size
        config = self._config
        ready = (
            self.frontend.pending + self._queued_samples - config.win_length
        ) // config.hop_length + 1
        if self._frames + ready < self._next_target():
            return []
        audio = np.concatenate(self._queued)
        self._queued.clear()
        self._queued_samples = 0
        heard = np.concatenate((self._recent, audio))
        base = self._samples - self._recent.size  # stream index of heard[0]
        self._samples += audio.size
        self._recent = heard[-self._level_span :]
        with single_threaded():
            frames = self.frontend.process(audio)
        windows: list[Window] = []
        while len(frames):
            # frames until the next hop boundary at or after one full window
            target = self._next_target()
            take = min(len(frames), target - self._frames)
            self._ring.push(frames[:take])
            self._frames += take
            frames = frames[take:]
            if self._frames == target:
                # frame k ends at stream sample (k + 1) * hop: level of the hop before the window end
                end = self._frames * config.hop_length - base
                span = heard[max(0, end - self._level_span) : end]
                level = level_dbfs(float(np.dot(span, span)) / max(span.size, 1))
                t = self._frames * config.hop_length / config.sample_rate
                features = self._ring.window().copy()
                windows.append(Window(t, features, level, self._origin + self._frames))
        return windows


@dataclass(frozen=True, slots=True)
class Scored:
    """A window's probabilities and the events they caused."""

    t: float
    probabilities: dict[str, float]
    level_dbfs: float
    events: list[SoundEvent]
    heard: dict[str, int] = field(default_factory=dict)
    """Per sound, the id of the heard stretch this window belongs to (see room.HeardLog)."""


class SoundPipeline:
    """Frontend + model + detectors for one live source (blocking: run it off the event loop)."""

    def __init__(
        self,
        runtime: ModelRuntime,
        configs: Mapping[str, DetectorConfig] | None = None,
        hop_s: float = DEFAULT_HOP_S,
    ) -> None:
        """Detect every label of the model, with its metadata threshold unless configured."""
        meta = runtime.meta
        self.runtime = runtime
        self.stream = WindowStream(meta.frontend, meta.window_s, hop_s)
        configs = configs or {
            label: DetectorConfig(meta.thresholds[label], window_s=meta.window_s)
            for label in meta.labels
        }
        self.detectors = {
            label: SoundDetector(label, config) for label, config in configs.items()
        }
        self._cache = runtime.new_cache()
        self.room: RoomHead | None = None
        """What the room has learnt; swapped whole, never changed in place."""
        self.heard = HeardLog(
            {label: HEARD_SHARE * c.threshold for label, c in configs.items()}
        )
        # the heard stretch of each sound going on
        self._episodes: dict[str, int | None] = {}

    def score(self, window: Window) -> Scored:
        """Run the model on one window and advance the detectors."""
        runtime = self.runtime
        heard: dict[str, int] = {}
        if runtime.meta.backbone is None:
            probs = runtime.predict(window.features)
        else:
            rows = runtime.window_rows(
                window.features, end=window.end, cache=self._cache
            )
            ends = runtime.patch_ends(window.end)
            probs = runtime.score_rows(rows, self.room, ends=ends, cache=self._cache)
        named = {
            label: float(p) for label, p in zip(runtime.meta.labels, probs, strict=True)
        }
        if runtime.meta.backbone is not None:
            heard = self.heard.update(window.t, named, rows, ends)
        events = [
            self._numbered(event, heard)
            for label, detector in self.detectors.items()
            if (event := detector.update(window.t, named[label])) is not None
        ]
        return Scored(window.t, named, window.level_dbfs, events, heard)

    def _numbered(self, event: SoundEvent, heard: Mapping[str, int]) -> SoundEvent:
        """Return the event with the heard stretch its sound started in."""
        if event.kind == "started":
            self._episodes[event.label] = heard.get(event.label)
            return replace(event, episode=self._episodes[event.label])
        return replace(event, episode=self._episodes.pop(event.label, None))

    def close(self, t: float) -> list[SoundEvent]:
        """End every sound going on at stream time `t`; returns their stop events.

        The stream was lost or paused: it starts again from silence.
        """
        events = [
            self._numbered(event, {})
            for detector in self.detectors.values()
            if (event := detector.reset(t)) is not None
        ]
        self.stream.reset()
        self.heard.close()
        return events

    def feed(self, samples: npt.ArrayLike) -> list[Scored]:
        """Push audio and score every window it completes."""
        return [self.score(window) for window in self.stream.push(samples)]
