"""It learns your home: choosing the rooms, laying out a day, attributing events, teaching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from baby_monitor_engine.detector import DetectorConfig
from baby_monitor_engine.model import spread_scores
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.room import (
    HEARD_ROWS,
    PATCHES_PER_EXAMPLE,
    TAUGHT_AUDIO_S,
    TAUGHT_HOP_S,
)
from baby_monitor_engine.windows import clip_windows
from models.backbone import EMBEDDING, FRONTEND, LOGITS, PATCH_HOP_S, PATCH_S
from models.dataset import Clip
from models.report import left_after, rooms_section
from models.rooms import (
    DAY_VARIANTS,
    GAP_ROWS,
    HOUSEHOLD_PER_DAY,
    MASKED,
    MODES,
    PHASES,
    Day,
    DayPiece,
    Kind,
    LiveAudio,
    SimulatedRoom,
    assemble,
    clip_windows_over,
    false_positive_groups,
    gain,
    halves,
    heard_rows,
    nearest,
    plan_day,
    replay,
    room_days,
    room_totals,
    run_room,
    shifted,
    stream_scores,
    stretch_audio,
    teach,
)

FEATURES = EMBEDDING + len(LOGITS)
CONFIG = DetectorConfig(0.75, 3.0, 3.0)


def _clip(index: int, label: str, group: str, orig_class: str, fold: int = 1) -> Clip:
    return Clip(f"{group}/{index}.flac", label, "synth", group, fold, orig_class, 5.0)


def test_groups_are_ranked_by_windows_over_the_threshold_and_need_two_clips() -> None:
    """Adult distress, single clips and groups never over the threshold are no room."""
    clips = [
        _clip(0, "other", "a", "parent_reading"),
        _clip(1, "other", "a", "parent_reading"),
        _clip(2, "other", "b", "cat"),
        _clip(3, "other", "b", "cat"),
        _clip(4, "other", "c", "screaming"),
        _clip(5, "other", "c", "screaming"),
        _clip(6, "other", "d", "dog"),
        _clip(7, "cry", "e", "baby_cry"),
        _clip(8, "cry", "e", "baby_cry"),
        _clip(9, "other", "f", "fan"),
        _clip(10, "other", "f", "fan"),
        _clip(11, "other", "f", "fan"),
        _clip(12, "other", "g", "rain"),
        _clip(13, "other", "g", "rain"),
    ]
    over = np.zeros((len(clips), len(DAY_VARIANTS)), np.intp)
    over[0, 0], over[2, 2], over[3, 1] = 1, 4, 1  # a: 1, b: 5
    over[4], over[6], over[7] = 9, 9, 9  # screaming, a lone dog, a cry
    over[9, 0] = 1  # fan: 1 window over, from three clips

    ranked = false_positive_groups(clips, over)

    assert [(g["group"], g["over"]) for g in ranked] == [("b", 5), ("a", 1), ("f", 1)]
    assert ranked[0]["indices"] == [2, 3]


def test_a_clip_shorter_than_a_window_is_one_window() -> None:
    """Windows over the threshold are counted per clip: six patches each, or the whole clip."""
    patch = np.array([0.0, 0.999, 0, 0, 0, 0, 0, 0.999, 0.1], np.float32)
    offsets = np.array([0, 8, 9])

    assert clip_windows_over(patch, offsets, 3.0, 0.75).tolist() == [3, 0]


@pytest.mark.parametrize(
    ("clips", "first", "second"),
    [([1, 2], [1], [2]), ([1, 2, 3], [1, 2], [3]), ([5, 6, 7, 8], [5, 6], [7, 8])],
)
def test_day_one_hears_the_first_half(
    clips: list[int], first: list[int], second: list[int]
) -> None:
    """Day 2 hears clips day 1 never did."""
    assert halves(clips) == (first, second)


def test_a_day_plays_the_recurring_sound_every_20_to_30_minutes_and_every_cry() -> None:
    """Seeded: the same plan twice; each cry once per variant and once masked."""
    plans = [
        plan_day(np.random.default_rng(3), [10, 11], [20, 21, 22], [30, 31])
        for _ in range(2)
    ]
    plan = plans[0]

    assert plans[0] == plans[1]
    recurring = [played for kind, played in plan if kind == "recurring"]
    assert 48 <= len(recurring) <= 72
    assert all(1 <= len(p) <= 4 and {c for c, _ in p} <= {10, 11} for p in recurring)
    assert sum(kind == "household" for kind, _ in plan) == HOUSEHOLD_PER_DAY
    cries = sorted(played[0] for kind, played in plan if kind in ("cry", "masked"))
    assert cries == sorted((c, v) for c in (30, 31) for v in (*DAY_VARIANTS, MASKED))


def test_a_day_lays_each_clip_s_rows_out_between_silences() -> None:
    """Every piece holds its variant's rows; silence of GAP_ROWS before each sound and after."""
    offsets = np.array([0, 3, 5])
    variants = {
        name: (offsets, np.full((5, 2), k + 1, np.float32) * np.arange(5)[:, None])
        for k, name in enumerate(("clean", "band"))
    }
    silence = np.full((4, 2), -1.0, np.float32)
    plan: list[Any] = [
        ("recurring", ((0, "clean"), (1, "band"))),
        ("cry", ((1, "clean"),)),
    ]

    day = assemble(np.random.default_rng(0), plan, variants, silence)

    first, second, cry = day.pieces
    assert (first.end, second.start) == (
        second.start,
        first.end,
    )  # a stretch is back to back
    np.testing.assert_array_equal(
        day.rows[first.start : first.end], variants["clean"][1][0:3]
    )
    np.testing.assert_array_equal(
        day.rows[second.start : second.end], variants["band"][1][3:5]
    )
    assert GAP_ROWS[0] <= cry.start - second.end <= GAP_ROWS[1]
    assert (day.rows[: first.start] == -1).all()
    assert GAP_ROWS[0] <= len(day.rows) - cry.end <= GAP_ROWS[1]


