"""Grouped cross-validation harness: splits, the logistic head, OOF scores, reports, YAMNet framing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from models import crossval
from models.crossval import (
    EMBEDDING_TENSOR,
    HOP,
    PATCH,
    PatchSet,
    class_scores,
    clip_weights,
    cv_report,
    dev_splits,
    frame_patches,
    logistic,
    loso_report,
    out_of_fold,
    render_markdown,
    source_splits,
    yamnet_patchsets,
)
from models.dataset import Clip

type Array = npt.NDArray[Any]


def clip(
    i: int,
    label: str = "other",
    fold: int = 1,
    source: str = "esc50",
    group: str | None = None,
    orig_class: str | None = None,
) -> Clip:
    """Make a manifest row; each clip is its own group unless told."""
    return Clip(
        path=f"{source}/{label}/{i}.flac",
        label=label,
        source=source,
        group=group or f"g{i}",
        fold=fold,
        orig_class=orig_class or label,
        duration_s=5.0,
    )


def synthetic(
    n_clips: int = 200, dim: int = 8, seed: int = 0
) -> tuple[list[Clip], PatchSet]:
    """Clips in four folds; a cry clip has one patch shifted along feature 0, a laugh along 1."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["other", "cry", "laughter"], n_clips, p=[0.7, 0.2, 0.1])
    clips = [
        clip(i, str(label), fold=1 + i % 4, source="donateacry" if i % 3 else "esc50")
        for i, label in enumerate(labels)
    ]
    counts = rng.integers(1, 6, n_clips)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    features = rng.normal(size=(offsets[-1], dim)).astype(np.float32)
    for i, label in enumerate(labels):
        if label != "other":
            row = offsets[i] + rng.integers(counts[i])
            features[row, 0 if label == "cry" else 1] += 4.0
    return clips, PatchSet(tuple(c.path for c in clips), offsets, features)


def test_patchset_round_trips_and_slices_clips(tmp_path: Path) -> None:
    """save/load keep paths, offsets and features; clip(i) is clip i's rows."""
    _, patchset = synthetic(20)
    patchset.save(tmp_path / "sub" / "p.npz")
    loaded = PatchSet.load(tmp_path / "sub" / "p.npz")
    assert loaded.paths == patchset.paths
    np.testing.assert_array_equal(loaded.offsets, patchset.offsets)
    np.testing.assert_array_equal(loaded.features, patchset.features)
    np.testing.assert_array_equal(
        loaded.clip(3), patchset.features[patchset.offsets[3] : patchset.offsets[4]]
    )
    assert loaded.owner[patchset.offsets[3]] == 3


@pytest.mark.parametrize("offsets", [[0, 2], [0, 2, 2, 4], [1, 2, 3, 4], [0, 1, 2, 3]])
def test_patchset_rejects_offsets_that_do_not_partition(offsets: list[int]) -> None:
    """Wrong count, an empty clip, not starting at 0, not ending at the last row."""
    with pytest.raises(ValueError):
        PatchSet(("a", "b", "c"), np.array(offsets), np.zeros((4, 2), np.float32))


def test_dev_splits_hold_out_each_fold_once_and_skip_other_folds() -> None:
    """Test sets are the folds; a fold-0 (held-out test) clip is in no split."""
    clips = [clip(i, fold=i % 5) for i in range(20)]
    splits = dev_splits(clips)
    assert [s.name for s in splits] == ["fold 1", "fold 2", "fold 3", "fold 4"]
    held = np.sort(np.concatenate([s.test for s in splits]))
    np.testing.assert_array_equal(held, [i for i in range(20) if i % 5])
    for k, split in enumerate(splits, 1):
        assert {clips[i].fold for i in split.train} == {1, 2, 3, 4} - {k}


def test_dev_splits_refuse_a_group_in_two_folds() -> None:
    """Near-duplicate takes of one recording on both sides of a split would leak."""
    clips = [clip(0, fold=1, group="take"), clip(1, fold=2, group="take")]
    with pytest.raises(ValueError, match="take"):
        dev_splits(clips)


