"""What a nursery plays: tunes written right, rendered reproducibly, sound machines shaped like theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baby_monitor_engine.pcm import SAMPLE_RATE as RATE
from models import music, nursery
from models.nursery import (
    INSTRUMENTS,
    NOISE_MACHINES,
    TUNES,
    VOICES,
    noise_machine,
    sounds,
    tune_loop,
    tune_midi,
)

BARS = {
    "Twinkle Twinkle Little Star": 12,
    "Brahms' Lullaby": 8,
    "Au clair de la lune": 4,
    "Mary Had a Little Lamb": 8,
    "Frère Jacques": 8,
    "London Bridge": 8,
    "Old MacDonald": 4,
    "Hot Cross Buns": 4,
}


def _slope(audio: np.ndarray, low: float = 100.0, high: float = 4000.0) -> float:
    """Log-log slope of the power spectrum between `low` and `high` Hz (0 white, -1 pink, -2 brown)."""
    frames = audio[: audio.size // 4096 * 4096].reshape(-1, 4096)
    power = (np.abs(np.fft.rfft(frames * np.hanning(4096), axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(4096, 1 / RATE)
    band = (freqs >= low) & (freqs <= high)
    return float(np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0])


def _band_share(audio: np.ndarray, low: float, high: float) -> float:
    """Share of the energy between `low` and `high` Hz."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def _peak(audio: np.ndarray, hz: float) -> float:
    """Power at `hz` over the median power within 10 Hz of it."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)
    near = power[np.abs(freqs - hz) < 10]
    return float(power[np.argmin(np.abs(freqs - hz))] / np.median(near))


def _join_click(loop: np.ndarray) -> float:
    """Bend across the loop's join over the loop's own 99.9th-percentile bend (≤ 1.2: no click).

    The bend is the second difference: a click is a kink no smooth sound makes.
    """
    join = np.concatenate([loop[-8:], loop[:8]])
    bends = np.abs(np.diff(loop, 2))
    return float(np.abs(np.diff(join, 2)).max() / np.percentile(bends, 99.9))


@pytest.mark.parametrize("tune", TUNES, ids=lambda t: t.name)
def test_every_tune_is_whole_bars_within_a_singable_range(tune: nursery.Tune) -> None:
    """Each melody has its known number of bars and stays within an octave and a half of middle C."""
    pitches = [p for p, _ in tune.parsed() if p is not None]

    assert tune.beats == BARS[tune.name] * tune.meter
    assert max(pitches) - min(pitches) <= 19
    assert min(pitches) >= -7
    assert max(pitches) <= 12
    assert tune.parsed()[0][0] is not None  # starts on a note, on the downbeat


def test_the_tunes_are_the_ones_named() -> None:
    """Spot checks of the melodies against the songs every parent knows."""
    twinkle, brahms, mary = (
        next(t for t in TUNES if t.name == name)
        for name in (
            "Twinkle Twinkle Little Star",
            "Brahms' Lullaby",
            "Mary Had a Little Lamb",
        )
    )
    assert [p for p, _ in twinkle.parsed()[:7]] == [0, 0, 7, 7, 9, 9, 7]
    assert [p for p, _ in mary.parsed()[:7]] == [4, 2, 0, 2, 4, 4, 4]
    # "lul-la-by and good night" rises to the fifth twice; the pickup sits at the end
    assert [p for p, _ in brahms.parsed()[-2:] + brahms.parsed()[:4]] == [
        4,
        4,
        7,
        4,
        4,
        7,
    ]
    assert brahms.meter == 3


def test_a_tune_is_written_with_melody_accompaniment_and_bass_on_its_instrument() -> (
    None
):
    """Three passes in the MIDI: the melody on the chosen program, an accompaniment and a bass."""
    tune = TUNES[0]
    piece = nursery.tune_piece(tune, INSTRUMENTS["music box"], 70.0, 72, 3)
    melody = [n for n in piece.notes if n.channel == 0]

    assert piece.programs[0] == INSTRUMENTS["music box"]
    assert len(melody) == 3 * len([p for p, _ in tune.parsed() if p is not None])
    assert {n.pitch for n in melody} <= {72 + p for p, _ in tune.parsed() if p} | {72}
    assert any(n.channel == 1 for n in piece.notes)
    assert any(n.channel == 2 for n in piece.notes)
    assert max(n.start + n.length for n in piece.notes) == pytest.approx(
        3 * tune.beats * 60 / 70.0, abs=0.01
    )
    # voices are accompanied by another instrument: a choir does not strum its own chords
    voiced = nursery.tune_piece(tune, VOICES["choir aahs"], 70.0, 60, 1)
    assert voiced.programs[1] != VOICES["choir aahs"]
    assert tune_midi(tune, 10, 70.0, 72) == music.midi_bytes(
        nursery.tune_piece(tune, 10, 70.0, 72, 3)
    )


def test_a_rendered_tune_is_one_pass_long_and_loops_without_a_click() -> None:
    """The loop lasts exactly one pass at its tempo, is audible, and its join is no louder a step."""
    tune = next(t for t in TUNES if t.name == "Hot Cross Buns")
    loop = tune_loop(tune, INSTRUMENTS["music box"], 100.0, 72)

    assert loop.dtype == np.float32
    assert loop.size == round(tune.beats * 60 / 100.0 * RATE)
    assert np.sqrt(np.mean(loop**2)) > 10 ** (-45 / 20)
    assert _join_click(loop) <= 1.2


@pytest.mark.parametrize("kind", NOISE_MACHINES)
def test_noise_machines_loop_seamlessly(kind: str) -> None:
    """Tiled for minutes, a machine's loop never clicks at its join and is the same each seed."""
    loop = noise_machine(kind, np.random.default_rng(0), seconds=8)

    assert loop.dtype == np.float32
    assert 7 * RATE <= loop.size <= 8 * RATE
    assert _join_click(loop) <= 1.2
    np.testing.assert_array_equal(
        loop, noise_machine(kind, np.random.default_rng(0), 8)
    )