def test_a_window_scores_its_loudest_of_six_patches_spread() -> None:
    """Window j holds rows j..j+5, as the stream's windows do."""
    probabilities = np.zeros((8, 2), np.float32)
    probabilities[6, 0] = 0.9

    scores = stream_scores(probabilities, 3.0)

    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores[:, 0], [0.0, *spread_scores([0.9, 0.9], 3.0)])


def _day(*spans: tuple[Kind, int, int]) -> Day:
    pieces = tuple(
        DayPiece(kind, i, "clean", a, b) for i, (kind, a, b) in enumerate(spans)
    )
    return Day(np.zeros((max(b for _, _, b in spans) + 20, 4), np.float32), pieces)


def test_events_on_a_cry_are_hits_and_the_others_are_false_alarms() -> None:
    """An event belongs to the sound its first window holds; four windows over confirm 3 s."""
    day = _day(
        ("recurring", 10, 15),
        ("cry", 40, 47),
        ("masked", 70, 77),
        ("household", 100, 104),
    )
    scores = np.zeros(len(day.rows) - 5, np.float32)
    scores[8:14] = 0.9  # the recurring sound, long enough
    scores[42:44] = 0.9  # the cry, too short to confirm
    scores[95:99] = 0.8  # the household sound

    played = replay(day, scores, CONFIG)

    assert played.firsts == (8, 95)
    assert played.heard == (False, False, False, False)
    assert played.false == (0, 3)
    summary = played.summary(day)
    assert summary["false_events"] == 2
    assert summary["false_recurring"] == summary["false_household"] == 1
    assert (summary["cry_plays"], summary["cry_heard"], summary["masked_plays"]) == (
        1,
        0,
        1,
    )


def test_the_heard_stretch_runs_around_its_window_and_keeps_at_most_heard_rows() -> (
    None
):
    """The rows HeardLog keeps: from the stretch's first window's first row, at most HEARD_ROWS."""
    scores = np.zeros(200)
    scores[10:15] = 0.5
    scores[50:150] = 0.5

    np.testing.assert_array_equal(heard_rows(scores, 0.4, 12), np.arange(10, 20))
    np.testing.assert_array_equal(
        heard_rows(scores, 0.4, 120), np.arange(50, 50 + HEARD_ROWS)
    )
    assert heard_rows(scores, 0.4, 30).size == 0


