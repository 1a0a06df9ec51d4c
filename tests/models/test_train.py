"""A tiny training run exports a model the engine loads, and that agrees with the trained one."""

from pathlib import Path

import numpy as np
import pytest

from custom_components.baby_monitor.engine.model import load_metadata
from custom_components.baby_monitor.engine.runtime import load_runtime
from models.metrics import recall_at_fpr, roc_auc, threshold_at_fpr
from models.train import build_model, multiply_adds, run


@pytest.mark.slow
def test_tiny_training_run_exports_a_working_model(tmp_path: Path) -> None:
    """Six clips per label, one epoch: a .tflite + JSON + card that every backend runs alike."""
    report = run(
        [
            "--limit", "6", "--examples", "192", "--epochs", "1", "--music-pieces", "2",
            "--out", str(tmp_path), "--name", "tiny", "--card", str(tmp_path / "CARD.md"),
        ]
    )  # fmt: skip
    meta = load_metadata(tmp_path / "tiny.json")
    assert meta.raw["metrics"]["export_max_abs_diff"] == report["export_max_abs_diff"]
    assert (
        report["export_max_abs_diff"] < 1e-4
    )  # TFLite in the engine == Keras on validation clips
    assert set(meta.thresholds) == {"cry", "laughter"}
    assert (tmp_path / "CARD.md").read_text().startswith("# Model card")
    window = np.random.default_rng(0).normal(
        size=(meta.window_frames, meta.frontend.n_mels)
    )
    outputs = [
        load_runtime(meta, backend).predict(window.astype(np.float32))
        for backend in ("numpy", "litert")
    ]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)

    # Re-evaluation (a new threshold policy without training again) reproduces the run's
    # figures from the exported file, and leaves the model itself alone.
    model_bytes = meta.model_path.read_bytes()
    (tmp_path / "CARD.md").unlink()
    again = run(
        [
            "--limit", "6", "--reevaluate",
            "--out", str(tmp_path), "--name", "tiny", "--card", str(tmp_path / "CARD.md"),
        ]
    )  # fmt: skip
    assert again["thresholds"] == report["thresholds"]
    assert again["labels"] == report["labels"]
    assert again["masking_0db"] == report["masking_0db"]
    assert load_metadata(tmp_path / "tiny.json").thresholds == meta.thresholds
    assert meta.model_path.read_bytes() == model_bytes
    assert (tmp_path / "CARD.md").read_text().startswith("# Model card")


def test_metrics_on_known_scores() -> None:
    """AUC counts ties as half; thresholds admit at most the asked false-positive rate."""
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.3, 0.2, 0.1, 0.85])
    assert roc_auc(labels, scores) == pytest.approx((4 + 3 + 2.5 + 0) / 12)
    assert threshold_at_fpr(labels, scores, 0.25) > 0.3  # one negative (0.85) may pass
    assert recall_at_fpr(labels, scores, 0.25) == pytest.approx(2 / 3)
    assert recall_at_fpr(labels, scores, 0.0) == pytest.approx(1 / 3)


@pytest.mark.parametrize("blocks", [((48, 2, 3), (96, 1, 3)), ((48, 2, 3), (64, 1, 5))])
def test_multiply_adds_count_every_layer_of_the_built_network(
    blocks: tuple[tuple[int, int, int], ...],
) -> None:
    """The model card's cost figure is the network's: each kernel weight once per output position."""
    model, _ = build_model(280, 64, 2, width=1.5, blocks=blocks)
    counted = 0
    for layer in model.layers:
        kernel = next((w for w in layer.weights if "kernel" in w.path), None)
        if kernel is None:
            continue
        positions = (
            np.prod(layer.output.shape[1:-1]) if len(layer.output.shape) == 4 else 1
        )
        counted += int(np.prod(kernel.shape)) * int(positions)
    assert multiply_adds(280, 64, 2, 1.5, blocks) == counted
