"""Waveform augmentations against the traps of DESIGN.md §7 (bandwidth, masking, early windows)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.pcm import SAMPLE_RATE

__all__ = [
    "active_rms",
    "band_limit",
    "coloured_noise",
    "fit_length",
    "mix_at_snr",
    "reverberate",
    "set_level",
]

type Floats = npt.NDArray[np.float32]


def active_rms(audio: Floats, frame: int = 400) -> float:
    """RMS of the louder half of frames, so padding and pauses do not distort SNR and level."""
    n = audio.size // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio**2) + 1e-12))
    energy = np.sort((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    return float(np.sqrt(energy[n // 2 :].mean() + 1e-12))


def set_level(audio: Floats, dbfs: float) -> Floats:
    """Scale so the active RMS sits at `dbfs`."""
    return (audio * (10 ** (dbfs / 20) / active_rms(audio))).astype(np.float32)


def mix_at_snr(signal: Floats, background: Floats, snr_db: float) -> Floats:
    """Add background to signal, scaled so signal/background active RMS is `snr_db`."""
    gain = active_rms(signal) / (active_rms(background) * 10 ** (snr_db / 20))
    return (signal + background * gain).astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> Floats:
    """White, pink (1/f) or brown (1/f²) noise: what nursery sound machines play."""
    white = rng.standard_normal(n)
    if colour == "white":
        return white.astype(np.float32)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    spectrum /= freqs ** (0.5 if colour == "pink" else 1.0)
    noise = np.fft.irfft(spectrum, n)
    return np.asarray(noise / noise.std(), dtype=np.float32)


def band_limit(audio: Floats, rng: np.random.Generator) -> Floats:
    """Cut to a random telephone-like band (low cut 0-300 Hz, high cut 3.2-5 kHz), like an 8 kHz phone upload."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)
    low, high = rng.uniform(0, 300), rng.uniform(3200, 5000)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, audio.size).astype(np.float32)


def reverberate(audio: Floats, rng: np.random.Generator) -> Floats:
    """Convolve with a synthetic room (exponentially decaying noise, RT60 0.15-0.8 s)."""
    rt60 = rng.uniform(0.15, 0.8)
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    rir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path, stronger when the mic is close
    n = audio.size + length - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(rir, size), size)[
        : audio.size
    ]
    wet32 = np.asarray(wet, dtype=np.float32)
    return np.asarray(
        wet32 * (active_rms(audio) / max(active_rms(wet32), 1e-9)), dtype=np.float32
    )


def fit_length(audio: Floats, n: int, rng: np.random.Generator) -> Floats:
    """Return a random n-sample crop, or the clip tiled (with its original start at a random place) to n."""
    if audio.size >= n:
        start = int(rng.integers(0, audio.size - n + 1))
        return audio[start : start + n]
    reps = -(-n // audio.size) + 1
    tiled = np.tile(audio, reps)
    start = int(rng.integers(0, audio.size))
    return tiled[start : start + n]
