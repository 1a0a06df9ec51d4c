"""Threshold, confirm and hold: when a sound starts and stops."""

import numpy as np
import pytest

from baby_monitor_engine.detector import (
    OFFSET_FILL,
    ONSET_FILL,
    DetectorConfig,
    SoundDetector,
    SoundEvent,
    detect_episodes,
)

WINDOW_S = 7.0


def run(probs: list[float], **config: float) -> list[tuple[str, float]]:
    """Feed one window per second; return (kind, t) of every event."""
    detector = SoundDetector("cry", DetectorConfig(threshold=0.5, **config))
    events = [detector.update(float(t), p) for t, p in enumerate(probs, start=1)]
    return [(e.kind, e.t) for e in events if e is not None]


def test_starts_on_first_window_above_threshold_without_confirm_time() -> None:
    """With no confirm time, the first window over the threshold starts the episode."""
    assert run([0.1, 0.9, 0.9, 0.1], hold_s=0) == [("started", 2), ("stopped", 4)]


def test_confirm_time_needs_a_continuous_run() -> None:
    """A blip shorter than the confirm time never starts; a long enough run does."""
    assert run([0.9, 0.1, 0.9, 0.9, 0.9], confirm_s=2) == [("started", 5)]


def test_hold_time_bridges_short_pauses() -> None:
    """Gaps shorter than the hold time keep one episode; it stops once the hold time passes."""
    events = run([0.9, 0.2, 0.9, 0.2, 0.2, 0.2, 0.2], hold_s=3)
    assert events == [("started", 1), ("stopped", 6)]


def test_stop_event_carries_span_and_peak() -> None:
    """Without a window length the windows' ends are the sound's span; the peak is kept."""
    detector = SoundDetector("cry", DetectorConfig(0.5, hold_s=1))
    for t, p in enumerate([0.6, 0.95, 0.7, 0.1]):
        event = detector.update(float(t), p)
    assert event is not None
    assert (event.start, event.end, event.confidence, event.duration) == (0, 2, 0.95, 2)
    assert (event.first_window, event.last_window) == (0, 2)


def seven_second_cry(confirm_s: float = 3.0) -> list[SoundEvent]:
    """Return the events of a cry from 10 to 17 s, heard by 7-s windows every 0.25 s.

    Its first window above threshold ends 1.75 s after it began (models/lags.py: median 1.7 s),
    and windows stay above until the one that starts 1.75 s before its end (median 1.6 s), so
    windows ending at 11.75…22.25 s are above threshold.
    """
    detector = SoundDetector(
        "cry", DetectorConfig(0.5, confirm_s, hold_s=3.0, window_s=WINDOW_S)
    )
    times = np.arange(7.0, 40.0, 0.25)
    events = [
        detector.update(float(t), 0.95 if 11.75 <= t <= 22.25 else 0.1) for t in times
    ]
    return [e for e in events if e is not None]


def test_a_sound_lasts_its_own_length_not_its_windows() -> None:
    """A 7-s cry is reported as about 7 s, not the 10.5 s its windows span."""
    started, stopped = seven_second_cry()

    assert stopped.first_window == 11.75 and stopped.last_window == 22.25
    assert stopped.start == pytest.approx(11.75 - ONSET_FILL * WINDOW_S)
    assert stopped.end == pytest.approx(22.25 - (1 - OFFSET_FILL) * WINDOW_S)
    assert stopped.start == pytest.approx(10.0, abs=0.5)
    assert stopped.end == pytest.approx(17.0, abs=0.5)
    assert stopped.duration == pytest.approx(7.0, abs=0.5)
    assert started.start == stopped.start


def test_a_started_sound_counts_from_its_own_start_confirm_time_included() -> None:
    """Confirmed 3 s after its first window above, the cry has been going on for about 4 s."""
    started, _ = seven_second_cry(confirm_s=3.0)

    assert started.kind == "started" and started.end is None
    assert started.duration == pytest.approx(started.t - 10.0, abs=0.5)
    assert started.duration > 3.0