def test_source_splits_hold_out_each_present_positive_source() -> None:
    """Sources without positives (or absent) get no split; train is everything else."""
    clips = [
        clip(0, "cry", source="donateacry"),
        clip(1, source="esc50"),
        clip(2, source="deeply_korean_read"),
    ]
    splits = source_splits(clips)
    assert [(s.name, s.test.tolist(), s.train.tolist()) for s in splits] == [
        ("donateacry", [0], [1, 2]),
        ("esc50", [1], [0, 2]),
    ]


def _objective_gradient(z: Array, y: Array, w: Array, c: float, theta: Array) -> Array:
    """Gradient of Σ w·logloss + |coef|²/2C in standardised space, written out independently."""
    p = 1 / (1 + np.exp(-(z @ theta[:-1] + theta[-1])))
    return np.append(z.T @ (w * (p - y)) + theta[:-1] / c, (w * (p - y)).sum())


def test_logistic_reaches_the_optimum() -> None:
    """The fitted model's gradient (recovered from its predictions) is ~0."""
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(500, 5)) * [1, 10, 0.1, 1, 3] + 7).astype(np.float32)
    y = (x[:, 0] - 7 + rng.normal(size=500) > 0.5).astype(bool)
    w = rng.uniform(0.5, 2, 500).astype(np.float32)
    c = 0.5
    predict = logistic(c, tol=1e-9)(x, y, w)
    z = (x - x.mean(0)) / x.std(0)
    # logit is affine in z: recover its coefficients by least squares
    p = predict(x).astype(np.float64)
    logit = np.log(p / (1 - p))
    theta = np.linalg.lstsq(np.c_[z, np.ones(500)], logit, rcond=None)[0]
    grad = _objective_gradient(z, y, w / w.mean(), c, theta)
    assert np.abs(grad).max() < 1e-3


def test_logistic_handles_a_constant_feature_and_weights() -> None:
    """A zero-variance column is harmless; heavier positives raise their probabilities."""
    rng = np.random.default_rng(2)
    x = np.c_[rng.normal(size=(400, 3)), np.ones(400)].astype(np.float32)
    y = x[:, 0] + rng.normal(size=400) > 1.0
    even = logistic(1.0)(x, y, np.ones(400, np.float32))(x)
    heavy = logistic(1.0)(x, y, np.where(y, 10.0, 1.0).astype(np.float32))(x)
    assert np.all(np.isfinite(even))
    assert heavy.mean() > even.mean()
    assert _auc(y, even) > 0.8


def _auc(y: Array, s: Array) -> float:
    return float((s[y][:, None] > s[~y][None, :]).mean())


def test_clip_weights_multiply_by_class_and_balance_positives() -> None:
    """orig_class beats label; positives end with the negatives' total weight."""
    clips = [
        clip(0, "cry"),
        clip(1, "laughter", orig_class="laughing"),
        clip(2),
        clip(3),
    ]
    w = clip_weights(clips, "cry", {"laughing": 3.0, "other": 0.5}, balance=False)
    np.testing.assert_array_equal(w, [1.0, 3.0, 0.5, 0.5])
    np.testing.assert_array_equal(
        clip_weights(clips, "cry", {"laughing": 3.0}), [5.0, 3.0, 1.0, 1.0]
    )


def test_out_of_fold_never_scores_a_clip_with_a_model_that_saw_it() -> None:
    """A spy head that remembers the clips it trained on scores those 1, others 0."""
    clips, patchset = synthetic(60)
    # feature 0 = the owning clip's index, so the spy knows which clips it saw
    marked = PatchSet(
        patchset.paths,
        patchset.offsets,
        patchset.owner[:, None].astype(np.float32),
    )
    fits = []

    def spy(x: Array, y: Array, w: Array) -> crossval.Predict:
        seen = set(x[:, 0].astype(int).tolist())
        fits.append(seen)
        return lambda f: np.isin(f[:, 0].astype(int), list(seen)).astype(np.float32)

    scores = out_of_fold(marked, clips, spy, dev_splits(clips))
    assert len(fits) == 8  # 4 folds x 2 labels
    for label in ("cry", "laughter"):
        np.testing.assert_array_equal(scores[label], 0.0)


def test_out_of_fold_scores_are_the_max_over_a_clips_patches() -> None:
    """A head that returns feature 0 gives each clip its largest feature-0 value."""
    clips, patchset = synthetic(40)
    expected = np.array(
        [patchset.clip(i)[:, 0].max() for i in range(len(clips))], np.float32
    )
    scores = out_of_fold(
        patchset,
        clips,
        lambda x, y, w: lambda f: f[:, 0],
        dev_splits(clips),
        labels=("cry",),
    )
    np.testing.assert_array_equal(scores["cry"], expected)


