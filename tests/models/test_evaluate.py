"""The accuracy figures of the model card and the benchmark."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.data import Clip
from models.evaluate import (
    MASKED_PLACEMENTS,
    MAX_THRESHOLD,
    SENSITIVITY,
    evaluate_model,
)

type Floats = npt.NDArray[np.float32]

RATE = 16000


def _tone(hz: float, seconds: float) -> Floats:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _clip(label: str, source: str) -> Clip:
    return Clip(f"{source}/{label}.flac", label, source, "g", 4, label, 3.0)


def test_each_cry_is_heard_over_several_stretches_of_a_masker() -> None:
    """A 0 dB figure does not hang on which bar of a lullaby a single cry happened to land on.

    The masker is a low hum for its first half and a high whine for its second; the scorer
    hears the cry only where the whine is absent. The one cry is mixed over
    `MASKED_PLACEMENTS` different stretches, so its recall is neither all nor nothing.
    """
    cries = [_tone(500, 3.0)]
    clips = [
        _clip("cry", "donateacry"),
        _clip("laughter", "esc50"),
        _clip("other", "esc50"),
    ]
    audios = [*cries, _tone(900, 2.0), _tone(120, 2.0)]
    masker = np.concatenate([_tone(200, 30.0), _tone(3000, 30.0)])
    heard: list[Floats] = []

    def score(audio: Floats) -> Floats:
        heard.append(audio)
        spectrum = np.abs(np.fft.rfft(audio))
        whine = spectrum[int(2900 * audio.size / RATE) : int(3100 * audio.size / RATE)]
        cry = float(audio.size == cries[0].size and whine.max() < spectrum.max() / 10)
        return np.array([cry, 0.0], np.float32)

    report = evaluate_model(
        clips, audios, score, {"cry": 0.5, "laughter": 0.5}, {"lullaby": masker}, 0
    )

    mixed = heard[-len(cries) * MASKED_PLACEMENTS :]
    assert len({m.tobytes() for m in mixed}) == len(mixed)
    recall = report["masking_0db"]["lullaby"]
    assert recall * len(mixed) == round(recall * len(mixed))
    assert 0.0 < recall < 1.0


def test_sensitivity_sweep_shows_what_each_cry_threshold_trades() -> None:
    """Each listed threshold gets the clean negatives' false-positive rate and the 0 dB recall.

    At the threshold in use the recall is the headline figure; a lower one never hears less.
    """
    clips = [
        _clip("cry", "donateacry"),
        _clip("laughter", "esc50"),
        _clip("other", "esc50"),
        _clip("other", "esc50"),
    ]
    audios = [_tone(500, 3.0), _tone(700, 2.5), _tone(900, 2.0), _tone(120, 1.5)]
    masker = np.concatenate([_tone(200, 30.0), _tone(3000, 30.0)])
    by_length = {audios[1].size: 0.1, audios[2].size: 0.75, audios[3].size: 0.88}

    def score(audio: Floats) -> Floats:
        spectrum = np.abs(np.fft.rfft(audio))
        whine = spectrum[int(2900 * audio.size / RATE) : int(3100 * audio.size / RATE)]
        cry = 0.96 if whine.max() < spectrum.max() / 10 else 0.82
        return np.array([by_length.get(audio.size, cry), 0.0], np.float32)

    report = evaluate_model(
        clips, audios, score, {"cry": 0.9, "laughter": 0.5}, {"lullaby": masker}, 0
    )

    sweep = report["sensitivity"]
    assert sweep["thresholds"] == list(SENSITIVITY)
    assert sweep["negative_fpr"] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0])
    heard = sweep["masking_0db"]["lullaby"]
    assert heard[SENSITIVITY.index(0.9)] == report["masking_0db"]["lullaby"]
    assert heard[SENSITIVITY.index(0.8)] == 1.0
    assert 0.0 < heard[SENSITIVITY.index(0.9)] < 1.0
    assert heard == sorted(heard, reverse=True)


def test_a_default_threshold_never_exceeds_the_ceiling() -> None:
    """A model sure of every clip would put its 0.1 %-FPR point near 1; the default stays at the ceiling."""
    clips = [
        _clip("cry", "donateacry"),
        _clip("laughter", "esc50"),
        _clip("other", "esc50"),
    ]
    audios = [_tone(500, 3.0), _tone(900, 2.0), _tone(120, 2.0)]

    def score(audio: Floats) -> Floats:
        spectrum = np.abs(np.fft.rfft(audio))
        peak_hz = np.argmax(spectrum) * RATE / audio.size
        return np.array([0.999 if abs(peak_hz - 500) < 50 else 0.99, 0.9], np.float32)

    report = evaluate_model(clips, audios, score, None, {}, 0)

    assert report["thresholds"]["cry"] == MAX_THRESHOLD
    assert report["labels"]["cry"]["roc_auc"] == 1.0
