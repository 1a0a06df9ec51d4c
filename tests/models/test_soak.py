"""The soak benchmark: a reproducible programme, honest attribution of events, live pipeline."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest

from baby_monitor_engine.backends import ModelRuntime
from baby_monitor_engine.detector import SoundEvent
from baby_monitor_engine.pcm import SAMPLE_RATE as RATE
from models.augment import active_rms
from models.dataset import Clip
from models.nursery import Sound
from models.soak import (
    ATTRIBUTION_S,
    Bed,
    Cry,
    Piece,
    Programme,
    duration_errors,
    false_alarms,
    false_by_kind,
    household,
    live_blocks,
    missed_over_beds,
    programme,
    rss_mb,
    run_soak,
    score_events,
    sweep,
)


def _noise(seconds: float, seed: int, level: float = 0.05) -> np.ndarray:
    return (
        np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level
    ).astype(np.float32)


def _cry_like(seconds: float) -> np.ndarray:
    """Make a second of silence, then a loud tone: its onset is at 1 s."""
    quiet = np.zeros(RATE, np.float32)
    t = np.arange(int((seconds - 1) * RATE)) / RATE
    return np.concatenate(
        [quiet, (0.5 * np.sin(2 * np.pi * 450 * t)).astype(np.float32)]
    )


def _started(t: float, first_window: float | None = None) -> SoundEvent:
    window = t if first_window is None else first_window
    return SoundEvent("cry", "started", t, t, None, 0.99, window, None)


def _nursery() -> list[Sound]:
    """One loop of each kind, of different lengths: a tone, a hummed tone and noise."""
    t = np.arange(3 * RATE) / RATE
    return [
        Sound(
            "lullaby: test (music box, 60 bpm)",
            "instrumental",
            np.sin(2 * np.pi * 440 * t).astype(np.float32),
        ),
        Sound(
            "sung lullaby: test (voice oohs, 60 bpm)",
            "sung",
            np.sin(2 * np.pi * 330 * t[: 2 * RATE]).astype(np.float32),
        ),
        Sound("noise machine: white", "noise", _noise(5.0, 9, 0.3)),
    ]


def test_household_keeps_home_sounds_and_leaves_out_farm_and_street() -> None:
    """Speech, music and domestic ESC-50 classes count as household sound; pigs and sirens do not."""

    def clip(source: str, orig_class: str, label: str = "other") -> Clip:
        return Clip("x.flac", label, source, "g", 4, orig_class, 5.0)

    assert household(clip("deeply_korean_read", "read_speech_neutral_voice"))
    assert household(clip("librosa_data", "music"))
    assert household(clip("esc50", "vacuum_cleaner"))
    assert not household(clip("esc50", "pig"))
    assert not household(clip("esc50", "siren"))
    assert not household(clip("deeply_nonverbal", "screaming"))
    assert not household(clip("donateacry", "hungry", label="cry"))


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_programme_is_reproducible_and_places_cries_where_it_says(share: float) -> None:
    """The same seed gives the same audio, beds or not; each cry's onset is where its loud part starts."""
    negatives = [_noise(4.0, i) for i in range(5)]
    cries = [_cry_like(3.0)]
    plan, segments = programme(
        negatives, cries, 0.25, 3, 60, _nursery(), nursery_share=share
    )
    audio = np.concatenate(list(segments))
    again = np.concatenate(
        list(programme(negatives, cries, 0.25, 3, 60, _nursery(), share)[1])
    )

    assert np.array_equal(audio, again)
    assert plan.seconds == pytest.approx(0.25 * 3600, abs=30)
    assert len(plan.cries) >= 5
    assert any(cry.bed for cry in plan.cries) == (share > 0)
    for cry in plan.cries:
        assert cry.end - cry.onset == pytest.approx(2.0, abs=0.03)
        start = round(cry.onset * RATE)
        before, after = audio[start - 1600 : start - 400], audio[start : start + 1600]
        # the cry may sit over household sound 5-20 dB below it: louder by at least 5 dB
        assert np.sqrt(np.mean(after**2)) > 1.7 * np.sqrt(np.mean(before**2))


