"""Model files are checked against their metadata before anything runs."""

import json
from pathlib import Path

import numpy as np
import pytest

from baby_monitor_engine.backends import load_runtime
from baby_monitor_engine.model import (
    ModelError,
    ModelMetadata,
    load_metadata,
    spread_scores,
)


def test_shipped_model_metadata_is_consistent(meta: ModelMetadata) -> None:
    """The shipped model is a backbone and a head, 5 MB at most, labelled cry/laughter."""
    assert meta.labels == ("cry", "laughter")
    assert meta.backbone is not None
    assert meta.input_shape == (1, meta.patches, meta.backbone.features)
    # six 2-s patches a second apart fill the 7-s window
    assert meta.patches == 6
    assert meta.window_s == 7.0 and meta.sample_rate == 16000
    size = meta.model_path.stat().st_size + meta.backbone.model_path.stat().st_size
    assert size <= 5_000_000
    assert all(0 < t < 1 for t in meta.thresholds.values())
    assert len(meta.read_model()) == meta.model_path.stat().st_size
    assert len(meta.backbone.read_model()) == meta.backbone.model_path.stat().st_size
    # the backbone's licence travels with its weights
    assert (meta.model_path.parent / "LICENSE-EfficientAT.txt").is_file()


def test_truncated_model_file_is_named_as_not_matching(model_copy: Path) -> None:
    """A truncated .tflite fails the hash check, and the message says so."""
    tflite = model_copy.with_suffix(".tflite")
    tflite.write_bytes(tflite.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"does not match its metadata: sha256"):
        load_metadata(model_copy).read_model()


@pytest.mark.parametrize("backend", ["numpy", "litert"])
def test_corrupt_model_with_matching_hash_is_reported_by_the_runtime(
    model_copy: Path, backend: str
) -> None:
    """Garbage that matches its (rewritten) hash still fails to load, with the backend named."""
    import hashlib

    tflite = model_copy.with_suffix(".tflite")
    garbage = b"\x00\x01not a flatbuffer" * 10
    tflite.write_bytes(garbage)
    data = json.loads(model_copy.read_text())
    data["sha256"] = hashlib.sha256(garbage).hexdigest()
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=f"cannot load model .* with {backend}"):
        load_runtime(load_metadata(model_copy), backend)  # type: ignore[arg-type]


def test_input_shape_that_does_not_fit_the_frontend(model_copy: Path) -> None:
    """Metadata whose input shape disagrees with its frontend names both."""
    data = json.loads(model_copy.read_text())
    data["input"]["shape"] = [1, 5, 398]
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"input shape \[1, 5, 398\] does not match"):
        load_metadata(model_copy)


def test_metadata_that_disagrees_with_the_model_file(model_copy: Path) -> None:
    """A frontend changed in the JSON (now 32 mels) no longer fits the backbone's real input."""
    data = json.loads(model_copy.read_text())
    data["frontend"]["n_mels"] = 32
    model_copy.write_text(json.dumps(data))
    with pytest.raises(
        ModelError,
        match=r"baby_monitor_backbone.tflite takes input .* but its metadata says",
    ):
        load_runtime(load_metadata(model_copy), "numpy")


def test_backbone_whose_rows_do_not_fit_the_head(model_copy: Path) -> None:
    """Metadata promising rows of another width than the backbone gives is named."""
    data = json.loads(model_copy.read_text())
    data["backbone"]["features"] = 100
    data["backbone"]["embedding"] = 64
    data["input"]["shape"] = [1, 6, 100]
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="takes input|gives 398 features"):
        load_runtime(load_metadata(model_copy), "numpy")


@pytest.mark.parametrize("embedding", [0, 399, True, "384"])
def test_embedding_columns_outside_the_row(model_copy: Path, embedding: object) -> None:
    """The embedding a room's learning compares patches on must be part of the row."""
    data = json.loads(model_copy.read_text())
    data["backbone"]["embedding"] = embedding
    model_copy.write_text(json.dumps(data))
    with pytest.raises(
        ModelError, match=r"backbone embedding must be 1\.\.398 columns"
    ):
        load_metadata(model_copy)