def test_a_loop_cut_anywhere_else_clicks() -> None:
    """The click measure works: brown noise cut short jumps at its join."""
    loop = noise_machine("brown", np.random.default_rng(0), seconds=8)

    assert _join_click(loop[: loop.size // 3]) > 2


def test_noise_colours_fall_as_their_names_say() -> None:
    """White is flat, pink falls about 3 dB an octave and brown about 6: brown falls fastest."""
    rng = np.random.default_rng(1)
    white, pink, brown = (noise_machine(k, rng, 8) for k in ("white", "pink", "brown"))

    assert _slope(white) == pytest.approx(0.0, abs=0.2)
    assert _slope(pink) == pytest.approx(-1.0, abs=0.2)
    assert _slope(brown) == pytest.approx(-2.0, abs=0.3)


def test_the_other_machines_sound_like_a_fan_the_sea_a_heart_and_a_shush() -> None:
    """Hum at mains frequency, slow swells, low thumps a second apart, and hiss in bursts."""
    rng = np.random.default_rng(2)
    fan, ocean, heart, shush = (
        noise_machine(k, rng, 20) for k in ("fan", "ocean", "heartbeat", "shush")
    )

    assert max(_peak(fan, 50.0), _peak(fan, 60.0)) > 1000  # mains hum over the noise
    assert _band_share(fan, 2000, 8000) < 0.01  # brown underneath: no hiss
    envelope = np.sqrt((ocean.reshape(-1, RATE // 2) ** 2).mean(axis=1))
    assert envelope.max() > 4 * envelope.min()  # swells
    assert _band_share(heart, 0, 200) > 0.95  # low thumps
    energy = (heart[: heart.size // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1)
    energy -= energy.mean()
    lags = np.arange(50, 120)  # 0.5-1.2 s in 10-ms frames
    alike = [np.dot(energy[:-lag], energy[lag:]) for lag in lags]
    assert 60 <= 6000 / lags[int(np.argmax(alike))] <= 80  # beats per minute
    assert _band_share(shush, 1000, 6000) > 0.95
    loud = np.sqrt((shush[: shush.size // 1600 * 1600].reshape(-1, 1600) ** 2).mean(1))
    assert loud.max() > 5 * np.percentile(loud, 10)  # bursts, not a steady hiss


def test_unknown_noise_machine_is_named_in_the_error() -> None:
    """A typo says which machines exist."""
    with pytest.raises(ValueError, match="rain"):
        noise_machine("rain", np.random.default_rng(0))


def test_the_nursery_is_seeded_cached_and_labelled_by_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names say what plays (tune, instrument, tempo); a second call reads the cache, identical."""
    first = sounds(instrumental=2, sung=1, seed=5, cache=tmp_path)
    assert len(list(tmp_path.glob("nursery-*.npz"))) == 1
    assert [s.kind for s in first] == ["instrumental"] * 2 + ["sung"] + ["noise"] * 7
    assert first[0].name.startswith("lullaby: Twinkle Twinkle Little Star (music box, ")
    assert first[1].name.startswith("lullaby: Brahms' Lullaby (celesta, ")
    assert first[2].name.startswith("sung lullaby: Twinkle Twinkle Little Star (choir")
    assert first[-1].name == "noise machine: shush"
    bpm = int(first[0].name.split(", ")[-1].split()[0])
    assert 56 <= bpm <= 80

    def no_render(_midi: bytes) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(music, "render", no_render)
    again = sounds(instrumental=2, sung=1, seed=5, cache=tmp_path)
    for a, b in zip(first, again, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.loop, b.loop)
