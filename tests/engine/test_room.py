"""What a room learns: examples that round-trip, a correction that stays local, heard stretches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine.audio import decode_file
from baby_monitor_engine.backends import ModelRuntime
from baby_monitor_engine.model import spread_scores
from baby_monitor_engine.pipeline import SoundPipeline
from baby_monitor_engine.room import (
    HEARD_ROWS,
    Example,
    ExampleError,
    HeardLog,
    fit_room,
    newest,
    taught_patches,
)

type Floats = npt.NDArray[np.float32]

LABELS = ("cry", "laughter")
FEATURES = 16
EMBEDDING = 12


def rows_near(direction: int, count: int, rng: np.random.Generator) -> Floats:
    """Rows whose embedding points along one axis, with a little noise (one recording)."""
    rows = 0.02 * rng.standard_normal((count, FEATURES)).astype(np.float32)
    rows[:, direction] += 1.0
    return rows


def shipped(probability: float) -> Callable[[Floats], Floats]:
    """Make a stand-in head that gives every patch `probability` of crying."""

    def head(rows: Floats) -> Floats:
        out = np.zeros((len(rows), len(LABELS)), np.float32)
        out[:, 0] = probability
        return out

    return head


def example(verdict: str, rows: Floats, at: float = 0.0, sound: str = "cry") -> Example:
    """Make a verdict on `rows`."""
    return Example(sound, verdict, rows, at)  # type: ignore[arg-type]


@pytest.fixture
def rng() -> np.random.Generator:
    """Seed the rows' noise."""
    return np.random.default_rng(7)


def test_an_example_round_trips_through_its_stored_form(
    rng: np.random.Generator,
) -> None:
    """Stored as float16 text: the rows come back within float16 precision."""
    taught = example("not_this_sound", rows_near(0, 4, rng), at=1234.5)
    back = Example.from_dict(taught.as_dict(), FEATURES)
    assert (back.sound, back.verdict, back.taught_at) == (
        "cry",
        "not_this_sound",
        1234.5,
    )
    np.testing.assert_allclose(back.rows, taught.rows, atol=1e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "maybe"}, "unknown verdict"),
        ({"shape": [4, 10]}, r"expected \(n, 16\)"),
        ({"rows": "not base64!"}, "malformed example"),
        ({"rows": "AAAA"}, "malformed example"),
        ({"taught_at": None}, "malformed example"),
        ({"rows": None}, "malformed example"),
    ],
)
def test_a_damaged_example_is_refused_by_name(
    rng: np.random.Generator, change: dict[str, object], message: str
) -> None:
    """A store edited by hand or cut short raises ExampleError, never a numpy error."""
    stored = {**example("this_sound", rows_near(0, 4, rng)).as_dict(), **change}
    with pytest.raises(ExampleError, match=message):
        Example.from_dict(stored, FEATURES)


def test_an_example_with_values_that_are_not_finite_is_refused() -> None:
    """Infinite rows (a float16 overflow) are refused, not learnt from."""
    rows = np.full((2, FEATURES), np.inf, np.float32)
    with pytest.raises(ExampleError, match="not finite"):
        Example.from_dict(example("this_sound", rows).as_dict(), FEATURES)


def test_nothing_taught_scores_as_shipped(rng: np.random.Generator) -> None:
    """No examples: the room's head is empty and leaves every score as it is."""
    room = fit_room([], shipped(0.99), LABELS, EMBEDDING)
    probs = np.full((6, 2), 0.99, np.float32)
    assert room.empty
    assert room.adjust(probs, rows_near(0, 6, rng)) is probs


def test_not_this_sound_silences_that_sound_and_nothing_far_from_it(
    rng: np.random.Generator,
) -> None:
    """One verdict on a recording silences its other stretches, nothing else.

    Other sounds and the other label keep their scores.
    """
    room = fit_room(
        [example("not_this_sound", rows_near(0, 4, rng))],
        shipped(0.999),
        LABELS,
        EMBEDDING,
    )
    probs = np.full((6, 2), 0.999, np.float32)
    same = room.adjust(probs, rows_near(0, 6, rng))
    other = room.adjust(probs, rows_near(3, 6, rng))
    assert same[:, 0].max() < 0.5
    np.testing.assert_array_equal(same[:, 1], probs[:, 1])
    np.testing.assert_allclose(other, probs, atol=1e-6)