def test_events_near_a_cry_count_as_detections_and_the_rest_as_false_alarms() -> None:
    """Latency runs from onset to the start event less the confirm time; strays are false alarms."""
    plan = Programme(7200.0, (Cry(100.0, 110.0), Cry(1000.0, 1004.0)))
    events = [_started(101.5), _started(112.0), _started(500.0), _started(1003.0)]

    result = score_events(plan, events, confirm_s=0.5)

    assert result["detected"] == 2
    assert result["false_events"] == 1
    assert result["latency_median_s"] == pytest.approx((1.0 + 2.5) / 2)
    busy = (110 + ATTRIBUTION_S - 100) + (1004 + ATTRIBUTION_S - 1000)
    assert result["false_per_24h"] == pytest.approx(24 / ((7200 - busy) / 3600))


def test_a_false_alarm_names_the_household_sounds_its_windows_heard() -> None:
    """From the start of the first window over threshold to the alarm; sounds after it are innocent."""
    plan = Programme(
        3600.0,
        (Cry(100.0, 110.0),),
        (
            Piece(480.0, 490.0, (3,)),
            Piece(490.0, 500.0, (5, 1)),
            Piece(503.0, 510.0, (8,)),
        ),
    )
    # the sound's estimated start lies before its first window's end (498 s)
    stray = SoundEvent("cry", "started", 502.0, 496.0, None, 0.99, 498.0, None)

    alarms = false_alarms(plan, [_started(105.0), stray], window_s=7.0)

    assert alarms == [{"t": 502.0, "clips": [5, 1], "beds": []}]


def test_duration_error_is_reported_less_played_length_per_cry() -> None:
    """A cry's episodes add up; starts and episodes no cry explains are left out."""
    plan = Programme(
        7200.0, (Cry(100.0, 110.0), Cry(1000.0, 1004.0), Cry(3000.0, 3005.0))
    )

    def stopped(first_window: float, start: float, end: float) -> SoundEvent:
        return SoundEvent(
            "cry", "stopped", end + 8, start, end, 0.99, first_window, end + 5
        )

    events = [
        _started(101.0),
        stopped(101.0, 100.2, 110.7),  # 10.5 s for 10 s played
        stopped(1001.0, 1000.1, 1001.1),  # split by a pause: 1 s + 2 s for 4 s played
        stopped(1007.0, 1006.0, 1008.0),
        stopped(500.0, 499.0, 505.0),  # a false alarm
    ]

    assert duration_errors(plan, events) == [pytest.approx(0.5), pytest.approx(-1.0)]


def test_missed_cries_give_no_latency() -> None:
    """With no detection at all the latency is unknown, not zero."""
    result = score_events(Programme(3600.0, (Cry(10.0, 12.0),)), [])

    assert result["detected"] == 0
    assert result["latency_median_s"] is None
    assert result["false_per_24h"] == 0


def test_the_sweep_replays_one_trace_at_every_threshold_and_confirm_time() -> None:
    """A blip above threshold is a false alarm without a confirm time and none with one."""
    plan = Programme(3600.0, (Cry(100.0, 110.0),))
    t = np.arange(0.0, 3600.0, 1.0)
    p = np.full(t.size, 0.1)
    p[500] = 0.97  # one window of a stray sound
    p[101:112] = 0.999  # the cry, from a second after its onset
    trace = np.stack([t, p], axis=1)

    rows = {
        (r["threshold"], r["confirm_s"]): r
        for r in sweep(plan, trace, (0.95, 0.98), (0.0, 2.0))
    }

    assert rows[0.95, 0.0]["false_events"] == 1
    assert rows[0.98, 0.0]["false_events"] == 0
    assert rows[0.95, 2.0]["false_events"] == 0
    assert all(r["detected"] == 1 for r in rows.values())
    assert rows[0.95, 0.0]["latency_median_s"] == pytest.approx(1.0)
    assert rows[0.95, 2.0]["latency_median_s"] == pytest.approx(1.0)