def test_out_of_fold_leaves_unsplit_clips_unscored_and_checks_order() -> None:
    """LOSO scores only the held-out sources; a shuffled patch set is refused."""
    clips, patchset = synthetic(40)
    scores = out_of_fold(
        patchset, clips, logistic(), source_splits(clips, ["esc50"]), ("cry",)
    )
    esc = np.array([c.source == "esc50" for c in clips])
    assert np.all(np.isfinite(scores["cry"][esc]))
    assert np.all(np.isnan(scores["cry"][~esc]))
    with pytest.raises(ValueError, match="order"):
        out_of_fold(patchset, clips[::-1], logistic(), dev_splits(clips))


def test_logistic_heads_learn_the_synthetic_signal() -> None:
    """Multi-instance training + max pooling finds the one shifted patch per positive clip."""
    clips, patchset = synthetic(400)
    scores = out_of_fold(patchset, clips, logistic(1.0), dev_splits(clips))
    report = cv_report(clips, scores)
    assert report["cry"]["auc"] > 0.95
    assert report["laughter"]["auc"] > 0.95


def test_class_scores_take_the_max_over_patches_and_columns() -> None:
    """Frigate's score of a label is its best class in its best patch."""
    features = np.array([[0.1, 0.2, 0.0], [0.5, 0.1, 0.9], [0.3, 0.0, 0.0]], np.float32)
    patchset = PatchSet(("a", "b"), np.array([0, 2, 3]), features)
    scores = class_scores(patchset, {"cry": (0, 1), "laughter": (2,)})
    np.testing.assert_allclose(scores["cry"], [0.5, 0.3])
    np.testing.assert_allclose(scores["laughter"], [0.9, 0.0])


def report_fixture() -> tuple[list[Clip], dict[str, Array]]:
    """100 negatives scoring 0..0.99 (one laughing, one singing), 10 cries, 5 laughs."""
    clips = [
        clip(
            i,
            fold=1 + i % 4,
            orig_class="laughing"
            if i == 99
            else "parent_singing"
            if i == 50
            else "dog",
        )
        for i in range(100)
    ]
    clips += [
        clip(100 + i, "cry", fold=1 + i % 4, source="donateacry") for i in range(10)
    ]
    clips += [clip(110 + i, "laughter", fold=1 + i % 4) for i in range(5)]
    cry = np.concatenate(
        [np.arange(100) / 100, np.linspace(0.995, 0.5, 10), [0.999, 0, 0, 0, 0]]
    )
    laughter = np.concatenate([np.zeros(110), [0.9] * 5])
    return clips, {
        "cry": cry.astype(np.float32),
        "laughter": laughter.astype(np.float32),
    }


def test_label_report_figures() -> None:
    """Threshold just above the 2nd-highest negative at 1 % FPR; the rest follows from it."""
    clips, scores = report_fixture()
    report = cv_report(clips, scores)
    json.dumps(report, allow_nan=False)
    cry = report["cry"]
    # negatives: 100 'other' (0..0.99) + 5 laughs (one at 0.999, four at 0): 105, 1 allowed
    assert (cry["n_pos"], cry["n_neg"]) == (10, 105)
    assert 0.99 < cry["threshold"] <= 0.9901
    assert cry["recall"] == pytest.approx(0.1)
    assert cry["others_over_threshold"]["laughter"] == {
        "n": 5,
        "over": 1,
        "fraction": 0.2,
    }
    assert [f["fold"] for f in cry["per_fold"]] == [1, 2, 3, 4]
    assert cry["auc_spread"]["min"] <= cry["auc"] <= cry["auc_spread"]["max"]
    classes = {r["name"]: r for r in cry["fpr_by_class"]}
    assert set(classes) == {"laughter", "laughing", "parent_singing"}
    assert classes["laughter"]["fp"] == 1 and classes["parent_singing"]["fp"] == 0
    assert cry["fpr_by_source"] == [
        {"name": "esc50", "n": 105, "fp": 1, "fpr": 1 / 105}
    ]
    assert len(cry["loudest_negatives"]) == 20
    assert cry["loudest_negatives"][0]["score"] == pytest.approx(0.999)
    assert cry["weakest_positives"][0]["score"] == pytest.approx(0.5)
    assert report["laughter"]["auc"] == 1.0