def test_corrupt_backbone_is_named(model_copy: Path) -> None:
    """A backbone file that does not match its hash names the backbone file."""
    backbone = model_copy.with_name("baby_monitor_backbone.tflite")
    backbone.write_bytes(backbone.read_bytes()[:5000])
    with pytest.raises(
        ModelError, match=r"baby_monitor_backbone.tflite does not match"
    ):
        load_runtime(load_metadata(model_copy), "numpy")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"file": "../elsewhere.tflite"}, "backbone file must sit beside it"),
        ({"patch_s": 9.0}, "patch_hop_s <= patch_s <= window_s"),
        ({"patch_hop_s": 0}, "patch_hop_s <= patch_s <= window_s"),
        ({"features": "many"}, "'features' has the wrong type"),
    ],
)
def test_inconsistent_backbone_fields(
    model_copy: Path, change: dict, message: str
) -> None:
    """Each backbone field that cannot work is named."""
    data = json.loads(model_copy.read_text())
    data["backbone"].update(change)
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        load_metadata(model_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "has no 'labels'"),
    ],
)
def test_unreadable_metadata(model_copy: Path, content: str, message: str) -> None:
    """Broken metadata JSON is reported with what is wrong."""
    model_copy.write_text(content)
    with pytest.raises(ModelError, match=message):
        load_metadata(model_copy)


def test_missing_model(tmp_path: Path) -> None:
    """A model path that does not exist is named."""
    with pytest.raises(ModelError, match="cannot read model metadata"):
        load_metadata(tmp_path / "nothing.json")


def test_unknown_backend(meta: ModelMetadata) -> None:
    """Asking for a backend that does not exist lists the real ones."""
    with pytest.raises(ModelError, match="choose one of litert, tflite, numpy"):
        load_runtime(meta, "onnx")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": "cry"}, "'labels' has the wrong type"),
        ({"frontend": {"hop_length": 5000}}, "bad 'frontend'"),
        ({"sample_rate": 8000}, "sample_rate 8000 differs from the frontend's 16000"),
        ({"thresholds": {"cry": 0.5}}, "no threshold for laughter"),
    ],
)
def test_inconsistent_metadata_fields(
    model_copy: Path, change: dict, message: str
) -> None:
    """Each field that contradicts the rest of the metadata is named."""
    data = json.loads(model_copy.read_text())
    data.update(change)
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        load_metadata(model_copy)


def test_missing_model_file_beside_its_metadata(model_copy: Path) -> None:
    """Metadata whose .tflite is gone says it cannot read the model file."""
    model_copy.with_suffix(".tflite").unlink()
    with pytest.raises(ModelError, match="cannot read model file"):
        load_metadata(model_copy).read_model()


def test_spread_keeps_order_and_ends_and_spreads_the_top() -> None:
    """1 - (1 - p)^(1/3): 0 and 1 stay, order stays, 0.99 comes down to about 0.78."""
    p = np.array([0.0, 0.01, 0.5, 0.97, 0.99, 0.999, 1.0])
    spread = spread_scores(p, 3.0)
    assert spread[0] == 0.0 and spread[-1] == 1.0
    assert (np.diff(spread) > 0).all()
    assert spread[4] == pytest.approx(1 - 0.01 ** (1 / 3), rel=1e-5)
    np.testing.assert_allclose(spread_scores(p, 1.0), p, rtol=1e-6)


def test_scores_are_reported_on_the_metadatas_spread(
    model_copy: Path, meta: ModelMetadata
) -> None:
    """The same window scored with spread 1 and with the shipped spread differ by the map."""
    data = json.loads(model_copy.read_text())
    data["output"]["spread"] = 1.0
    model_copy.write_text(json.dumps(data))
    raw = load_runtime(load_metadata(model_copy), "numpy")
    shipped = load_runtime(meta, "numpy")
    window = (
        np.random.default_rng(0)
        .normal(-1.0, 0.3, (meta.window_frames, meta.frontend.n_mels))
        .astype(np.float32)
    )
    np.testing.assert_allclose(
        shipped.predict(window),
        spread_scores(raw.predict(window), meta.spread),
        atol=1e-6,
    )


@pytest.mark.parametrize("spread", [0, -2, "wide", True])
def test_impossible_spread_is_named(model_copy: Path, spread: object) -> None:
    """An output spread that is not a positive number is refused with its name."""
    data = json.loads(model_copy.read_text())
    data["output"]["spread"] = spread
    model_copy.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="output spread must be a number > 0"):
        load_metadata(model_copy)