# --- a synthetic room: the recurring sound and the cries point two ways ----------------------------


def _direction(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=EMBEDDING)
    return v / np.linalg.norm(v)


RECURRING, CRY, QUIET = _direction(1), _direction(2), _direction(3)


def _probabilities(rows: np.ndarray) -> np.ndarray:
    """Play the shipped head: the recurring sound taken for a cry, masked cries heard faintly."""
    unit = rows[:, :EMBEDDING] / np.linalg.norm(
        rows[:, :EMBEDDING], axis=1, keepdims=True
    )
    cry = np.where(
        unit @ RECURRING > 0.9, 0.995, np.where(unit @ CRY > 0.9, 0.999, 0.001)
    )
    cry = np.where(
        (unit @ CRY > 0.5) & (unit @ CRY <= 0.9), 0.8, cry
    )  # masked: 0.42 spread
    return np.stack([cry, np.full_like(cry, 0.001)], axis=1).astype(np.float32)


def _rows(
    direction: np.ndarray, n: int, rng: np.random.Generator, spread: float
) -> np.ndarray:
    e = direction + rng.normal(0, spread / np.sqrt(EMBEDDING), (n, EMBEDDING))
    return np.concatenate([e, np.zeros((n, len(LOGITS)))], axis=1).astype(np.float32)


def _synthetic_room() -> tuple[SimulatedRoom, dict[str, Any], np.ndarray]:
    """Clips 0-3 the recurring sound, 4-23 cries, 24-27 household; masked cries lie between."""
    rng = np.random.default_rng(0)
    clean = [_rows(RECURRING, 5, rng, 0.05) for _ in range(4)]
    clean += [_rows(CRY, 6, rng, 0.2) for _ in range(20)]
    clean += [_rows(QUIET, 4, rng, 0.2) for _ in range(4)]
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in clean])))
    masked = [_rows(CRY + QUIET, len(r), rng, 0.05) for r in clean]
    features = np.concatenate(clean)
    variants = dict.fromkeys(DAY_VARIANTS, (offsets, features))
    variants[MASKED] = (offsets, np.concatenate(masked))
    room = SimulatedRoom(
        "synthetic",
        1,
        ([0, 1, 2, 3], [0, 1, 2, 3]),
        [24, 25, 26, 27],
        ([*range(4, 14)], [*range(14, 24)]),
    )
    return room, variants, _rows(QUIET, 30, rng, 0.2)


def test_a_room_taught_not_a_cry_stops_its_recurring_false_alarm_and_keeps_every_cry() -> (
    None
):
    """Five verdicts on day 1; day 2's recurring sound no longer fires, its cries all do."""
    room, variants, silence = _synthetic_room()

    result = run_room(room, variants, silence, _probabilities, 3.0, CONFIG, seed=1)

    day1, day2 = result["day1"], result["day2"]
    assert day1["false_events"] >= 5
    assert [kind for kind, _, _ in day1["taught_not_a_cry"]] == ["recurring"] * 5
    assert day2["shipped"]["false_recurring"] >= 40
    assert day2["not_a_cry"]["false_events"] == 0
    assert day2["not_a_cry"]["cry_heard"] == day2["shipped"]["cry_heard"] == 30


def test_a_room_taught_was_a_cry_hears_the_masked_cries_it_missed() -> None:
    """The shipped head misses every masked cry; five verdicts and day 2 hears them."""
    room, variants, silence = _synthetic_room()

    result = run_room(room, variants, silence, _probabilities, 3.0, CONFIG, seed=1)

    assert result["day1"]["taught_was_a_cry"] == 5
    ship, was = result["day2"]["shipped"], result["day2"]["was_a_cry"]
    assert ship["masked_heard"] == 0
    assert was["masked_heard"] == was["masked_plays"] == 10
    assert was["false_events"] == ship["false_events"]


