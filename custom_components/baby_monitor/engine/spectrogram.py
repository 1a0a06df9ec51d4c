"""The live picture: the last seconds as a mel spectrogram with probability traces, as a PNG.

Pure numpy (plus zlib for the PNG), so it runs wherever the engine runs, HA OS included.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
import struct
from typing import Final
import zlib

import numpy as np
import numpy.typing as npt

from .frontend import FrontendConfig, log_mel

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "LEVELS_DB",
    "THRESHOLD_DIM",
    "Layout",
    "Picture",
    "SpectrogramHistory",
    "Trace",
    "colour_map",
    "encode_png",
    "levels_for",
    "render_png",
    "render_spectrogram",
]

type Floats = npt.NDArray[np.float32]
type Seconds = npt.NDArray[np.float64]
type Pixels = npt.NDArray[np.uint8]

COLOURMAP_ANCHORS: Final = (
    (0, 0, 4),
    (40, 11, 84),
    (101, 21, 110),
    (159, 42, 99),
    (212, 72, 66),
    (245, 125, 21),
    (250, 193, 39),
    (252, 255, 164),
)
"""Evenly spaced anchors of a perceptual dark-to-bright map (matplotlib's "inferno")."""

BACKGROUND: Final = (20, 20, 24)
"""Where there is nothing to show yet: before the history starts, the gap, the trace panel."""
GRID: Final = (44, 44, 52)
COLOURS: Final[Mapping[str, tuple[int, int, int]]] = {
    "cry": (255, 82, 82),
    "laughter": (72, 220, 96),
}
"""Trace colours per sound; other labels take FALLBACK_COLOURS in turn."""
FALLBACK_COLOURS: Final = ((80, 160, 255), (255, 210, 60), (200, 120, 255))
THRESHOLD_DIM: Final = 0.6
"""Threshold lines are the trace colour at this brightness, so the trace stays in front."""
DASH_PX: Final = 6
GRID_S: Final = 5.0
"""Faint vertical lines in the trace panel every this many seconds back from now."""
LEVELS_DB: Final = (-90.0, -10.0)
"""Colour range of the live picture in dB per mel band below a full-scale sine's: silence is
black, a loud cry bright."""
MIN_SPAN: Final = 40.0
"""Automatic levels spread at least this much (frames' units), so faint hiss stays dark."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_FILTER_UP: Final = 2


@dataclass(frozen=True, slots=True)
class Layout:
    """Pixel geometry: spectrogram on top, a gap, probability traces (0 bottom, 1 top) below."""

    width: int = 640
    spectrogram_height: int = 160
    gap: int = 4
    trace_height: int = 76

    def __post_init__(self) -> None:
        """Reject sizes that leave no room to draw."""
        if min(self.width, self.spectrogram_height, self.trace_height) < 2:
            raise ValueError(f"layout too small to draw: {self}")
        if self.gap < 0:
            raise ValueError(f"layout gap must not be negative: {self.gap}")

    @property
    def height(self) -> int:
        """Height of the whole picture in pixels."""
        return self.spectrogram_height + self.gap + self.trace_height

    @property
    def trace_top(self) -> int:
        """Row of probability 1 (the first row of the trace panel)."""
        return self.spectrogram_height + self.gap

    def trace_rows(self, probability: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Rows of probabilities (clipped to 0..1): 1 on the panel's top row, 0 on its bottom."""
        p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
        return self.trace_top + np.rint((1.0 - p) * (self.trace_height - 1)).astype(
            np.intp
        )


@dataclass(frozen=True, slots=True)
class Trace:
    """One sound's probabilities at window ends (stream seconds), with its threshold."""

    label: str
    times: Seconds
    values: Floats
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Picture:
    """What to draw: frames (oldest first) whose newest ends at `end`, and the traces."""

    frames: Floats  # (n, mels) log-mel, in the frontend's units or dB
    frame_s: float
    end: float
    span_s: float = 30.0
    traces: tuple[Trace, ...] = ()

    @classmethod
    def empty(cls, n_mels: int, frame_s: float, span_s: float = 30.0) -> Picture:
        """Nothing heard yet: a blank picture of the right shape."""
        return cls(np.zeros((0, n_mels), np.float32), frame_s, 0.0, span_s)


def colour_map(
    anchors: tuple[tuple[int, int, int], ...] = COLOURMAP_ANCHORS, size: int = 256
) -> Pixels:
    """Lookup table (size, 3) interpolated linearly between evenly spaced anchor colours."""
    points = np.asarray(anchors, dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(points))
    x = np.linspace(0.0, 1.0, size)
    table = np.stack([np.interp(x, at, points[:, c]) for c in range(3)], axis=1)
    lut: Pixels = np.rint(table).astype(np.uint8)
    return lut


_LUT: Final = colour_map()


def levels_for(
    config: FrontendConfig, levels_db: tuple[float, float] = LEVELS_DB
) -> tuple[float, float]:
    """Convert a dB range, relative to a full-scale 1-kHz sine's loudest band, to frame units.

    Frontends scale power differently (ours normalises its window, EfficientAT's does not), so
    the reference is measured rather than assumed.
    """
    rate = config.sample_rate
    t = np.arange(config.win_length + 4 * config.hop_length) / rate
    sine = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    full_scale = float(log_mel(sine, config).max())
    low, high = (full_scale + db * config.log.scale for db in levels_db)
    return low, high


def _levels(values: Floats, min_span: float) -> tuple[float, float]:
    """Automatic level range: the 2nd to 99.8th percentile, at least `min_span` wide."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, min_span
    low, high = np.percentile(finite, (2.0, 99.8))
    return float(low), float(max(high, low + min_span))


def _columns(picture: Picture, width: int) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Frames pooled per pixel column (the loudest frame wins) and which columns hold audio."""
    frames = picture.frames
    n, n_mels = frames.shape
    pooled = np.zeros((width, n_mels), np.float32)
    if n == 0:
        return pooled, np.zeros(width, np.bool_)
    starts = picture.end - (n - np.arange(n)) * picture.frame_s
    edges = (
        picture.end - picture.span_s + np.arange(width + 1) * (picture.span_s / width)
    )
    lo = np.searchsorted(starts, edges[:-1], side="left")
    hi = np.searchsorted(starts, edges[1:], side="left")
    valid = edges[1:] > starts[0]
    full = hi > lo
    if full.any():
        pooled[full] = np.maximum.reduceat(frames, lo[full], axis=0)
    # zoomed in beyond one frame per column: the frame that covers the column
    sparse = valid & ~full
    pooled[sparse] = frames[np.clip(lo[sparse] - 1, 0, n - 1)]
    return pooled, valid


def _colour(label: str, index: int) -> npt.NDArray[np.uint8]:
    """Trace colour of a sound."""
    rgb = COLOURS.get(label) or FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)]
    return np.asarray(rgb, np.uint8)


