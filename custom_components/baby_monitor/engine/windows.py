"""Model windows: the last `window_s` of log-mel frames, every hop, for files and for streams."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .frontend import FrontendConfig, log_mel

__all__ = ["FrameRing", "clip_windows", "silence_frame"]

type Floats = npt.NDArray[np.float32]


def silence_frame(config: FrontendConfig) -> Floats:
    """Return the frame digital silence produces (what a window holds before audio arrives)."""
    return np.full(
        config.n_mels, config.log.apply(np.zeros(1, np.float32))[0], np.float32
    )


def clip_windows(
    audio: Floats, config: FrontendConfig, window_s: float, hop_s: float
) -> tuple[Floats, Floats]:
    """Windows of a whole clip as a stream would see them: (end times in s, (n, frames, mels)).

    Windows end every `hop_s` once `window_s` of audio has passed; a clip shorter than one window
    gets a single window ending at its end, with silence before it.
    """
    hop = config.hop_length
    n_window = config.frames_for(window_s)
    step = max(1, config.frames_for(hop_s))
    lead = n_window * hop + config.win_length - config.hop_length
    frames = log_mel(np.concatenate((np.zeros(lead, np.float32), audio)), config)
    available = frames.shape[0] - n_window  # frames of the clip itself
    ends: npt.NDArray[np.intp] = np.arange(n_window, available + 1, step)
    if ends.size == 0:
        ends = np.array([max(available, 1)])
    starts = ends  # index into `frames`: window k covers frames[end : end + n_window]
    windows = np.lib.stride_tricks.sliding_window_view(frames, n_window, axis=0)
    stacked = np.ascontiguousarray(windows[starts].transpose(0, 2, 1))
    times = (ends * hop / config.sample_rate).astype(np.float32)
    return times, stacked


class FrameRing:
    """The last `size` frames, oldest first; bounded memory however long the stream runs."""

    def __init__(self, size: int, fill: Floats) -> None:
        """Start filled with `fill` (the silence frame)."""
        self._buffer = np.tile(fill, (2 * size, 1))
        self._fill = fill
        self._size = size
        self._end = size

    def reset(self) -> None:
        """Forget every frame."""
        self._buffer[:] = self._fill
        self._end = self._size

    def push(self, frames: Floats) -> None:
        """Append frames, dropping the oldest beyond `size`."""
        frames = frames[-self._size :]
        if self._end + len(frames) > len(self._buffer):
            keep = self._buffer[self._end - self._size + len(frames) : self._end].copy()
            self._buffer[: len(keep)] = keep
            self._end = len(keep)
        self._buffer[self._end : self._end + len(frames)] = frames
        self._end += len(frames)

    def window(self) -> Floats:
        """Return a view of the last `size` frames, shape (size, mels)."""
        return self._buffer[self._end - self._size : self._end]
