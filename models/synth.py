"""Training windows synthesised from clips: placements, backgrounds, noise, rooms and levels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from custom_components.baby_monitor.engine.resample import resample

from .augment import (
    active_rms,
    band_limit,
    coloured_noise,
    fit_length,
    reverberate,
    set_level,
)

__all__ = ["MASKER_MUSIC_P", "MASKER_P", "MASKER_SNR_DB", "Pools", "synthesize"]

type Floats = npt.NDArray[np.float32]

SAMPLE_RATE = 16000
MASKER_P = 0.5
"""Share of windows, whatever their label, with a sound machine or lullaby on top."""
MASKER_SNR_DB = (-10.0, 12.0)
"""Range of the sound's level over the masker's: often as loud as the sound or louder."""
MASKER_MUSIC_P = 0.5
"""Share of maskers that are music or singing rather than white, pink or brown noise."""


@dataclass
class Pools:
    """Clips augmentation draws from, by role (training folds only)."""

    positives: dict[str, list[Floats]]  # label -> clips
    negatives: list[Floats]
    music: list[Floats]
    negative_weights: npt.NDArray[np.float64] | None = (
        None  # draw hard negatives more often
    )
    labels: tuple[str, ...] = ("cry", "laughter")
    mix: dict[str, float] = field(
        default_factory=lambda: {"cry": 0.3, "laughter": 0.25}
    )
    masker_p: float = MASKER_P
    masker_snr_db: tuple[float, float] = MASKER_SNR_DB
    masker_music_p: float = MASKER_MUSIC_P


def _pick(
    items: list[Floats],
    rng: np.random.Generator,
    weights: npt.NDArray[np.float64] | None = None,
) -> Floats:
    return items[
        int(rng.choice(len(items), p=weights))
        if weights is not None
        else int(rng.integers(len(items)))
    ]


def _onset(clip: Floats, frame: int = 400) -> int:
    """Index where the sound gets going: the first frame within 15 dB of the clip's loudest."""
    n = clip.size // frame
    if n < 2:
        return 0
    energy = (clip[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    return int(np.argmax(energy > energy.max() * 10 ** (-15 / 10))) * frame


def _scaled(background: Floats, reference: Floats, snr_db: float) -> Floats:
    """`background` scaled to sit `snr_db` below `reference` (active RMS of both)."""
    return background * np.float32(
        active_rms(reference) / (active_rms(background) * 10 ** (snr_db / 20))
    )


def _place(clip: Floats, n: int, rng: np.random.Generator) -> tuple[Floats, Floats]:
    """Put a positive clip into an n-sample window; returns (window, the part that is in it).

    In 40 % of windows only the first 1-3 s of the sound is present, at the end of the window:
    what the model sees just after a cry starts, which is when a fast alert matters.
    """
    window = np.zeros(n, np.float32)
    if rng.random() < 0.4:
        start = _onset(clip)
        seg = clip[start : start + int(rng.uniform(1.0, 3.0) * SAMPLE_RATE)]
        window[n - seg.size :] = seg
        return window, seg
    if clip.size >= n:
        seg = fit_length(clip, n, rng)
        return seg.copy(), seg
    offset = (
        n - clip.size if rng.random() < 0.5 else int(rng.integers(0, n - clip.size + 1))
    )
    window[offset : offset + clip.size] = clip
    return window, clip


def _vary(clip: Floats, rng: np.random.Generator) -> Floats:
    """Shift pitch and tempo together by -15…+18 % (another baby, another adult), half the time."""
    if rng.random() < 0.5:
        return clip
    to_rate = round(SAMPLE_RATE / rng.uniform(0.85, 1.18) / 100) * 100
    return resample(clip, SAMPLE_RATE, to_rate)


def _quiet_room(n: int, rng: np.random.Generator) -> Floats:
    """Make a nursery at night: faint coloured noise at -90…-45 dBFS, sometimes digital silence."""
    if rng.random() < 0.25:
        return np.zeros(n, np.float32)
    noise = coloured_noise(n, str(rng.choice(["white", "pink", "brown"])), rng)
    return set_level(noise, rng.uniform(-90, -45))


def _sequence(n: int, pools: Pools, rng: np.random.Generator) -> Floats:
    """Make what a live stream carries: household sounds one after another at changing levels.

    Pieces of 0.5-5 s at ±15 dB, a quarter of them near-silent gaps (-60…-30 dB), joined
    with abrupt cuts: the level jumps and onsets of a stream that single clips never show.
    """
    out = np.zeros(n, np.float32)
    # sometimes the stream started (or came back) partway through the window
    at = int(rng.integers(0, n // 2)) if rng.random() < 0.3 else 0
    while at < n:
        size = min(n - at, int(rng.uniform(0.5, 5.0) * SAMPLE_RATE))
        piece = fit_length(
            _pick(pools.negatives, rng, pools.negative_weights), size, rng
        )
        gain = (
            10 ** (rng.uniform(-60, -30) / 20)
            if rng.random() < 0.25
            else 10 ** (rng.uniform(-15, 15) / 20)
        )
        rms = active_rms(piece)
        out[at : at + size] = piece * np.float32(gain / max(rms, 1e-6))
        at += size
    return out


def _background(n: int, pools: Pools, rng: np.random.Generator) -> Floats:
    """Household sound: one or two negative clips, a stream of them, music, or a noise machine."""
    if rng.random() < 0.4:
        return _sequence(n, pools, rng)
    kind = rng.random()
    if kind < 0.15:
        return coloured_noise(n, str(rng.choice(["white", "pink", "brown"])), rng)
    if kind < 0.25 and pools.music:
        return fit_length(_pick(pools.music, rng), n, rng).copy()
    bed = fit_length(_pick(pools.negatives, rng, pools.negative_weights), n, rng).copy()
    if rng.random() < 0.3:
        other = fit_length(
            _pick(pools.negatives, rng, pools.negative_weights), n // 2, rng
        )
        bed[n - other.size :] += _scaled(other, bed, rng.uniform(-6, 6))
    return bed


def synthesize(pools: Pools, n: int, rng: np.random.Generator) -> tuple[Floats, Floats]:
    """One n-sample training window and its multi-hot label vector."""
    label = np.zeros(len(pools.labels), np.float32)
    draw, chosen = rng.random(), None
    for i, name in enumerate(pools.labels):
        draw -= pools.mix[name]
        if draw < 0 and pools.positives.get(name):
            chosen, label[i] = name, 1.0
            break

    # Negatives are placed exactly like positives (padding, onsets, beds), so that how a sound
    # sits in the window says nothing about its label.
    if chosen is None and rng.random() < 0.08:
        return _quiet_room(n, rng), label
    if chosen is not None:
        foreground: Floats | None = _pick(pools.positives[chosen], rng)
    elif rng.random() < 0.6:
        foreground = _pick(pools.negatives, rng, pools.negative_weights)
    else:
        foreground = None
    if foreground is None:
        audio = _background(n, pools, rng)
        reference = audio
    else:
        audio, reference = _place(_vary(foreground, rng), n, rng)
        if rng.random() < 0.6:
            audio += _scaled(_background(n, pools, rng), reference, rng.uniform(-5, 20))
    if rng.random() < pools.masker_p:  # a sound machine or lullaby on top of anything
        masker = (
            fit_length(_pick(pools.music, rng), n, rng)
            if pools.music and rng.random() < pools.masker_music_p
            else coloured_noise(n, str(rng.choice(["white", "pink", "brown"])), rng)
        )
        audio += _scaled(masker, reference, rng.uniform(*pools.masker_snr_db))
    if rng.random() < 0.25:
        audio = reverberate(audio, rng)
    if (
        rng.random() < 0.3
    ):  # label-independent, so bandwidth says nothing about the class
        audio = band_limit(audio, rng)
    if active_rms(audio) < 1e-6:
        audio = coloured_noise(n, "pink", rng) * np.float32(1e-3)
    audio = set_level(audio, rng.uniform(-55, -6))
    audio += coloured_noise(n, "white", rng) * np.float32(
        10 ** (rng.uniform(-85, -60) / 20)
    )
    if rng.random() < 0.03:
        audio *= np.float32(rng.uniform(2, 10))
    return np.clip(audio, -1.0, 1.0).astype(np.float32), label