def _draw_trace(
    image: Pixels, layout: Layout, picture: Picture, trace: Trace, colour: Pixels
) -> None:
    """Draw a 2-px polyline through the trace's points (NaN points are left out)."""
    times = np.asarray(trace.times, np.float64)
    values = np.asarray(trace.values, np.float64)
    keep = np.isfinite(times) & np.isfinite(values)
    times, values = times[keep], values[keep]
    if times.size == 0:
        return
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    width = layout.width
    start = picture.end - picture.span_s
    centres = start + (np.arange(width) + 0.5) * (picture.span_s / width)
    covered = (centres >= times[0]) & (centres <= times[-1])
    # the newest point sits in the last column even when it ends exactly on the right edge
    point_columns = np.clip(
        np.floor((times - start) / picture.span_s * width).astype(np.intp), 0, width - 1
    )
    inside = (times >= start) & (times <= picture.end)
    covered[point_columns[inside]] = True
    if not covered.any():
        return
    rows = layout.trace_rows(np.interp(centres, times, values))
    previous = np.concatenate((rows[:1], rows[:-1]))
    first = np.concatenate(([True], ~covered[:-1]))  # a line starts without a tail
    previous[first] = rows[first]
    low = np.minimum(rows, previous)
    high = np.maximum(rows, previous) + 1
    panel = np.arange(layout.trace_top, layout.height)[:, None]
    mask = (panel >= low) & (panel <= high) & covered
    image[layout.trace_top :][mask] = colour


