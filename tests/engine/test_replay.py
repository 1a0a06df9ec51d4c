"""A connection's opening is held back until it is known not to replay the last recording."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.replay import OPENING_S, SILENT_CLEAR_S, OpeningCheck

RATE = 16000
BLOCK = 1600
OPENING_BLOCKS = round(OPENING_S * RATE / BLOCK)

type Floats = npt.NDArray[np.float32]


def noise(seconds: float, seed: int) -> Floats:
    """Quiet room noise, different for each seed."""
    rng = np.random.default_rng(seed)
    return (0.01 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def play(check: OpeningCheck, audio: Floats) -> list[Floats]:
    """Feed audio in 0.1-s blocks as a source would, then its end; return what was released."""
    released: list[Floats] = []
    for offset in range(0, audio.size, BLOCK):
        released += check.push(audio[offset : offset + BLOCK])
    return released + check.flush()


def test_opening_is_held_then_released_in_order() -> None:
    """Nothing passes until the opening is in; then everything, in order, nothing lost."""
    audio = noise(2.5, seed=1)
    check = OpeningCheck(None)
    released = [check.push(audio[i : i + BLOCK]) for i in range(0, audio.size, BLOCK)]
    held = OPENING_BLOCKS - 1
    assert [len(out) for out in released[:held]] == [0] * held
    assert len(released[held]) == OPENING_BLOCKS
    assert np.array_equal(np.concatenate([b for out in released for b in out]), audio)
    assert check.decided
    assert check.cleared
    assert not check.replayed


def test_same_recording_again_is_a_replay() -> None:
    """A file played again from its start releases nothing on its second connection."""
    recording = noise(5.0, seed=2)
    first = OpeningCheck(None)
    assert np.array_equal(np.concatenate(play(first, recording)), recording)
    again = OpeningCheck(first.digest)
    assert play(again, recording) == []
    assert again.replayed
    assert not again.cleared


def test_live_stream_opens_differently_each_time() -> None:
    """A live stream joined later, or a new recording, is heard in full."""
    first = OpeningCheck(None)
    play(first, noise(3.0, seed=3))
    later = noise(3.0, seed=4)
    check = OpeningCheck(first.digest)
    assert np.array_equal(np.concatenate(play(check, later)), later)
    assert not check.replayed


def test_digital_silence_passes_at_once_and_identifies_nothing() -> None:
    """A muted camera opens with zeros every time: they pass, and that is not a replay."""
    zeros = np.zeros(round(SILENT_CLEAR_S * RATE), dtype=np.float32)
    first = OpeningCheck(None)
    released = [first.push(zeros[i : i + BLOCK]) for i in range(0, zeros.size, BLOCK)]
    assert all(len(out) == 1 for out in released)
    assert not first.decided
    assert first.cleared  # long silence is live, whatever played before
    first.flush()
    assert first.digest is None
    again = OpeningCheck(first.digest)
    assert len(play(again, zeros)) == zeros.size // BLOCK
    assert not again.replayed


def test_silence_before_the_first_sound_is_part_of_the_opening() -> None:
    """A file opening with a second of digital silence is still recognised.

    The same sound after another length of silence (a live stream joined elsewhere) is new.
    """
    sound = noise(3.0, seed=6)
    recording = np.concatenate([np.zeros(RATE, dtype=np.float32), sound])
    first = OpeningCheck(None)
    play(first, recording)
    assert first.digest is not None
    again = play(OpeningCheck(first.digest), recording)
    assert np.array_equal(np.concatenate(again), np.zeros(RATE, dtype=np.float32))
    later = np.concatenate([np.zeros(RATE // 2, dtype=np.float32), sound])
    check = OpeningCheck(first.digest)
    assert np.array_equal(np.concatenate(play(check, later)), later)
    assert not check.replayed


def test_a_source_ending_within_its_opening_is_still_heard_once() -> None:
    """A file shorter than the opening is released at its end, and recognised next time."""
    short = noise(OPENING_S - 0.05, seed=5)
    first = OpeningCheck(None)
    assert np.array_equal(np.concatenate(play(first, short)), short)
    assert play(OpeningCheck(first.digest), short) == []
    assert OpeningCheck(None).flush() == []
