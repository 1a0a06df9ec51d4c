"""Log-mel frontend shared by training and serving, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import numpy.typing as npt

from .pcm import SAMPLE_RATE

__all__ = [
    "FrontendConfig",
    "LogScale",
    "StreamingFrontend",
    "MEL_RECIPES",
    "efficientat_filterbank",
    "log_mel",
    "mel_filterbank",
]

type Floats = npt.NDArray[np.float32]

MEL_RECIPES = ("htk", "efficientat")


@dataclass(frozen=True, slots=True)
class LogScale:
    """Compression and standardisation applied to mel power: ((dB(max(p, floor)) - offset) * scale)."""

    floor: float = 1e-10
    offset: float = 0.0
    scale: float = 1.0
    add_floor: bool = False
    """Compress `p + floor` rather than `max(p, floor)` (EfficientAT's `log(mel + 1e-5)`)."""

    def apply(self, power: Floats) -> Floats:
        """Return standardised decibels of mel power."""
        floor = np.float32(self.floor)
        floored = power + floor if self.add_floor else np.maximum(power, floor)
        db = 10.0 * np.log10(floored)
        return np.asarray(
            (db - np.float32(self.offset)) * np.float32(self.scale), np.float32
        )


@dataclass(frozen=True)
class FrontendConfig:
    """STFT and mel parameters; a frame is emitted for every `hop_length` new samples."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 400
    n_mels: int = 64
    fmin: float = 60.0
    fmax: float = 4000.0
    log: LogScale = field(default_factory=LogScale)
    mel: str = "htk"
    """Filterbank recipe: "htk", or "efficientat", the bands a pretrained backbone expects."""

    def __post_init__(self) -> None:
        """Reject parameter sets that would silently produce garbage."""
        if not 0 < self.hop_length <= self.win_length <= self.n_fft:
            raise ValueError(
                f"frontend needs 0 < hop_length ({self.hop_length}) <= win_length "
                f"({self.win_length}) <= n_fft ({self.n_fft})"
            )
        if self.mel not in MEL_RECIPES:
            raise ValueError(
                f"frontend mel must be one of {', '.join(MEL_RECIPES)}, not {self.mel!r}"
            )
        # EfficientAT's bands are laid out for twice our rate; those above Nyquist read silence.
        top = self.sample_rate if self.mel == "efficientat" else self.sample_rate / 2
        if not 0 <= self.fmin < self.fmax <= top:
            raise ValueError(
                f"frontend needs 0 <= fmin ({self.fmin}) < fmax ({self.fmax}) <= {top}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from the `frontend` object of a model's metadata JSON."""
        values = dict(data)
        values["log"] = LogScale(**values.get("log", {}))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the model's metadata JSON."""
        return asdict(self)

    def frames_for(self, seconds: float) -> int:
        """Return the number of frames covering `seconds` of audio."""
        return round(seconds * self.sample_rate / self.hop_length)

    @cached_property
    def window(self) -> Floats:
        """Hann window, periodic and scaled so a full-scale sine reads about 0 dB.

        EfficientAT's recipe uses its plain symmetric one instead.
        """
        if self.mel == "efficientat":
            return np.hanning(self.win_length).astype(np.float32)
        n = np.arange(self.win_length, dtype=np.float64)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.win_length)
        return np.asarray(hann * 2.0 / hann.sum(), dtype=np.float32)

    @cached_property
    def heard_mels(self) -> int:
        """Bands, from the lowest, that can carry sound at this rate (the picture shows these).

        EfficientAT's top bands lie above our Nyquist frequency and always read silence.
        """
        return int(np.flatnonzero(self.filterbank.sum(axis=0) > 0)[-1]) + 1

    @cached_property
    def filterbank(self) -> Floats:
        """Mel filterbank, shape (n_fft // 2 + 1, n_mels)."""
        if self.mel == "efficientat":
            return efficientat_filterbank(
                self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax
            )
        return mel_filterbank(
            self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax
        )


def _hz_to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> Floats:
    """Triangular HTK-mel filters; nothing outside [fmin, fmax] reaches the model."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)[:, None]
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


def efficientat_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> Floats:
    """EfficientAT's Kaldi-mel bands and pre-emphasis, for audio at half the rate they expect.

    The backbone was trained on 32-kHz audio: pre-emphasis `x[n] - 0.97 x[n-1]`, then a power
    spectrum over a window twice as long in samples. Upsampled 16-kHz audio gives the same bins
    below 8 kHz at four times the power and nothing above, so the emphasis and the gain are folded
    into the bands here and the frames match the backbone's without resampling.
    """
    rate = 2 * sample_rate
    bins = np.fft.rfftfreq(
        n_fft, 1.0 / sample_rate
    )  # the first half of the 2x-rate bins

    def kaldi_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    low, high = kaldi_mel(fmin), kaldi_mel(fmax)
    step = (high - low) / (n_mels + 1)
    left = low + step * np.arange(n_mels)
    mel = kaldi_mel(bins)[:, None]
    rising = (mel - left) / step
    falling = (left + 2 * step - mel) / step
    bands = np.clip(np.minimum(rising, falling), 0.0, None)
    emphasis = np.abs(1.0 - 0.97 * np.exp(-2j * np.pi * bins / rate)) ** 2
    return np.asarray(bands * (4.0 * emphasis)[:, None], dtype=np.float32)


def log_mel(samples: npt.ArrayLike, config: FrontendConfig) -> Floats:
    """Frames of standardised log-mel power, shape (frames, n_mels).

    `samples` is float audio in [-1, 1] whose first `win_length - hop_length` samples are
    context (the end of the previous call); every further `hop_length` samples give one frame.
    """
    audio = np.asarray(samples, dtype=np.float32)
    context = config.win_length - config.hop_length
    n_frames = max(0, (audio.size - context) // config.hop_length)
    if n_frames == 0:
        return np.empty((0, config.n_mels), dtype=np.float32)
    used = audio[: context + n_frames * config.hop_length]
    frames = sliding_window_view(used, config.win_length)[:: config.hop_length]
    spectrum = np.fft.rfft(frames * config.window, n=config.n_fft, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return config.log.apply(power @ config.filterbank)


class StreamingFrontend:
    """Turns audio blocks of any size into log-mel frames, carrying the remainder between calls."""

    def __init__(self, config: FrontendConfig) -> None:
        """Start with silence as context."""
        self.config = config
        self._context = config.win_length - config.hop_length
        self._pending: Floats = np.zeros(self._context, dtype=np.float32)

    @property
    def pending(self) -> int:
        """Samples held back (context and an unfinished hop)."""
        return int(self._pending.size)

    def reset(self) -> None:
        """Forget buffered audio (a new stream starts)."""
        self._pending = np.zeros(self._context, dtype=np.float32)

    def process(self, samples: Floats) -> Floats:
        """Return the frames completed by `samples` (shape (k, n_mels), k may be 0)."""
        audio: Floats = np.concatenate(
            (self._pending, np.asarray(samples, dtype=np.float32))
        )
        frames = log_mel(audio, self.config)
        self._pending = audio[frames.shape[0] * self.config.hop_length :]
        return frames