def _synthetic_day1() -> tuple[Day, np.ndarray, np.ndarray]:
    """Day 1 of the synthetic room without household sounds: the day, its patch and window scores."""
    room, variants, silence = _synthetic_room()
    day = assemble(
        np.random.default_rng(0),
        plan_day(np.random.default_rng(0), room.recurring[0], [], room.cries[0]),
        variants,
        silence,
    )
    patch = _probabilities(day.rows)
    return day, patch, stream_scores(patch, 3.0)[:, 0]


def test_teaching_takes_the_top_patches_of_the_first_five_false_events() -> None:
    """Each verdict keeps up to PATCHES_PER_EXAMPLE rows, those the head found most like a cry."""
    day, patch, scores = _synthetic_day1()

    examples = teach(day, replay(day, scores, CONFIG), patch, scores, 0.75)

    nots = examples["not_this_sound"]
    assert len(nots) == 5
    assert all(
        1 <= len(e.rows) <= PATCHES_PER_EXAMPLE and e.rows.shape[1] == FEATURES
        for e in nots
    )
    assert all((_probabilities(e.rows)[:, 0] > 0.99).all() for e in nots)
    assert [e.verdict for e in examples["this_sound"]] == ["this_sound"] * 5


def test_the_section_renders_both_modes_and_the_tuning_sweep() -> None:
    """A table per mode with a total row, the ranking with its tuning room, the patch-row caveat."""
    room, variants, silence = _synthetic_room()
    result = run_room(room, variants, silence, _probabilities, 3.0, CONFIG, seed=1)
    total = room_totals([result])
    for name in ("not_a_cry", "was_a_cry", "both"):
        total[name] |= gain(total["shipped"], total[name])
    sweep = [{"width": 0.15, "ridge": 0.1, **result["day2"]}]
    mode = {
        "rooms": [result],
        "total": total,
        "tuning": {"name": "t", "fold": 1, "sweep": sweep},
    }
    group = {
        "group": "g",
        "orig_class": "fan",
        "source": "synth",
        "fold": 1,
        "clips": 4,
        "over": 9,
    }
    rooms = {
        "threshold": 0.75,
        "confirm_s": 3.0,
        "hold_s": 3.0,
        "width": 0.15,
        "ridge": 0.1,
        "ranking": [group] * 4,
        "modes": dict.fromkeys(MODES, mode),
    }

    text = "\n".join(rooms_section(rooms))

    assert "## It learns your home" in text
    assert "measured from audio at shifted phases" in text
    assert "upper bound" not in text
    assert "4. fan (synth g, fold 1, 4 clips): 9 windows — **tuning room**" in text
    ship = total["shipped"]["false_events"]
    assert (
        text.count(
            f"| **all three** |  |  | {ship} | {ship} → 0 (100 %) | 30/30 (100.0 %)"
        )
        == 2
    )
    assert "| 0.15 | 0.1 |" in text


def test_distance_to_the_taught_patches_is_cosine_on_the_embedding_columns() -> None:
    """The logit columns play no part; the nearest centre counts."""
    rows = np.zeros((2, FEATURES), np.float32)
    rows[0, 0], rows[0, -1] = 2.0, 50.0
    rows[1, 1] = 1.0
    centres = np.zeros((2, EMBEDDING), np.float32)
    centres[0, 0] = 1.0
    centres[1, :2] = np.sqrt(0.5)

    np.testing.assert_allclose(
        nearest(rows, centres), [0.0, 1 - np.sqrt(0.5)], atol=1e-6
    )


def test_a_room_reports_how_far_day_2_sounds_lie_from_what_it_was_taught() -> None:
    """Same recordings come back close to the taught patches; cries lie far from them."""
    room, variants, silence = _synthetic_room()

    result = run_room(room, variants, silence, _probabilities, 3.0, CONFIG, seed=1)

    far, cries = result["distances"]["false_alarms"], result["distances"]["cries"]
    assert far[2] < 0.05
    assert cries[0] > 0.5


