"""Shared fixtures: the shipped model, real clips from ../shared/data, generated audio files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import shutil
import wave

import numpy as np
import pytest

from baby_monitor_engine.backends import ModelRuntime, load_runtime
from baby_monitor_engine.model import DEFAULT_MODEL, ModelMetadata, load_metadata
import custom_components.baby_monitor  # noqa: F401 - must be importable before HA loads integrations
from models.dataset import DEFAULT_DATA, Clip, read_manifest

DATA = DEFAULT_DATA


@pytest.fixture(scope="session")
def manifest() -> list[Clip]:
    """Rows of ../shared/data/manifest.csv."""
    return read_manifest(DATA)


@pytest.fixture(scope="session")
def validation_clip(manifest: list[Clip]) -> Callable[[str, str], Path]:
    """Path of the first fold-4 clip with a given label and source."""

    def find(label: str, source: str) -> Path:
        for clip in manifest:
            if clip.fold == 4 and clip.label == label and clip.source == source:
                return DATA / clip.path
        raise LookupError(f"no fold-4 {label} clip from {source}")

    return find


@pytest.fixture(scope="session")
def meta() -> ModelMetadata:
    """Metadata of the shipped model."""
    return load_metadata(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def numpy_runtime(meta: ModelMetadata) -> ModelRuntime:
    """Load the shipped model on the numpy executor."""
    return load_runtime(meta, "numpy")


@pytest.fixture(scope="session")
def litert_runtime(meta: ModelMetadata) -> ModelRuntime:
    """Load the shipped model on LiteRT."""
    return load_runtime(meta, "litert")


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """Make a writable copy of the shipped model's JSON with every file it names beside it."""
    for part in DEFAULT_MODEL.parent.iterdir():
        shutil.copy(part, tmp_path / part.name)
    return tmp_path / DEFAULT_MODEL.name


def write_wav(
    path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1
) -> Path:
    """Write float samples (frames x channels, or mono) as 16-bit PCM WAV."""
    data = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())
    return path
