"""Window lags: how far into a 7-s window a sound must reach before the score crosses the threshold.

Each validation-fold cry and laugh (silence trimmed, at -35…-10 dBFS) is played between two
stretches of faint room noise and scanned every live hop. The onset lag is the first window
above threshold's end minus the sound's start (the sound fills that many seconds of the window's
end); the offset lag is the sound's end minus the last window above threshold's start (it fills
that many seconds of the window's beginning). The detector estimates a sound's span with them.

    python -m models.lags [--fold 4] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, replace
import math
from pathlib import Path
import sys

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.backends import ModelRuntime, load_runtime
from baby_monitor_engine.detector import (
    DEFAULT_CONFIRM_S,
    DEFAULT_HOLD_S,
    DetectorConfig,
    confirm_for,
    detect_episodes,
)
from baby_monitor_engine.model import DEFAULT_MODEL, load_metadata
from baby_monitor_engine.pcm import SAMPLE_RATE as RATE
from baby_monitor_engine.pipeline import DEFAULT_HOP_S
from baby_monitor_engine.windows import clip_windows

from .augment import coloured_noise, set_level
from .dataset import DEFAULT_DATA, load_audio, read_manifest, trim_silence

__all__ = ["Lags", "crossing_lags", "measure", "report"]

type Floats = npt.NDArray[np.float32]

PAD_S = 10.0
"""Room noise before and after each sound: longer than a window, so every window is clean."""
ROOM_DBFS = -65.0
LEVELS_DBFS = (-35.0, -20.0, -10.0)
SOUND_FLOOR_DB = -30.0
"""A sound's span: from its first to its last 25-ms frame within this of its loudest."""


@dataclass(frozen=True, slots=True)
class Lags:
    """Crossings of one played sound (s); NaN where no window crossed (or nothing was confirmed)."""

    label: str
    level: float
    seconds: float
    onset: float
    offset: float
    estimated: float  # duration the detector reports for it
    spanned: float  # what it reported before: first to last window above threshold


def crossing_lags(
    times: Floats,
    probs: Floats,
    threshold: float,
    span: tuple[float, float],
    window_s: float,
) -> tuple[float, float]:
    """(first window above's end − start, end − last window above's start), or NaNs."""
    above = np.flatnonzero(probs >= threshold)
    if not above.size:
        return math.nan, math.nan
    start, end = span
    return (
        float(times[above[0]]) - start,
        end - (float(times[above[-1]]) - window_s),
    )


def measure(
    runtime: ModelRuntime, data_dir: Path, fold: int, hop_s: float = DEFAULT_HOP_S
) -> list[Lags]:
    """Lags of every cry and laugh of `fold`, each at every level of LEVELS_DBFS."""
    meta = runtime.meta
    clips = [
        c for c in read_manifest(data_dir) if c.fold == fold and c.label in meta.labels
    ]
    audios = load_audio(clips, data_dir, None)
    rng = np.random.default_rng(0)
    pad = int(PAD_S * RATE)
    results: list[Lags] = []
    for clip, audio in zip(clips, audios, strict=True):
        sound = trim_silence(audio, SOUND_FLOOR_DB)
        column = meta.labels.index(clip.label)
        config = DetectorConfig(
            meta.thresholds[clip.label],
            confirm_for(clip.label, DEFAULT_CONFIRM_S),
            DEFAULT_HOLD_S,
            window_s=meta.window_s,
        )
        for level in LEVELS_DBFS:
            # any phase of the hop grid
            lead = pad + int(rng.integers(round(hop_s * RATE)))
            span = (lead / RATE, (lead + sound.size) / RATE)
            room = set_level(
                coloured_noise(lead + pad + sound.size, "pink", rng), ROOM_DBFS
            )
            room[lead : lead + sound.size] += set_level(sound, level)
            times, windows = clip_windows(room, meta.frontend, meta.window_s, hop_s)
            probs = runtime.predict_many(windows)
            onset, offset = crossing_lags(
                times, probs[:, column], config.threshold, span, meta.window_s
            )
            episodes = detect_episodes(times, probs, meta.labels, {clip.label: config})
            windows_only = replace(config, window_s=0.0)
            spans = detect_episodes(
                times, probs, meta.labels, {clip.label: windows_only}
            )
            results.append(
                Lags(
                    clip.label,
                    level,
                    span[1] - span[0],
                    onset,
                    offset,
                    sum(e.end - e.start for e in episodes) if episodes else math.nan,
                    sum(e.end - e.start for e in spans) if spans else math.nan,
                )
            )
    return results


def _summary(name: str, values: list[float], window_s: float) -> str:
    if not values:
        return f"  {name:<22} n=0"
    q = np.percentile(values, [10, 25, 50, 75, 90])
    return (
        f"  {name:<22} n={len(values):<4} median {q[2]:5.2f} s "
        f"({q[2] / window_s:4.0%} of a window)"
        f"  p25-p75 {q[1]:5.2f}…{q[3]:5.2f}  p10-p90 {q[0]:5.2f}…{q[4]:5.2f}"
    )


def report(results: list[Lags], window_s: float) -> Iterator[str]:
    """Lines per label: the lags (all levels, then each), sound lengths and duration errors."""
    for label in dict.fromkeys(r.label for r in results):
        mine = [r for r in results if r.label == label]
        heard = [r for r in mine if not math.isnan(r.onset)]
        yield f"{label}: {len(heard)} of {len(mine)} played sounds crossed the threshold"
        groups = [("", heard)] + [
            (f" {level:g} dBFS", [r for r in heard if r.level == level])
            for level in LEVELS_DBFS
        ]
        for suffix, group in groups:
            yield _summary(f"onset lag{suffix}", [r.onset for r in group], window_s)
            yield _summary(f"offset lag{suffix}", [r.offset for r in group], window_s)
        yield _summary("sound length", [r.seconds for r in heard], window_s)
        timed = [r for r in heard if not math.isnan(r.estimated)]
        yield _summary(
            "duration error", [r.estimated - r.seconds for r in timed], window_s
        )
        yield _summary(
            "error, windows' span", [r.spanned - r.seconds for r in timed], window_s
        )


def main(argv: list[str] | None = None) -> int:
    """Print the lags per label and the duration error with the detector's constants."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fold", type=int, default=4)
    args = parser.parse_args(argv)
    runtime = load_runtime(load_metadata(DEFAULT_MODEL), "auto")
    for line in report(measure(runtime, args.data, args.fold), runtime.meta.window_s):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