def test_the_report_says_where_the_false_alarms_left_come_from() -> None:
    """Against what the room was taught: another form of a taught recording, a new one, other sounds."""
    room = {
        "day1": {"taught_not_a_cry": [["recurring", "a.flac", "clean"]]},
        "day2": {
            "not_a_cry": {
                "false_sounds": [
                    ["recurring", "a.flac", "pitch"],
                    ["recurring", "a.flac", "pitch"],
                    ["recurring", "b.flac", "clean"],
                    ["household", "c.flac", "band"],
                ]
            }
        },
    }

    assert left_after(room) == (
        "2 from taught recordings pitched, taught only in other forms; "
        "1 from recordings it was never taught; 1 from household sounds"
    )


# --- the same recordings, heard as audio ---------------------------------------------------------


def test_a_replayed_clip_starts_phase_seconds_after_a_patch_boundary() -> None:
    """Quiet before the clip; a clip still shorter than a patch gets quiet after it too."""
    audio = np.ones(3 * SAMPLE_RATE, np.float32)

    played = shifted(audio, 0.375)

    assert played.size == audio.size + 6000
    assert not played[:6000].any()
    np.testing.assert_array_equal(played[6000:], audio)
    short = shifted(np.ones(SAMPLE_RATE, np.float32), 0.125)
    assert short.size == round(PATCH_S * SAMPLE_RATE)
    assert short[2000 : 2000 + SAMPLE_RATE].all()
    assert not short[:2000].any() and not short[2000 + SAMPLE_RATE :].any()


def test_replayed_phases_lie_half_way_between_the_taught_grid_s() -> None:
    """Every phase is TAUGHT_HOP_S / 2 from the nearest multiple of TAUGHT_HOP_S."""
    assert PHASES == (0.125, 0.375, 0.625, 0.875)
    assert all(
        abs(p / TAUGHT_HOP_S - round(p / TAUGHT_HOP_S)) == pytest.approx(0.5)
        for p in PHASES
    )


def _sound(clip: int, variant: str) -> np.ndarray:
    """Clip `clip` lasts clip + 1.5 s at level clip + 1 (band: negative)."""
    level = (clip + 1) * (-1 if variant == "band" else 1)
    return np.full(round((clip + 1.5) * SAMPLE_RATE), level, np.float32)


