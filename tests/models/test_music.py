"""Rendered music for training: composed from a seed, written as MIDI, rendered by FluidSynth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import music
from models.music import DRUMS, SAMPLE_RATE, compose, midi_bytes, pieces, render


def _events(midi: bytes) -> list[bytes]:
    """Decode the single track of a format-0 MIDI file into its events (status + data)."""
    assert midi[:4] == b"MThd"
    assert int.from_bytes(midi[8:10], "big") == 0  # format 0
    assert midi[14:18] == b"MTrk"
    length = int.from_bytes(midi[18:22], "big")
    track, at, events = midi[22 : 22 + length], 0, []
    assert len(track) == length
    while at < len(track):
        while track[at] & 0x80:  # delta time, variable length
            at += 1
        at += 1
        status = track[at]
        size = 3 + track[at + 2] if status == 0xFF else (2 if status >> 4 == 0xC else 3)
        events.append(track[at : at + size])
        at += size
    return events


def test_a_seed_always_composes_the_same_piece() -> None:
    """Training is reproducible: the same seed, the same notes; another seed, another piece."""
    first = compose(np.random.default_rng([7, 0]), 20.0)
    assert first == compose(np.random.default_rng([7, 0]), 20.0)
    assert first != compose(np.random.default_rng([7, 1]), 20.0)


@pytest.mark.parametrize("index", range(12))
def test_a_piece_has_a_melody_inside_its_length_on_programmed_channels(
    index: int,
) -> None:
    """Every note starts within the piece, on a channel with an instrument (or the drums)."""
    piece = compose(np.random.default_rng([3, index]), 15.0)
    assert any(note.channel == 0 for note in piece.notes)  # there is always a melody
    for note in piece.notes:
        assert 0.0 <= note.start < 15.0
        assert note.length > 0
        assert 0 < note.velocity <= 127
        assert note.channel in piece.programs or note.channel == DRUMS


def test_the_midi_file_holds_every_note_switched_on_and_off() -> None:
    """A valid standard MIDI file: tempo, programs, a note-on and a note-off per note, end of track."""
    piece = compose(np.random.default_rng([5, 2]), 10.0)
    events = _events(midi_bytes(piece))
    assert events[0] == b"\xff\x51\x03\x07\xa1\x20"
    assert events[-1] == b"\xff\x2f\x00"
    programs = {e[0] & 0x0F: e[1] for e in events if e[0] >> 4 == 0xC}
    assert programs == piece.programs
    assert sum(e[0] >> 4 == 0x9 for e in events) == len(piece.notes)
    assert sum(e[0] >> 4 == 0x8 for e in events) == len(piece.notes)


def test_a_piece_renders_to_audible_16_khz_mono_audio() -> None:
    """FluidSynth plays the piece: at least as long as composed, audible, never clipped."""
    audio = render(midi_bytes(compose(np.random.default_rng([1, 0]), 5.0)))
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert audio.size >= 5 * SAMPLE_RATE
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 10 ** (-40 / 20)
    assert float(np.abs(audio).max()) < 1.0


def test_rendering_without_fluidsynth_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine without FluidSynth gets a message naming the packages, not a bare crash."""
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(FileNotFoundError, match="fluidsynth fluid-soundfont-gm"):
        render(b"")


def test_rendered_pieces_are_cached_and_identical_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second training run reads the rendered set back instead of rendering again."""
    first = pieces(2, 3.0, seed=11, cache=tmp_path)
    assert len(list(tmp_path.glob("music-*.npz"))) == 1

    def no_render(_midi: bytes) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(music, "render", no_render)
    again = pieces(2, 3.0, seed=11, cache=tmp_path)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