def test_soak_runs_the_live_pipeline_and_reports_memory(
    litert_runtime: ModelRuntime,
) -> None:
    """A short soak through the shipped model reports events, latency fields and RSS at both ends."""
    negatives = [_noise(5.0, i, 0.01) for i in range(3)]
    result = run_soak(litert_runtime, negatives, [_cry_like(4.0)], 0.05)

    ours = result["ours"]
    assert result["hours"] == pytest.approx(0.05, abs=0.01)
    assert ours["cries"] == len(programme(negatives, [_cry_like(4.0)], 0.05)[0].cries)
    assert ours["rss_start_mb"] > 0
    assert len(ours["rss_mb"]) >= 2
    assert "trace" not in ours
    assert "duration_error_s" in ours
    assert {row["confirm_s"] for row in result["sweep"]} == {0.0, 1.0, 2.0, 3.0}
    assert "yamnet" not in result
    assert "nursery" not in result


def test_soak_with_nursery_beds_reports_their_hours_and_false_events_by_kind(
    litert_runtime: ModelRuntime,
) -> None:
    """The nursery block: sounds per kind, hours played and without a cry, false events per kind."""
    negatives = [_noise(5.0, i, 0.01) for i in range(3)]
    result = run_soak(
        litert_runtime,
        negatives,
        [_cry_like(4.0)],
        0.05,
        nursery=_nursery(),
        nursery_share=0.5,
    )

    nursery = result["nursery"]
    assert nursery["sounds"] == {"instrumental": 1, "sung": 1, "noise": 1}
    assert 0 < sum(nursery["played_hours"].values()) <= result["hours"]
    assert set(nursery["negative_hours"]) == {
        "household",
        "instrumental",
        "sung",
        "noise",
    }
    assert (
        sum(result["ours"]["false_by_kind"].values()) == result["ours"]["false_events"]
    )


def test_blocks_release_the_programme_once_the_limit_is_reached() -> None:
    """The last memory reading must not count audio still in flight: the programme is closed."""
    closed: list[bool] = []

    def segments() -> Generator[np.ndarray]:
        try:
            while True:
                yield np.zeros(RATE * 5, np.float32)
        finally:
            closed.append(True)

    blocks = list(live_blocks(segments(), RATE * 12))
    assert sum(block.size for block in blocks) == RATE * 12
    assert closed == [True]


def test_rss_reads_this_process_resident_memory() -> None:
    """A positive figure in MB, after the heap trim (a no-op where glibc is missing)."""
    assert 1 < rss_mb() < 1_000_000


def test_a_six_hour_programme_holds_over_an_hour_of_nursery_beds_with_cries_over_them() -> (
    None
):
    """The default share: ≥ 1 h of beds of 2-6 minutes, every kind, cries still every ~5 minutes."""
    negatives = [_noise(4.0, i) for i in range(5)]
    plan, segments = programme(
        negatives, [_cry_like(5.0)], 6.0, seed=1, nursery=_nursery()
    )
    segments.close()

    played = plan.played_hours()
    assert sum(played.values()) >= 1.0
    assert all(hours > 0 for hours in played.values())
    assert all(120 <= bed.end - bed.start <= 360 for bed in plan.beds[:-1])
    assert 50 <= len(plan.cries) <= 95
    over = [c for c in plan.cries if c.bed]
    assert len(over) >= 5
    for cry in over:  # inside its bed, its attribution span too
        assert any(
            b.start <= cry.onset and cry.end + ATTRIBUTION_S <= b.end for b in plan.beds
        )
    quiet = plan.hours_by_kind()
    assert sum(quiet.values()) == pytest.approx(plan.negative_hours)
    assert quiet["household"] > 3.5


def test_without_nursery_sounds_the_programme_is_household_only() -> None:
    """A share of 0, or no sounds, leaves the beds out."""
    negatives = [_noise(4.0, i) for i in range(3)]
    plan, _ = programme(
        negatives, [_cry_like(3.0)], 0.5, nursery=_nursery(), nursery_share=0.0
    )
    assert plan.beds == ()
    assert programme(negatives, [_cry_like(3.0)], 0.5)[0].beds == ()