@pytest.mark.parametrize("confirm_s", [0.0, 3.0])
def test_the_window_length_does_not_move_when_a_change_is_decided(
    confirm_s: float,
) -> None:
    """On and off are decided at the same stream times with or without the window length."""
    probs = [0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]
    timed = []
    for window_s in (0.0, WINDOW_S):
        detector = SoundDetector(
            "cry", DetectorConfig(0.5, confirm_s, hold_s=3.0, window_s=window_s)
        )
        events = [detector.update(float(t), p) for t, p in enumerate(probs, start=7)]
        timed.append([(e.kind, e.t) for e in events if e is not None])
    assert timed[0] == timed[1] == [("started", 8 + confirm_s), ("stopped", 17)]


def test_a_sound_heard_by_one_window_ends_where_it_starts() -> None:
    """The estimate never ends before it starts, nor starts before the stream."""
    detector = SoundDetector("cry", DetectorConfig(0.5, hold_s=0, window_s=WINDOW_S))
    detector.update(7.0, 0.9)
    stopped = detector.update(7.5, 0.1)
    assert stopped is not None
    assert stopped.start == pytest.approx(7.0 - ONSET_FILL * WINDOW_S)
    assert stopped.end == stopped.start and stopped.duration == 0

    early = SoundDetector("cry", DetectorConfig(0.5, window_s=WINDOW_S))
    early.update(0.5, 0.9)
    closed = early.reset()
    assert closed is not None and closed.start == 0.0 and closed.end == 0.0


def test_reset_closes_an_open_episode() -> None:
    """Losing the source ends an episode that was on (and nothing when none was)."""
    detector = SoundDetector("cry", DetectorConfig(0.5))
    assert detector.reset() is None
    detector.update(1.0, 0.9)
    event = detector.reset()
    assert event is not None and event.kind == "stopped" and not detector.active


def test_episodes_of_a_recording_per_label_in_time_order() -> None:
    """A scan lists every episode of every label, closing one still on at the end."""
    times = np.arange(7, 15, dtype=np.float32)
    probs = np.array(
        [
            [0.9, 0.1],
            [0.9, 0.1],
            [0.1, 0.1],
            [0.1, 0.8],
            [0.1, 0.1],
            [0.1, 0.1],
            [0.1, 0.1],
            [0.9, 0.1],
        ],
        dtype=np.float32,
    )
    configs = {
        "cry": DetectorConfig(0.5, hold_s=1),
        "laughter": DetectorConfig(0.5, hold_s=1),
    }
    episodes = detect_episodes(times, probs, ("cry", "laughter"), configs)
    assert [(e.label, e.start, e.end) for e in episodes] == [
        ("cry", 7, 8),
        ("laughter", 10, 10),
        ("cry", 14, 14),
    ]


def test_episodes_of_a_recording_are_the_sounds_own_spans() -> None:
    """With the model's window length a scan reports the same estimate as a live stream."""
    times = np.arange(7.0, 40.0, 0.25, dtype=np.float32)
    probs = np.where((times >= 11.75) & (times <= 22.25), 0.95, 0.1).astype(np.float32)
    config = DetectorConfig(0.5, 3.0, hold_s=3.0, window_s=WINDOW_S)
    [episode] = detect_episodes(times, probs[:, None], ("cry",), {"cry": config})
    _, stopped = seven_second_cry()
    assert (episode.start, episode.end) == (stopped.start, stopped.end)


@pytest.mark.parametrize(
    "config",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"threshold": 0.5, "hold_s": -1},
        {"threshold": 0.5, "window_s": -7},
    ],
)
def test_impossible_settings_are_rejected(config: dict) -> None:
    """Thresholds outside (0, 1) or negative times raise."""
    with pytest.raises(ValueError):
        DetectorConfig(**config)
