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
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.pipeline import SoundPipeline
from baby_monitor_engine.room import (
    HEARD_HOLD,
    HEARD_ROWS,
    TAUGHT_HOP_S,
    Example,
    ExampleError,
    HeardLog,
    fit_room,
    newest,
    taught_patches,
)
from models.dataset import Clip
from tests.conftest import DATA

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


def test_quiet_moments_around_a_sound_are_not_taught(rng: np.random.Generator) -> None:
    """Patches far less like the sound than the best one are the room's background."""
    rows = rows_near(0, 4, rng)
    picked = taught_patches(rows, [0.3, 0.01, 0.2, 0.1], count=4)
    np.testing.assert_array_equal(picked, rows[[0, 2]])


def test_heard_stretches_keep_their_patches_once_each(rng: np.random.Generator) -> None:
    """Each sound's stretch over its level gets an id and its patches, once each.

    A stretch goes on through a short dip and ends after HEARD_HOLD windows below.
    """
    log = HeardLog({"cry": 0.4, "laughter": 0.3})
    rows = rows_near(0, 3, rng)
    quiet = {"cry": 0.1, "laughter": 0.0}

    def window(t: int, cry: float, laughter: float = 0.0) -> dict[str, int]:
        return log.update(
            float(t), {"cry": cry, "laughter": laughter}, rows, [t, t + 1, t + 2]
        )

    assert window(10, 0.5) == {"cry": 1}
    assert window(11, 0.9) == {"cry": 1}
    assert window(12, 0.1, laughter=0.6) == {"laughter": 2}
    assert window(13, 0.6) == {"cry": 1}  # a dip: the same cry
    for t in range(14, 14 + HEARD_HOLD):
        assert log.update(float(t), quiet, rows, [t, t + 1, t + 2]) == {}
    assert window(20, 0.6) == {"cry": 3}
    first = log.find("cry", 1)
    assert first is not None
    assert (first.start, first.end, first.peak) == (10.0, 13.0, 0.9)
    assert sorted(first.rows) == [10, 11, 12, 13, 14, 15]
    assert first.patch_rows().shape == (6, FEATURES)
    latest = log.find("cry")
    assert latest is not None and latest.heard_id == 3
    loud = log.find("cry", peak=0.8)
    assert loud is not None and loud.heard_id == 1
    assert log.find("cry", 2) is None
    assert log.find("cry", peak=0.95) is None
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
    """After a reconnect the same sound is a new stretch; older ones are off its clock."""
    log = HeardLog({"cry": 0.4})
    row = rows_near(0, 1, rng)
    log.update(1.0, {"cry": 0.9}, row, [1])
    log.close()
    assert log.update(2.0, {"cry": 0.9}, row, [2]) == {"cry": 2}
    before, after = log.find("cry", 1), log.find("cry", 2)
    assert before is not None and not before.fresh
    assert after is not None and after.fresh


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
    numpy_runtime: ModelRuntime, manifest: list[Clip]
) -> None:
    """A cry taught as a false alarm no longer fires on another patch grid; others still do.

    It is taught from its heard stretch and its audio, through the pipeline. The heard stretch it was taught from carries its id in the scored windows.
    """
    meta = numpy_runtime.meta
    assert meta.backbone is not None
    cries = [c for c in manifest if c.label == "cry" and c.fold == 4]
    taught_cry, other_cry = (
        cries[0],
        next(c for c in cries if c.group != cries[0].group),
    )
    audio = decode_file(DATA / taught_cry.path)
    pipeline = SoundPipeline(numpy_runtime)
    before = pipeline.feed(audio)
    assert max(s.probabilities["cry"] for s in before) >= meta.thresholds["cry"]
    heard = pipeline.heard.find("cry", peak=meta.thresholds["cry"])
    assert heard is not None
    assert heard.heard_id in {s.heard.get("cry") for s in before}
    rows = np.concatenate(
        (heard.patch_rows(), numpy_runtime.embed_audio(audio, TAUGHT_HOP_S))
    )
    taught = Example(
        "cry",
        "not_this_sound",
        taught_patches(rows, numpy_runtime.patch_probabilities(rows)[:, 0]),
        0.0,
    )
    room = fit_room(
        [taught],
        numpy_runtime.patch_probabilities,
        meta.labels,
        meta.backbone.embedding_columns,
    )

    def peak(sound: npt.NDArray[np.float32]) -> float:
        again = SoundPipeline(numpy_runtime)
        again.room = room
        return max(s.probabilities["cry"] for s in again.feed(sound))

    shifted = np.concatenate((np.zeros(SAMPLE_RATE // 2, np.float32), audio))
    assert peak(shifted) < meta.thresholds["cry"]
    assert peak(decode_file(DATA / other_cry.path)) >= meta.thresholds["cry"]


def test_a_stream_scores_a_taught_room_as_a_single_window_would(
    numpy_runtime: ModelRuntime, manifest: list[Clip]
) -> None:
    """Cached per-patch corrections give the uncached scores, and follow a room swapped in."""
    meta = numpy_runtime.meta
    assert meta.backbone is not None
    cry = next(c for c in manifest if c.label == "cry" and c.fold == 4)
    audio = decode_file(DATA / cry.path)
    pipeline = SoundPipeline(numpy_runtime)
    windows = pipeline.stream.push(audio)
    cache = numpy_runtime.new_cache()
    rows = [numpy_runtime.window_rows(w.features) for w in windows]
    rooms = [
        fit_room(
            [Example("cry", verdict, rows[0], 0.0)],
            numpy_runtime.patch_probabilities,
            meta.labels,
            meta.backbone.embedding_columns,
        )
        for verdict in ("not_this_sound", "this_sound")
    ]
    for room in rooms:
        for window, window_rows in zip(windows, rows, strict=True):
            ends = numpy_runtime.patch_ends(window.end)
            np.testing.assert_allclose(
                numpy_runtime.score_rows(window_rows, room, ends=ends, cache=cache),
                numpy_runtime.score_rows(window_rows, room),
                atol=1e-6,
            )