def test_a_bed_loops_its_sound_at_a_nursery_level_and_cries_play_over_it() -> None:
    """Between cries a bed repeats its loop exactly; its cries are 5-20 dB louder than it."""
    negatives = [_noise(4.0, i) for i in range(3)]
    sounds = _nursery()
    plan, segments = programme(
        negatives,
        [_cry_like(4.0)],
        1.0,
        seed=2,
        cry_every_s=120,
        nursery=sounds,
        nursery_share=1.0,
    )
    audio = np.concatenate(list(segments))

    assert sum(plan.played_hours().values()) > 0.8
    checked = heard = 0
    for bed in plan.beds[:-1]:
        loop = next(s.loop for s in sounds if s.name == bed.name)
        start, end = round(bed.start * RATE), round(bed.end * RATE)
        cries = [c for c in plan.cries if bed.start <= c.onset < bed.end]
        quiet_from = max([round((c.end) * RATE) for c in cries], default=start)
        stretch = audio[quiet_from:end]
        if stretch.size < 2 * loop.size:
            continue
        np.testing.assert_allclose(
            stretch[loop.size :], stretch[: -loop.size], atol=1e-6
        )
        level = 20 * np.log10(active_rms(stretch))
        assert -40.5 <= level <= -19.5
        for cry in cries:  # the bed under it is the same bed whole loops later
            onset = round(cry.onset * RATE)
            later = onset + loop.size * -(-(quiet_from - onset) // loop.size)
            if later + RATE > end:
                continue
            cry_alone = audio[onset : onset + RATE] - audio[later : later + RATE]
            loud = 20 * np.log10(active_rms(cry_alone))
            assert level + 5 - 0.5 <= loud <= level + 20 + 0.5
            heard += 1
        checked += 1
    assert checked >= 3
    assert heard >= 3


def test_false_alarms_during_a_bed_are_named_and_counted_by_kind() -> None:
    """An alarm whose windows heard a bed names it; counts per kind add up to the false events."""
    plan = Programme(
        7200.0,
        (Cry(100.0, 110.0), Cry(2000.0, 2004.0, bed="noise")),
        (Piece(480.0, 490.0, (3,)),),
        (
            Bed(
                1000.0,
                1300.0,
                "lullaby: Brahms' Lullaby (music box, 68 bpm)",
                "instrumental",
            ),
            Bed(1900.0, 2200.0, "noise machine: pink", "noise"),
        ),
    )
    events = [
        _started(105.0),  # the cry
        _started(489.0, 485.0),  # household
        _started(1002.0, 998.0),  # its windows heard the lullaby start
        _started(1500.0),  # quiet room
        _started(2001.5),  # the cry over the noise machine
        _started(2100.0, 2095.0),  # the noise machine alone
    ]

    alarms = false_alarms(plan, events, window_s=7.0)

    assert [a["beds"] for a in alarms] == [
        [],
        ["lullaby: Brahms' Lullaby (music box, 68 bpm)"],
        [],
        ["noise machine: pink"],
    ]
    assert alarms[0]["clips"] == [3]
    assert false_by_kind(plan, events, 7.0) == {
        "household": 2,
        "instrumental": 1,
        "sung": 0,
        "noise": 1,
    }
    scored = score_events(plan, events)
    assert (scored["bed_cries"], scored["bed_detected"]) == (1, 1)
    assert missed_over_beds(plan, events) == []
    assert missed_over_beds(plan, events[:4]) == [
        {"t": 2000.0, "bed": "noise machine: pink"}
    ]
    assert scored["false_events"] == 4
    hours = plan.hours_by_kind()
    assert hours["instrumental"] == pytest.approx(300 / 3600)
    assert hours["noise"] == pytest.approx((300 - (2004 + ATTRIBUTION_S - 2000)) / 3600)
    assert hours["household"] == pytest.approx(
        plan.negative_hours - 600 / 3600 + 14 / 3600
    )