def test_loso_report_and_markdown() -> None:
    """Per held-out source: AUC only where both classes exist; markdown holds every table."""
    clips, scores = report_fixture()
    splits = source_splits(clips)
    loso = loso_report(clips, scores, splits)
    json.dumps(loso, allow_nan=False)
    sources = {r["source"]: r for r in loso["cry"]["sources"]}
    assert sources["donateacry"]["auc"] is None
    assert sources["donateacry"]["recall"] == pytest.approx(0.1)
    assert sources["esc50"]["recall"] is None
    assert loso_report(clips, scores, splits, {"cry": 0.0, "laughter": 0.0})["cry"][
        "recall"
    ] == pytest.approx(1.0)
    text = render_markdown({"m": {"cv": cv_report(clips, scores), "loso": loso}})
    assert "| m | cry |" in text
    assert "Leave one source out" in text
    assert "### m: laughter" in text
    assert "esc50/other/99.flac" in text


@pytest.mark.parametrize(
    ("samples", "patches"),
    [(100, 1), (PATCH, 1), (PATCH + 1, 2), (PATCH + HOP, 2), (PATCH + HOP + 1, 3)],
)
def test_frame_patches_cover_the_clip(samples: int, patches: int) -> None:
    """0.975-s patches every 0.48 s, the last one zero-padded; a short clip gets one."""
    audio = np.arange(1, samples + 1, dtype=np.float32)
    framed = frame_patches(audio)
    assert framed.shape == (patches, PATCH)
    assert framed[-1, 0] == (patches - 1) * HOP + 1
    assert framed.max() == samples
    assert np.count_nonzero(framed[-1]) == samples - (patches - 1) * HOP


def test_yamnet_patchsets_are_computed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second call reads the cache; patches per clip follow the framing."""
    (tmp_path / "manifest.csv").write_text("path\n", encoding="utf-8")
    clips = [clip(0), clip(1)]
    lengths = {clips[0].path: 100, clips[1].path: PATCH + HOP}
    calls: list[dict[str, Any]] = []

    class Interpreter:
        """LiteRT's interpreter as YAMNet: scores echo the patch's first sample."""

        def __init__(self, **kwargs: Any) -> None:
            calls.append(kwargs)
            self.tensors: dict[int, Array] = {}

        def allocate_tensors(self) -> None:
            pass

        def get_input_details(self) -> list[dict[str, Any]]:
            return [{"index": 0}]

        def get_output_details(self) -> list[dict[str, Any]]:
            return [{"index": 1}]

        def get_tensor_details(self) -> list[dict[str, Any]]:
            return [
                {"name": "other", "index": 3},
                {"name": EMBEDDING_TENSOR, "index": 2},
            ]

        def set_tensor(self, index: int, value: Array) -> None:
            assert index == 0
            assert value.shape == (1, PATCH)
            self.tensors[1] = np.full((1, 521), value[0, 0], np.float32)
            self.tensors[2] = np.ones((1, 1024), np.float32)

        def invoke(self) -> None:
            pass

        def get_tensor(self, index: int) -> Array:
            return self.tensors[index]

    def audio(batch: list[Clip], data_dir: Path, cache: Path | None) -> list[Array]:
        return [np.ones(lengths[c.path], np.float32) for c in batch]

    monkeypatch.setattr("ai_edge_litert.interpreter.Interpreter", Interpreter)
    monkeypatch.setattr(crossval, "load_audio", audio)
    model = tmp_path / "yamnet.tflite"
    scores, embeddings = yamnet_patchsets(
        clips, tmp_path, tmp_path / "cache", model=model
    )
    again, _ = yamnet_patchsets(clips, tmp_path, tmp_path / "cache", model=model)
    assert calls == [
        {
            "model_path": str(model),
            "num_threads": 1,
            "experimental_preserve_all_tensors": True,
        }
    ]
    np.testing.assert_array_equal(scores.offsets, [0, 1, 3])
    assert embeddings.features.shape == (3, 1024)
    np.testing.assert_array_equal(again.features, scores.features)