def test_this_sound_lifts_a_missed_sound_like_it(rng: np.random.Generator) -> None:
    """A missed sound taught as the sound scores high when it comes again; others do not."""
    room = fit_room(
        [example("this_sound", rows_near(1, 4, rng))], shipped(0.3), LABELS, EMBEDDING
    )
    probs = np.full((6, 2), 0.3, np.float32)
    assert room.adjust(probs, rows_near(1, 6, rng))[:, 0].min() > 0.9
    np.testing.assert_allclose(
        room.adjust(probs, rows_near(4, 6, rng)), probs, atol=1e-6
    )


def test_more_ridge_means_a_smaller_pull(rng: np.random.Generator) -> None:
    """The ridge sets how far one verdict moves a score."""
    taught = [example("not_this_sound", rows_near(0, 4, rng))]
    probs = np.full((1, 2), 0.99, np.float32)
    heard = rows_near(0, 1, rng)
    loose, firm = (
        fit_room(taught, shipped(0.99), LABELS, EMBEDDING, ridge=ridge).adjust(
            probs, heard
        )[0, 0]
        for ridge in (0.1, 10.0)
    )
    assert loose < firm < 0.99


def test_verdicts_that_disagree_meet_between(rng: np.random.Generator) -> None:
    """The same sound taught once as cry and once as not: neither verdict wins outright."""
    rows = rows_near(2, 4, rng)
    room = fit_room(
        [example("not_this_sound", rows), example("this_sound", rows, at=1.0)],
        shipped(0.5),
        LABELS,
        EMBEDDING,
    )
    adjusted = room.adjust(np.full((4, 2), 0.5, np.float32), rows)
    np.testing.assert_allclose(adjusted[:, 0], 0.5, atol=0.02)


def test_examples_of_a_sound_the_model_lacks_are_ignored(
    rng: np.random.Generator,
) -> None:
    """Examples of a sound the model has no label for correct nothing."""
    taught = [example("not_this_sound", rows_near(0, 4, rng), sound="snoring")]
    assert fit_room(taught, shipped(0.9), LABELS, EMBEDDING).empty


def test_the_newest_examples_of_each_sound_and_verdict_are_kept(
    rng: np.random.Generator,
) -> None:
    """The cap drops the oldest of each sound and verdict, not of the others."""
    rows = rows_near(0, 1, rng)
    taught = [example("not_this_sound", rows, at=float(t)) for t in range(5)]
    taught += [example("this_sound", rows, at=10.0)]
    kept = newest(taught, limit=3)
    assert [(e.verdict, e.taught_at) for e in kept] == [
        ("not_this_sound", 2.0),
        ("not_this_sound", 3.0),
        ("not_this_sound", 4.0),
        ("this_sound", 10.0),
    ]


def test_taught_patches_are_those_most_like_the_sound(rng: np.random.Generator) -> None:
    """An example keeps the patches that made the head think of the sound."""
    rows = rows_near(0, 6, rng)
    picked = taught_patches(rows, [0.1, 0.9, 0.2, 0.8, 0.7, 0.3], count=3)
    np.testing.assert_array_equal(picked, rows[[1, 3, 4]])


def test_heard_stretches_keep_their_patches_once_each(rng: np.random.Generator) -> None:
    """Each sound's stretch over its level gets an id and its patches, once each."""
    log = HeardLog({"cry": 0.4, "laughter": 0.3})
    rows = rows_near(0, 3, rng)
    assert log.update(1.0, {"cry": 0.5, "laughter": 0.0}, rows, [10, 11, 12]) == {
        "cry": 1
    }
    assert log.update(2.0, {"cry": 0.9, "laughter": 0.0}, rows, [11, 12, 13]) == {
        "cry": 1
    }
    assert log.update(3.0, {"cry": 0.1, "laughter": 0.6}, rows, [12, 13, 14]) == {
        "laughter": 2
    }
    assert log.update(4.0, {"cry": 0.6, "laughter": 0.0}, rows, [13, 14, 15]) == {
        "cry": 3
    }
    first = log.find("cry", 1)
    assert first is not None
    assert (first.start, first.end, first.peak) == (1.0, 2.0, 0.9)
    assert sorted(first.rows) == [10, 11, 12, 13]
    assert first.patch_rows().shape == (4, FEATURES)
    latest = log.find("cry")
    assert latest is not None and latest.heard_id == 3
    assert log.find("cry", 2) is None
    assert log.find("snoring") is None