def render_spectrogram(
    picture: Picture,
    layout: Layout | None = None,
    levels: tuple[float, float] | None = None,
    min_span: float = MIN_SPAN,
) -> Pixels:
    """Draw the picture as an RGB image (height, width, 3): spectrogram above, traces below.

    Time runs left to right and ends at `picture.end` on the right edge; low mel bands are at
    the bottom. `levels` (low, high) fixes the colour range in the frames' units; without it the
    range follows the frames, at least `min_span` wide. Empty or non-finite input never fails:
    what cannot be drawn stays background.
    """
    layout = layout or Layout()
    width = layout.width
    image = np.empty((layout.height, width, 3), np.uint8)
    image[:] = BACKGROUND

    pooled, valid = _columns(picture, width)
    n_mels = pooled.shape[1]
    if valid.any() and n_mels:
        low, high = levels or _levels(pooled[valid], min_span)
        scaled = (pooled - low) / max(high - low, 1e-9)
        scaled = np.where(np.isfinite(scaled), scaled, 0.0)
        index = np.rint(np.clip(scaled, 0.0, 1.0) * (len(_LUT) - 1)).astype(np.intp)
        height = layout.spectrogram_height
        mel_of_row = n_mels - 1 - (np.arange(height) * n_mels) // height
        spectrogram = _LUT[index[:, mel_of_row]].transpose(1, 0, 2)  # (rows, cols, 3)
        image[: layout.spectrogram_height][:, valid] = spectrogram[:, valid]

    pixel_s = picture.span_s / width
    grid = width - 1 - np.rint(np.arange(GRID_S, picture.span_s, GRID_S) / pixel_s)
    image[layout.trace_top :, grid[grid >= 0].astype(np.intp)] = GRID

    dashes = (np.arange(width) // DASH_PX) % 2 == 0
    for i, trace in enumerate(picture.traces):
        if trace.threshold is not None and np.isfinite(trace.threshold):
            dim = np.rint(_colour(trace.label, i) * THRESHOLD_DIM).astype(np.uint8)
            image[int(layout.trace_rows(trace.threshold)), dashes] = dim
    for i, trace in enumerate(picture.traces):
        _draw_trace(image, layout, picture, trace, _colour(trace.label, i))
    return image


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(image: Pixels, level: int = 6) -> bytes:
    """Encode an RGB uint8 image (height, width, 3) as an 8-bit truecolour PNG.

    Every row uses the "Up" filter: the picture repeats rows (mel bands span several pixels,
    the trace panel is mostly background), which then compress to almost nothing.
    """
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(
            f"encode_png needs uint8 (height, width, 3), got {pixels.dtype} {pixels.shape}"
        )
    height, width, _ = pixels.shape
    if height == 0 or width == 0:
        raise ValueError(f"encode_png needs a non-empty image, got {pixels.shape}")
    rows = pixels.reshape(height, width * 3)
    raw = np.empty((height, width * 3 + 1), np.uint8)
    raw[:, 0] = _PNG_FILTER_UP
    raw[:, 1:] = rows
    raw[1:, 1:] -= rows[:-1]  # wraps modulo 256, as the filter is defined
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def render_png(
    picture: Picture,
    layout: Layout | None = None,
    levels: tuple[float, float] | None = None,
    min_span: float = MIN_SPAN,
) -> bytes:
    """Render the picture and encode it as PNG (blocking: a few milliseconds)."""
    return encode_png(render_spectrogram(picture, layout, levels, min_span))


@dataclass(slots=True)
class _Scores:
    """Probabilities of one scored window."""

    t: float
    probabilities: Mapping[str, float]


@dataclass(slots=True)
class SpectrogramHistory:
    """The last `span_s` of frames and window probabilities, in bounded memory.

    Fed once per scored window with the whole window's features; only the frames that are new
    since the previous window are kept. Stream time going backwards (a reconnect) starts over.
    """

    n_mels: int
    frame_s: float
    span_s: float = 30.0
    _ring: Floats = field(init=False, repr=False)
    _count: int = field(default=0, init=False)  # frames held
    _head: int = field(default=0, init=False)  # where the next frame goes
    _end: float | None = field(default=None, init=False)
    _scores: deque[_Scores] = field(default_factory=deque, init=False, repr=False)

    def __post_init__(self) -> None:
        """Allocate the ring once (30 s of 64 mels at 25 ms: 300 kB)."""
        if self.frame_s <= 0 or self.span_s <= 0:
            raise ValueError(
                f"history needs positive frame_s and span_s, got {self.frame_s}, {self.span_s}"
            )
        capacity = max(1, round(self.span_s / self.frame_s))
        self._ring = np.zeros((capacity, self.n_mels), np.float32)

    @property
    def end(self) -> float | None:
        """Stream time of the newest frame's end; None while empty."""
        return self._end

    def __len__(self) -> int:
        """Frames held."""
        return self._count

    def reset(self) -> None:
        """Forget everything (a new connection, or listening paused)."""
        self._count = self._head = 0
        self._end = None
        self._scores.clear()

    def push(
        self, t: float, features: Floats, probabilities: Mapping[str, float]
    ) -> None:
        """Add a scored window ending at stream time `t` with its features (frames, mels)."""
        frames = np.asarray(features, np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.n_mels:
            raise ValueError(
                f"history needs features of shape (frames, {self.n_mels}), got {frames.shape}"
            )
        if self._end is not None and t <= self._end:
            self.reset()  # the stream started again
        new = frames.shape[0]
        if self._end is not None:
            new = min(new, max(0, round((t - self._end) / self.frame_s)))
        self._write(frames[frames.shape[0] - new :])
        self._end = t
        self._scores.append(_Scores(t, dict(probabilities)))
        while self._scores and self._scores[0].t < t - self.span_s:
            self._scores.popleft()

    def _write(self, frames: Floats) -> None:
        """Copy frames into the ring, overwriting the oldest."""
        capacity = self._ring.shape[0]
        frames = frames[-capacity:]
        n = frames.shape[0]
        first = min(n, capacity - self._head)
        self._ring[self._head : self._head + first] = frames[:first]
        self._ring[: n - first] = frames[first:]
        self._head = (self._head + n) % capacity
        self._count = min(capacity, self._count + n)

    def picture(self, thresholds: Mapping[str, float] | None = None) -> Picture:
        """Copy the history out to render elsewhere: frames oldest first, a trace per sound.

        Traces are drawn for the sounds in `thresholds` (all heard sounds without it).
        """
        if self._end is None:
            return Picture.empty(self.n_mels, self.frame_s, self.span_s)
        capacity = self._ring.shape[0]
        order = (self._head - self._count + np.arange(self._count)) % capacity
        labels = (
            list(thresholds)
            if thresholds is not None
            else list(dict.fromkeys(k for s in self._scores for k in s.probabilities))
        )
        times = np.asarray([s.t for s in self._scores], np.float64)
        traces = tuple(
            Trace(
                label,
                times,
                np.asarray(
                    [s.probabilities.get(label, np.nan) for s in self._scores],
                    np.float32,
                ),
                None if thresholds is None else thresholds[label],
            )
            for label in labels
        )
        return Picture(self._ring[order], self.frame_s, self._end, self.span_s, traces)