def test_a_stretch_s_audio_is_its_pieces_with_a_second_of_quiet_per_silence_row() -> (
    None
):
    """From the stretch's first row: silence rows as zeros, each piece from its first row covered."""
    pieces = (
        DayPiece("recurring", 2, "clean", 3, 6),  # a 3.5-s clip: three rows
        DayPiece("recurring", 4, "band", 6, 10),  # 5.5 s, four rows
        DayPiece("household", 1, "clean", 20, 22),
    )
    day = Day(np.zeros((30, 4), np.float32), pieces)
    second = SAMPLE_RATE

    audio = stretch_audio(day, np.arange(1, 13), _audio_of)

    assert not audio[: 2 * second].any()  # rows 1 and 2
    np.testing.assert_array_equal(audio[2 * second : 11 * second // 2], 3.0)
    np.testing.assert_array_equal(audio[11 * second // 2 : 11 * second], -5.0)
    assert audio.size == 14 * second  # rows 10-12 are silence
    assert not audio[11 * second :].any()
    inside = stretch_audio(day, np.arange(7, 9), _audio_of)
    np.testing.assert_array_equal(
        inside, np.full(3 * second, -5.0)
    )  # rows 1-2: [1, 4) s
    whole = stretch_audio(day, np.arange(0, 30), _audio_of)  # 32.5 s
    assert whole.size == round(TAUGHT_AUDIO_S * second)
    assert (
        stretch_audio(day, np.arange(0, 30), _audio_of, limit_s=4.0).size == 4 * second
    )


def _audio_of(piece: DayPiece) -> np.ndarray:
    return _sound(piece.clip, piece.variant)


class _Backbone:
    """A stand-in for the backbone: each patch's mean level picks a row; counts its patches."""

    def __init__(self) -> None:
        self.patches = 0

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        self.patches += len(patches)
        level = patches.mean(axis=(1, 2))
        rows = np.zeros((len(patches), FEATURES), np.float32)
        rows[:, 0] = 1.0
        rows[:, 1] = level
        return rows


def _live(backbone: _Backbone, cache: Path | None = None) -> LiveAudio:
    return LiveAudio(_sound, backbone, "test", cache)


def test_live_audio_embeds_a_stretch_every_taught_hop_and_caches_it(
    tmp_path: Path,
) -> None:
    """A stretch of 13.5 s of audio gives a patch every 0.25 s; the second time, the cache."""
    backbone = _Backbone()
    live = _live(backbone, tmp_path)
    day = Day(
        np.zeros((20, FEATURES), np.float32),
        (DayPiece("recurring", 9, "clean", 2, 11),),  # 10.5 s of audio
    )

    rows = live.taught(day, np.arange(0, 12))

    assert rows.shape == (int((13.5 - PATCH_S) / TAUGHT_HOP_S) + 1, FEATURES)
    assert backbone.patches == len(rows)
    np.testing.assert_array_equal(live.taught(day, np.arange(0, 12)), rows)
    assert backbone.patches == len(rows)


def test_a_verdict_keeps_its_stretch_s_audio_embedded_again() -> None:
    """The re-embedded rows are candidates too: those the head finds most like a cry are kept."""
    day, patch, scores = _synthetic_day1()
    again_rows = _rows(RECURRING, 3, np.random.default_rng(5), 0.0) * 2.0
    asked: list[np.ndarray] = []

    def again(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        asked.append(rows)
        return again_rows, np.ones(3, np.float32)  # surer than any row of the day

    examples = teach(day, replay(day, scores, CONFIG), patch, scores, 0.75, again=again)

    nots = examples["not_this_sound"]
    assert len(asked) == len(nots) + len(examples["this_sound"])
    assert all(len(rows) > 0 for rows in asked)
    for example in nots:
        np.testing.assert_array_equal(example.rows[:3], again_rows)
        assert len(example.rows) <= PATCHES_PER_EXAMPLE


def test_same_recordings_day_2_replays_the_recurring_clips_at_shifted_phases() -> None:
    """Day 1 and the other sounds keep their cached rows; day 2's recurring clips are audio."""
    room, variants, silence = _synthetic_room()
    backbone = _Backbone()

    first, second = room_days(room, variants, silence, 1, _live(backbone))
    cached = room_days(room, variants, silence, 1)

    np.testing.assert_array_equal(first.rows, cached[0].rows)
    assert [(p.kind, p.clip, p.variant) for p in second.pieces] == [
        (p.kind, p.clip, p.variant) for p in cached[1].pieces
    ]
    recurring = [p for p in second.pieces if p.kind == "recurring"]
    assert {p.phase for p in recurring} == set(PHASES)
    assert all(p.phase == 0.0 for p in second.pieces if p.kind != "recurring")
    assert all((second.rows[p.start : p.end, 0] == 1.0).all() for p in recurring)
    offsets, features = variants["clean"]
    for piece in second.pieces:
        if piece.kind == "cry":
            np.testing.assert_array_equal(
                second.rows[piece.start : piece.end],
                features[offsets[piece.clip] : offsets[piece.clip + 1]],
            )
    clip = recurring[0]
    played = backbone(
        np.stack(_patches(shifted(_sound(clip.clip, clip.variant), clip.phase)))
    )
    np.testing.assert_array_equal(second.rows[clip.start : clip.end], played)


def _patches(audio: np.ndarray) -> list[np.ndarray]:
    return list(clip_windows(audio, FRONTEND, PATCH_S, PATCH_HOP_S)[1])


def test_a_room_heard_live_also_reports_teaching_by_rows_alone() -> None:
    """Day 2's recurring sound is what the backbone makes of its audio: here never a cry."""
    room, variants, silence = _synthetic_room()

    result = run_room(
        room,
        variants,
        silence,
        _probabilities,
        3.0,
        CONFIG,
        seed=1,
        live=_live(_Backbone()),
    )

    assert set(result["day2_phases"]) == {f"{p:g}" for p in PHASES}
    assert result["day1"]["false_recurring"] >= 5
    assert result["day2"]["shipped"]["false_recurring"] == 0
    assert (
        result["rows_only"]["false_events"]
        == result["day2"]["not_a_cry"]["false_events"]
    )
    assert "false_sounds" not in result["rows_only"]
