"""The training data: manifest rows, decoded audio (cached) and the pools augmentation draws from."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import csv
from dataclasses import dataclass
import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.audio import decode_file
from baby_monitor_engine.pcm import float_to_pcm16, pcm16_to_float

__all__ = ["Clip", "load_audio", "read_manifest", "trim_silence"]

type Floats = npt.NDArray[np.float32]

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True, slots=True)
class Clip:
    """One manifest row."""

    path: str
    label: str
    source: str
    group: str
    fold: int
    orig_class: str
    duration_s: float


def read_manifest(data_dir: Path = DEFAULT_DATA) -> list[Clip]:
    """Rows of `manifest.csv`, in file order."""
    with (data_dir / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        return [
            Clip(
                path=row["path"],
                label=row["label"],
                source=row["source"],
                group=row["group"],
                fold=int(row["fold"]),
                orig_class=row["orig_class"],
                duration_s=float(row["duration_s"]),
            )
            for row in csv.DictReader(handle)
        ]


def load_audio(
    clips: list[Clip], data_dir: Path, cache_dir: Path | None
) -> list[Floats]:
    """Decode clips to 16 kHz float32 (cached as int16 .npy keyed by path) using two workers."""

    def one(clip: Clip) -> Floats:
        if cache_dir is None:
            return decode_file(data_dir / clip.path)
        key = hashlib.sha1(clip.path.encode()).hexdigest()[:16]
        cached = cache_dir / f"{key}.npy"
        if cached.exists():
            return pcm16_to_float(np.load(cached).astype("<i2").tobytes())
        audio = decode_file(data_dir / clip.path)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cached, float_to_pcm16(audio))
        return audio

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, clips))


def trim_silence(audio: Floats, floor_db: float = -50.0, frame: int = 400) -> Floats:
    """Drop leading and trailing frames quieter than `floor_db` below the clip's loudest frame."""
    n = audio.size // frame
    if n < 2:
        return audio
    energy = (audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (floor_db / 10))
    return audio[loud[0] * frame : (loud[-1] + 1) * frame]
