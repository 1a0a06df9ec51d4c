"""Window lags: read from the first and last windows above threshold of a sound of known span."""

import math

import numpy as np

from models.lags import crossing_lags


def test_lags_are_how_far_the_sound_reaches_into_the_crossing_windows() -> None:
    """Onset: first window above's end − start; offset: end − last window above's start."""
    times = np.arange(7.0, 30.0, 0.5, dtype=np.float32)
    probs = np.where((times >= 11.0) & (times <= 22.5), 0.95, 0.1).astype(np.float32)

    onset, offset = crossing_lags(times, probs, 0.9, (10.0, 17.0), 7.0)

    assert (onset, offset) == (1.0, 1.5)


def test_a_sound_never_above_threshold_has_no_lags() -> None:
    """No window crossed: both lags are unknown."""
    times = np.arange(7.0, 20.0, 0.5, dtype=np.float32)
    onset, offset = crossing_lags(times, np.zeros_like(times), 0.9, (10.0, 12.0), 7.0)
    assert math.isnan(onset) and math.isnan(offset)
