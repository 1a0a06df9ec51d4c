"""The pretrained backbone is rebuilt exactly, and our frontend feeds it what it was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baby_monitor_engine.audio import decode_file
from baby_monitor_engine.frontend import log_mel
from models.backbone import EMBEDDING, FRONTEND, MN04, build_trunk, load_weights
from models.dataset import DEFAULT_DATA

REFERENCE = MN04 / "reference.npz"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """One dev clip through the original PyTorch model (../shared/models/efficientat_mn04)."""
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


def test_rebuilt_trunk_gives_the_original_embedding_and_logits(
    reference: dict[str, np.ndarray],
) -> None:
    """On the original's own log-mel input, the Keras rebuild matches PyTorch's outputs."""
    frames = reference["log_mel"].shape[1]
    trunk = build_trunk(load_weights(), frames, logits=tuple(range(527)))
    embedding, logits = trunk(reference["log_mel"].T[None, :, :, None])
    assert np.asarray(embedding).shape == (1, EMBEDDING)
    np.testing.assert_allclose(
        np.asarray(embedding)[0], reference["features"], atol=1e-4
    )
    np.testing.assert_allclose(np.asarray(logits)[0], reference["logits"], atol=1e-3)


def test_our_frontend_at_16_khz_matches_efficientats_at_32_khz(
    reference: dict[str, np.ndarray],
) -> None:
    """The clip at 16 kHz gives the bands below 8 kHz the original computes after upsampling.

    Our frames are not centred: a frame ends 200 samples after the original's centre.
    """
    audio = decode_file(Path(DEFAULT_DATA) / str(reference["clip"]))
    ours = log_mel(np.concatenate((np.zeros(200, np.float32), audio)), FRONTEND).T
    theirs = reference["log_mel"]
    frames = min(ours.shape[1], theirs.shape[1])
    below_8k = slice(0, 100)  # Kaldi-mel bands 0-99 of 128 end below 8 kHz
    difference = np.abs(ours[below_8k, :frames] - theirs[below_8k, :frames])
    assert difference.mean() < 0.02
    assert np.percentile(difference, 99) < 0.15
