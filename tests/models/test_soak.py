"""The soak benchmark: a reproducible programme, honest attribution of events, live pipeline."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest

from baby_monitor_engine.backends import ModelRuntime
from baby_monitor_engine.detector import SoundEvent
from models.dataset import Clip
from models.soak import (
    ATTRIBUTION_S,
    Cry,
    Piece,
    Programme,
    _blocks,
    duration_errors,
    false_alarms,
    household,
    programme,
    rss_mb,
    run_soak,
    score_events,
    sweep,
)

RATE = 16000


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


def _started(t: float) -> SoundEvent:
    return SoundEvent("cry", "started", t, t, None, 0.99, t, None)


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


def test_programme_is_reproducible_and_places_cries_where_it_says() -> None:
    """The same seed gives the same audio; each cry's onset is where its loud part starts."""
    negatives = [_noise(4.0, i) for i in range(5)]
    cries = [_cry_like(3.0)]
    plan, segments = programme(negatives, cries, 0.25, seed=3, cry_every_s=60)
    audio = np.concatenate(list(segments))
    again = np.concatenate(
        list(programme(negatives, cries, 0.25, seed=3, cry_every_s=60)[1])
    )

    assert np.array_equal(audio, again)
    assert plan.seconds == pytest.approx(0.25 * 3600, abs=30)
    assert len(plan.cries) >= 5
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

    assert alarms == [{"t": 502.0, "clips": [5, 1]}]


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


def test_blocks_release_the_programme_once_the_limit_is_reached() -> None:
    """The last memory reading must not count audio still in flight: the programme is closed."""
    closed: list[bool] = []

    def segments() -> Generator[np.ndarray]:
        try:
            while True:
                yield np.zeros(RATE * 5, np.float32)
        finally:
            closed.append(True)

    blocks = list(_blocks(segments(), RATE * 12))
    assert sum(block.size for block in blocks) == RATE * 12
    assert closed == [True]


def test_rss_reads_this_process_resident_memory() -> None:
    """A positive figure in MB, after the heap trim (a no-op where glibc is missing)."""
    assert 1 < rss_mb() < 1_000_000
