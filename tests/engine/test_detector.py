"""Threshold, confirm and hold: when a sound starts and stops."""

import numpy as np
import pytest

from custom_components.baby_monitor.engine.detector import (
    DetectorConfig,
    SoundDetector,
    detect_episodes,
)


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
    """The stop event reports the first and last windows above threshold and the peak."""
    detector = SoundDetector("cry", DetectorConfig(0.5, hold_s=1))
    for t, p in enumerate([0.6, 0.95, 0.7, 0.1]):
        event = detector.update(float(t), p)
    assert event is not None
    assert (event.start, event.end, event.confidence, event.duration) == (0, 2, 0.95, 2)


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


@pytest.mark.parametrize(
    "config", [{"threshold": 0.0}, {"threshold": 1.5}, {"threshold": 0.5, "hold_s": -1}]
)
def test_impossible_settings_are_rejected(config: dict) -> None:
    """Thresholds outside (0, 1) or negative times raise."""
    with pytest.raises(ValueError):
        DetectorConfig(**config)