def test_a_long_stretch_keeps_at_most_its_first_minute_of_patches(
    rng: np.random.Generator,
) -> None:
    """A long stretch holds a bounded number of patch rows."""
    log = HeardLog({"cry": 0.4})
    row = rows_near(0, 1, rng)
    for t in range(HEARD_ROWS + 20):
        log.update(float(t), {"cry": 0.9}, row, [t])
    heard = log.find("cry")
    assert heard is not None and len(heard.rows) == HEARD_ROWS


def test_a_stream_restart_ends_the_open_stretch(rng: np.random.Generator) -> None:
    """After a reconnect the same sound is a new stretch."""
    log = HeardLog({"cry": 0.4})
    row = rows_near(0, 1, rng)
    log.update(1.0, {"cry": 0.9}, row, [1])
    log.close()
    assert log.update(2.0, {"cry": 0.9}, row, [2]) == {"cry": 2}


# --- with the shipped model ---------------------------------------------------------------------


def test_per_patch_scores_and_room_scoring_agree_with_the_head(
    numpy_runtime: ModelRuntime, validation_clip: Callable[[str, str], Path]
) -> None:
    """Nothing taught: a window scores exactly as `predict`.

    Its loudest patch, scored on its own, gives the window's raw score.
    """
    meta = numpy_runtime.meta
    audio = decode_file(validation_clip("cry", "donateacry"))
    pipeline = SoundPipeline(numpy_runtime)
    window = pipeline.stream.push(audio[: int(meta.window_s * meta.sample_rate) + 1])[0]
    rows = numpy_runtime.window_rows(window.features)
    empty = fit_room([], numpy_runtime.patch_probabilities, meta.labels, 384)
    np.testing.assert_array_equal(
        numpy_runtime.score_rows(rows, empty), numpy_runtime.predict(window.features)
    )
    raw = numpy_runtime.patch_probabilities(rows).max(axis=0)
    np.testing.assert_allclose(
        numpy_runtime.score_rows(rows), spread_scores(raw, meta.spread), atol=1e-6
    )


def test_a_room_taught_not_a_cry_hears_that_cry_no_more(
    numpy_runtime: ModelRuntime, validation_clip: Callable[[str, str], Path]
) -> None:
    """Through the pipeline: a cry taught as a false alarm no longer fires when replayed.

    The heard stretch it was taught from carries its id in the scored windows.
    """
    meta = numpy_runtime.meta
    assert meta.backbone is not None
    audio = decode_file(validation_clip("cry", "donateacry"))
    pipeline = SoundPipeline(numpy_runtime)
    before = pipeline.feed(audio)
    assert max(s.probabilities["cry"] for s in before) >= meta.thresholds["cry"]
    ids = {s.heard["cry"] for s in before if "cry" in s.heard}
    heard = pipeline.heard.find("cry")
    assert heard is not None and heard.heard_id in ids
    rows = heard.patch_rows()
    taught = Example(
        "cry",
        "not_this_sound",
        taught_patches(rows, numpy_runtime.patch_probabilities(rows)[:, 0]),
        0.0,
    )
    pipeline.room = fit_room(
        [taught],
        numpy_runtime.patch_probabilities,
        meta.labels,
        meta.backbone.embedding_columns,
    )
    after = SoundPipeline(numpy_runtime)
    after.room = pipeline.room
    replayed = after.feed(audio)
    assert max(s.probabilities["cry"] for s in replayed) < meta.thresholds["cry"]
