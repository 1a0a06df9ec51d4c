"""Grouped cross-validation of per-patch heads, and the YAMNet baselines they must beat.

DESIGN §5: accuracy is the pooled out-of-fold score of grouped 4-fold CV (plus leave-one-source-
out), never one fold, and the spread over folds is reported beside it. A head sees a clip as a
bag of patch feature vectors (a `PatchSet`): every patch carries its clip's label when training,
and a clip scores the max of its patches' probabilities (multi-instance, as the engine scores).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
import hashlib
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.model import LABELS

from .dataset import DEFAULT_DATA, Clip, load_audio, read_manifest
from .metrics import recall_at_fpr, roc_auc, threshold_at_fpr
from .teacher import YAMNET, YAMNET_CLASSES

__all__ = [
    "PatchSet",
    "Split",
    "class_scores",
    "clip_weights",
    "cv_report",
    "dev_splits",
    "frame_patches",
    "label_report",
    "logistic",
    "loso_report",
    "main",
    "out_of_fold",
    "probe_out_of_fold",
    "render_markdown",
    "source_splits",
    "yamnet_patchsets",
]

type Floats = npt.NDArray[np.float32]
type Ints = npt.NDArray[np.int64]
type Bools = npt.NDArray[np.bool_]
type Predict = Callable[[Floats], Floats]
"""Per-patch probability of the positive class."""
type Fit = Callable[[Floats, Bools, Floats], Predict]
"""Train on (patch features, patch labels, patch weights); return the predictor."""

DEV_FOLDS = (1, 2, 3, 4)
POSITIVE_SOURCES = (
    "donateacry",
    "esc50",
    "giulbia_babycry",
    "deeply_nonverbal",
    "laugh_lsn",
)
# Negatives a head most easily confuses with infant voice (DESIGN §7): always shown by class.
CLASSES_OF_INTEREST = (
    "laughing",
    "screaming",
    "crying_noninfant",
    "child_other_utterance",
    "parent_singing",
    "parent_reading",
    "parent_other_utterance",
)
FPR = 0.01
STRICT_FPR = 0.001
LIST_LENGTH = 20
PATCH = 15600  # 0.975 s at 16 kHz: what YAMNet (and Frigate) takes per inference
HOP = 7680  # 0.48 s
EMBEDDING_TENSOR = "yamnet_frames/global_average_pooling2d/Mean"
PROBE_GRID = (0.001, 0.01, 0.1, 1.0)
ROOT = Path(__file__).resolve().parent.parent


# --- patch feature sets -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class PatchSet:
    """Patch features of clips: clip i owns rows `features[offsets[i]:offsets[i + 1]]`."""

    paths: tuple[str, ...]
    offsets: Ints
    features: Floats

    def __post_init__(self) -> None:
        """Reject offsets that do not partition the rows into non-empty clips."""
        offsets = self.offsets
        if offsets.ndim != 1 or offsets.size != len(self.paths) + 1:
            raise ValueError(f"{offsets.size} offsets for {len(self.paths)} clips")
        if offsets[0] != 0 or offsets[-1] != self.features.shape[0]:
            raise ValueError("offsets must run from 0 to the number of patches")
        if np.any(np.diff(offsets) < 1):
            raise ValueError("every clip needs at least one patch")

    @property
    def owner(self) -> Ints:
        """Clip index of each patch row."""
        return np.repeat(np.arange(len(self.paths)), np.diff(self.offsets))

    def clip(self, i: int) -> Floats:
        """Patch rows of clip i."""
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def save(self, path: Path) -> None:
        """Write as .npz (no pickles: paths are a unicode array)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez(
                handle,
                paths=np.array(self.paths, dtype=str),
                offsets=self.offsets,
                features=self.features,
            )

    @classmethod
    def load(cls, path: Path) -> PatchSet:
        """Read what `save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                paths=tuple(str(p) for p in data["paths"]),
                offsets=np.asarray(data["offsets"], np.int64),
                features=np.asarray(data["features"], np.float32),
            )


def clip_max(patchset: PatchSet, patch_scores: npt.ArrayLike) -> Floats:
    """Per-clip max of per-patch scores (the multi-instance clip score)."""
    scores = np.asarray(patch_scores, np.float32)
    return np.maximum.reduceat(scores, patchset.offsets[:-1], axis=0)


# --- splits -------------------------------------------------------------------------------------


class Split(NamedTuple):
    """Clip indices to train on and to score; `name` says which fold or source is held out."""

    name: str
    train: Ints
    test: Ints


def dev_splits(clips: Sequence[Clip]) -> list[Split]:
    """Split grouped 4-fold CV over dev folds 1–4; raise if a recording group spans two folds."""
    folds: dict[str, set[int]] = {}
    for clip in clips:
        folds.setdefault(clip.group, set()).add(clip.fold)
    leaking = sorted(g for g, f in folds.items() if len(f & set(DEV_FOLDS)) > 1)
    if leaking:
        raise ValueError(f"recording groups span folds: {', '.join(leaking[:10])}")
    fold = np.array([clip.fold for clip in clips])
    return [
        Split(
            f"fold {k}",
            np.flatnonzero(np.isin(fold, DEV_FOLDS) & (fold != k)),
            np.flatnonzero(fold == k),
        )
        for k in DEV_FOLDS
    ]


def source_splits(
    clips: Sequence[Clip], sources: Iterable[str] = POSITIVE_SOURCES
) -> list[Split]:
    """Leave one source out, to see whether a head finds cries in audio from an unheard site."""
    source = np.array([clip.source for clip in clips])
    return [
        Split(s, np.flatnonzero(source != s), np.flatnonzero(source == s))
        for s in sources
        if np.any(source == s)
    ]


# --- logistic regression ------------------------------------------------------------------------


def logistic(c: float = 0.01, max_iter: int = 500, tol: float = 1e-5) -> Fit:
    """L2 logistic regression (sklearn's C, sum of weighted losses), fitted by L-BFGS.

    Features are standardised with the training rows' mean and std, folded back into the
    coefficients so prediction needs no copy. L-BFGS, not Newton: a 1024-d Hessian costs
    n·D² per step, a gradient n·D.
    """

    def fit(x: Floats, y: Bools, w: Floats) -> Predict:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std < 1e-8] = 1.0
        z = ((x - mean) / std).astype(np.float32)
        weights = np.asarray(w, np.float64)
        weights = weights * (weights.size / weights.sum())
        theta = _lbfgs(
            _logistic_loss(z, np.asarray(y, np.float64), weights, c),
            np.zeros(x.shape[1] + 1),
            max_iter,
            tol,
        )
        coef = theta[:-1] / std
        coef32 = coef.astype(np.float32)
        bias = float(theta[-1] - mean @ coef)

        def predict(features: Floats) -> Floats:
            return _sigmoid(features @ coef32 + np.float32(bias))

        return predict

    return fit


def _sigmoid[T: np.floating[Any]](m: npt.NDArray[T]) -> npt.NDArray[T]:
    out: npt.NDArray[T] = np.exp(-np.logaddexp(0, -m))
    return out


def _logistic_loss(
    z: Floats, y: npt.NDArray[np.float64], w: npt.NDArray[np.float64], c: float
) -> Callable[[npt.NDArray[np.float64]], tuple[float, npt.NDArray[np.float64]]]:
    """Objective and gradient, divided by n so tolerances do not depend on the data size."""
    n = z.shape[0]
    ridge = 1.0 / (c * n)

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coef, bias = theta[:-1], theta[-1]
        m = (z @ coef.astype(np.float32)).astype(np.float64) + bias
        value = float(w @ (np.logaddexp(0, m) - y * m)) / n + 0.5 * ridge * float(
            coef @ coef
        )
        residual = w * (_sigmoid(m) - y) / n
        grad = np.empty_like(theta)
        grad[:-1] = (residual.astype(np.float32) @ z).astype(np.float64) + ridge * coef
        grad[-1] = residual.sum()
        return value, grad

    return loss


def _lbfgs(
    objective: Callable[
        [npt.NDArray[np.float64]], tuple[float, npt.NDArray[np.float64]]
    ],
    theta: npt.NDArray[np.float64],
    max_iter: int,
    tol: float,
    memory: int = 10,
) -> npt.NDArray[np.float64]:
    """Minimise a smooth convex function: L-BFGS two-loop direction, Armijo backtracking."""
    value, grad = objective(theta)
    steps: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]] = []
    for _ in range(max_iter):
        if np.abs(grad).max() < tol:
            break
        direction = -grad
        alphas = []
        for s, g, rho in reversed(steps):
            alpha = rho * (s @ direction)
            direction -= alpha * g
            alphas.append(alpha)
        if steps:
            s, g, _rho = steps[-1]
            direction *= (s @ g) / (g @ g)
        else:
            direction /= max(1.0, float(np.abs(grad).sum()))
        for (s, g, rho), alpha in zip(steps, reversed(alphas), strict=True):
            direction += s * (alpha - rho * (g @ direction))
        slope = float(grad @ direction)
        if slope >= 0:  # lost descent (rounding): restart from steepest descent
            steps.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        for _ in range(40):
            new_value, new_grad = objective(theta + step * direction)
            if new_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_k, g_k = step * direction, new_grad - grad
        curvature = float(s_k @ g_k)
        if curvature > 1e-12:
            steps.append((s_k, g_k, 1.0 / curvature))
            del steps[:-memory]
        theta = theta + s_k
        converged = value - new_value <= 1e-12 * max(1.0, abs(value))
        value, grad = new_value, new_grad
        if converged:
            break
    return theta


# --- out-of-fold scores -------------------------------------------------------------------------


def clip_weights(
    clips: Sequence[Clip],
    label: str,
    weights: Mapping[str, float] | None = None,
    balance: bool = True,
) -> npt.NDArray[np.float64]:
    """Training weight of each clip for a head.

    `weights` maps an `orig_class` (or, failing that, a label) to a multiplier, e.g. heavier
    hard negatives. `balance` gives positives the same total weight as negatives: 64 laughs
    among 2000 clips would otherwise barely move the loss.
    """
    table = weights or {}
    w = np.array(
        [table.get(c.orig_class, table.get(c.label, 1.0)) for c in clips], np.float64
    )
    if balance:
        y = np.array([c.label == label for c in clips])
        if y.any() and (~y).any():
            w[y] *= w[~y].sum() / w[y].sum()
    return w


def out_of_fold(
    patchset: PatchSet,
    clips: Sequence[Clip],
    fit: Fit,
    splits: Sequence[Split],
    labels: Sequence[str] = LABELS,
    weights: Mapping[str, float] | None = None,
    balance: bool = True,
) -> dict[str, Floats]:
    """Per label, each clip's score from the model of the split that held it out (NaN: none did).

    Each clip's weight is spread over its patches, so a 7-s clip counts as much as a 1-s one.
    """
    if patchset.paths != tuple(c.path for c in clips):
        raise ValueError("patch set and clips are not the same clips in the same order")
    owner = patchset.owner
    per_patch = 1.0 / np.diff(patchset.offsets)[owner]
    scores: dict[str, Floats] = {
        label: np.full(len(clips), np.nan, np.float32) for label in labels
    }
    seen = np.zeros(len(clips), bool)
    for split in splits:
        if np.intersect1d(split.train, split.test).size:
            raise ValueError(f"{split.name}: clips both trained on and scored")
        if seen[split.test].any():
            raise ValueError(f"{split.name}: clips scored by two splits")
        seen[split.test] = True
        train = np.zeros(len(clips), bool)
        train[split.train] = True
        test = np.zeros(len(clips), bool)
        test[split.test] = True
        train_rows, test_rows = train[owner], test[owner]
        x_train = patchset.features[train_rows]
        for label in labels:
            y = np.array([c.label == label for c in clips])
            w = clip_weights([clips[i] for i in split.train], label, weights, balance)
            clip_w = np.zeros(len(clips))
            clip_w[split.train] = w
            predict = fit(
                x_train,
                y[owner][train_rows],
                (clip_w[owner] * per_patch)[train_rows].astype(np.float32),
            )
            probs = np.full(owner.size, -np.inf, np.float32)
            probs[test_rows] = predict(patchset.features[test_rows])
            scores[label][split.test] = clip_max(patchset, probs)[split.test]
    return scores


def class_scores(
    patchset: PatchSet, classes: Mapping[str, Sequence[int]] = YAMNET_CLASSES
) -> dict[str, Floats]:
    """Frigate's score: per label, max over patches of max over the label's class columns."""
    return {
        label: clip_max(patchset, patchset.features[:, list(cols)].max(axis=1))
        for label, cols in classes.items()
    }


# --- reports ------------------------------------------------------------------------------------


def _num(x: float) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if math.isnan(x) else float(x)


def _rates(
    keys: npt.NDArray[np.str_], over: Bools, negative: Bools
) -> list[dict[str, Any]]:
    """Count false positives per key among negatives."""
    rows = []
    for key in np.unique(keys[negative]):
        mask = negative & (keys == key)
        fp = int((over & mask).sum())
        rows.append(
            {"name": str(key), "n": int(mask.sum()), "fp": fp, "fpr": fp / mask.sum()}
        )
    return sorted(rows, key=lambda r: (-r["fpr"], r["name"]))


def label_report(
    clips: Sequence[Clip], scores: Mapping[str, Floats], label: str
) -> dict[str, Any]:
    """Pooled and per-fold figures of one head over the clips that have a score."""
    s_all = np.asarray(scores[label], np.float64)
    scored = np.isfinite(s_all)
    idx = np.flatnonzero(scored)
    s = s_all[scored]
    y = np.array([clips[i].label == label for i in idx])
    fold = np.array([clips[i].fold for i in idx])
    source = np.array([clips[i].source for i in idx])
    orig = np.array([clips[i].orig_class for i in idx])
    threshold = threshold_at_fpr(y, s, FPR)
    over = s >= threshold
    per_fold: list[dict[str, Any]] = []
    for k in np.unique(fold):
        m = fold == k
        yk, sk = y[m], s[m]
        has_both = bool(yk.any() and (~yk).any())
        per_fold.append(
            {
                "fold": int(k),
                "n_pos": int(yk.sum()),
                "n_neg": int((~yk).sum()),
                "auc": _num(roc_auc(yk, sk)),
                "recall": _num(recall_at_fpr(yk, sk, FPR)) if has_both else None,
                "recall_at_pooled": _num(float(over[m & y].mean()))
                if yk.any()
                else None,
                "fpr_at_pooled": _num(float(over[m & ~y].mean()))
                if (~yk).any()
                else None,
            }
        )

    def spread(key: str) -> dict[str, float | None]:
        values: list[float] = [r[key] for r in per_fold if r[key] is not None]
        return {
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }

    cross = {}
    for other in (o for o in scores if o != label):
        m = np.array([clips[i].label == other for i in idx])
        cross[other] = {
            "n": int(m.sum()),
            "over": int((over & m).sum()),
            "fraction": _num(float(over[m].mean())) if m.any() else None,
        }
    by_class = [
        r
        for r in _rates(orig, over, ~y)
        if r["fp"] > 0 or r["name"] in CLASSES_OF_INTEREST
    ]

    def listing(order: Ints) -> list[dict[str, Any]]:
        return [
            {
                "path": clips[idx[i]].path,
                "source": str(source[i]),
                "orig_class": str(orig[i]),
                "score": float(s[i]),
            }
            for i in order[:LIST_LENGTH]
        ]

    negatives, positives = np.flatnonzero(~y), np.flatnonzero(y)
    return {
        "label": label,
        "n_pos": int(y.sum()),
        "n_neg": int((~y).sum()),
        "auc": _num(roc_auc(y, s)),
        "recall": _num(recall_at_fpr(y, s, FPR)),
        "threshold": _num(threshold),
        "threshold_strict": _num(threshold_at_fpr(y, s, STRICT_FPR)),
        "recall_strict": _num(recall_at_fpr(y, s, STRICT_FPR)),
        "per_fold": per_fold,
        "auc_spread": spread("auc"),
        "recall_spread": spread("recall"),
        "others_over_threshold": cross,
        "fpr_by_source": [r for r in _rates(source, over, ~y) if r["fp"] > 0],
        "fpr_by_class": by_class,
        "loudest_negatives": listing(
            negatives[np.argsort(-s[negatives], kind="stable")]
        ),
        "weakest_positives": listing(
            positives[np.argsort(s[positives], kind="stable")]
        ),
    }


def cv_report(
    clips: Sequence[Clip], scores: Mapping[str, Floats]
) -> dict[str, dict[str, Any]]:
    """`label_report` of every label in `scores` (pooled out-of-fold scores)."""
    return {label: label_report(clips, scores, label) for label in scores}


def loso_report(
    clips: Sequence[Clip],
    scores: Mapping[str, Floats],
    splits: Sequence[Split],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Per held-out source: AUC where it has both classes, recall and FPR at one threshold.

    The threshold defaults to the 1 %-FPR one of all held-out clips pooled (each scored by the
    model that never heard its source), so it is as honest as the scores.
    """
    held = np.concatenate([split.test for split in splits])
    result: dict[str, Any] = {}
    for label, s_all in scores.items():
        s_all = np.asarray(s_all, np.float64)
        y_all = np.array([c.label == label for c in clips])
        y, s = y_all[held], s_all[held]
        if thresholds is not None:
            threshold = thresholds[label]
        else:
            threshold = threshold_at_fpr(y, s, FPR)
        rows = []
        for split in splits:
            yk, sk = y_all[split.test], s_all[split.test]
            rows.append(
                {
                    "source": split.name,
                    "n_pos": int(yk.sum()),
                    "n_neg": int((~yk).sum()),
                    "auc": _num(roc_auc(yk, sk)),
                    "recall": _num(float((sk[yk] >= threshold).mean()))
                    if yk.any()
                    else None,
                    "fpr": _num(float((sk[~yk] >= threshold).mean()))
                    if (~yk).any()
                    else None,
                }
            )
        result[label] = {
            "threshold": _num(threshold),
            "auc": _num(roc_auc(y, s)),
            "recall": _num(float((s[y] >= threshold).mean())),
            "sources": rows,
        }
    return result


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 10 else f"{x:.1f}"
    return str(x)


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(
    results: Mapping[str, Mapping[str, Any]], details: bool = True
) -> str:
    """Markdown of {name: {"cv": cv_report, "loso": loso_report}}: a summary, then each model."""
    lines = ["## Pooled out-of-fold, grouped 4-fold CV", ""]
    summary = []
    for name, result in results.items():
        for label, r in result["cv"].items():
            summary.append(
                [
                    name,
                    label,
                    r["auc"],
                    f"{_fmt(r['auc_spread']['min'])}–{_fmt(r['auc_spread']['max'])}",
                    r["recall"],
                    f"{_fmt(r['recall_spread']['min'])}–{_fmt(r['recall_spread']['max'])}",
                    r["threshold"],
                    r["threshold_strict"],
                    ", ".join(
                        f"{o} {_fmt(v['fraction'])}"
                        for o, v in r["others_over_threshold"].items()
                    ),
                ]
            )
    lines += _table(
        [
            "model",
            "label",
            "AUC",
            "AUC folds",
            "recall@1%",
            "recall folds",
            "thr 1%",
            "thr 0.1%",
            "other label over thr",
        ],
        summary,
    )
    if any("loso" in r for r in results.values()):
        lines += ["## Leave one source out", ""]
        rows = [
            [
                name,
                label,
                src["source"],
                src["n_pos"],
                src["n_neg"],
                src["auc"],
                src["recall"],
                src["fpr"],
            ]  # fmt: skip
            for name, result in results.items()
            for label, r in result.get("loso", {}).items()
            for src in r["sources"]
        ]
        lines += _table(
            ["model", "label", "held-out source", "pos", "neg", "AUC", "recall", "FPR"],
            rows,
        )
    if not details:
        return "\n".join(lines)
    for name, result in results.items():
        for label, r in result["cv"].items():
            lines += [f"### {name}: {label}", ""]
            lines += _table(
                [
                    "fold",
                    "pos",
                    "neg",
                    "AUC",
                    "recall@1%",
                    "recall@pooled thr",
                    "FPR@pooled thr",
                ],
                (
                    [
                        f["fold"],
                        f["n_pos"],
                        f["n_neg"],
                        f["auc"],
                        f["recall"],
                        f["recall_at_pooled"],
                        f["fpr_at_pooled"],
                    ]  # fmt: skip
                    for f in r["per_fold"]
                ),
            )
            for what, key in (("source", "fpr_by_source"), ("class", "fpr_by_class")):
                lines += [f"False positives at the 1 % threshold, by {what}:", ""]
                lines += _table(
                    [what, "n", "FP", "FPR"],
                    ([row["name"], row["n"], row["fp"], row["fpr"]] for row in r[key]),
                )
            for title, key in (
                ("Highest-scoring negatives", "loudest_negatives"),
                ("Lowest-scoring positives", "weakest_positives"),
            ):
                lines += [f"{title}:", ""]
                lines += _table(
                    ["path", "source", "class", "score"],
                    (
                        [e["path"], e["source"], e["orig_class"], e["score"]]
                        for e in r[key]
                    ),
                )
    return "\n".join(lines)


# --- YAMNet baselines ---------------------------------------------------------------------------


def frame_patches(audio: Floats) -> Floats:
    """0.975-s patches every 0.48 s covering the whole clip, the last one zero-padded."""
    n = 1 + max(0, -(-(audio.size - PATCH) // HOP))
    padded = np.zeros((n - 1) * HOP + PATCH, np.float32)
    padded[: audio.size] = audio
    windows = np.lib.stride_tricks.sliding_window_view(padded, PATCH)[::HOP]
    return np.ascontiguousarray(windows)


class _YamNetTaps:
    """YAMNet on LiteRT (one thread) that also reads the 1024-d embedding before the logits."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self._interpreter = Interpreter(
            model_path=str(path),
            num_threads=1,
            experimental_preserve_all_tensors=True,
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._scores = self._interpreter.get_output_details()[0]["index"]
        self._embedding = next(
            d["index"]
            for d in self._interpreter.get_tensor_details()
            if d["name"] == EMBEDDING_TENSOR
        )

    def __call__(self, patch: Floats) -> tuple[Floats, Floats]:
        self._interpreter.set_tensor(self._input, patch[None])
        self._interpreter.invoke()
        return (
            np.array(self._interpreter.get_tensor(self._scores)[0], np.float32),
            np.array(self._interpreter.get_tensor(self._embedding)[0], np.float32),
        )


def yamnet_patchsets(
    clips: Sequence[Clip],
    data_dir: Path,
    cache_dir: Path,
    audio_cache: Path | None = None,
    model: Path = YAMNET,
    batch: int = 64,
) -> tuple[PatchSet, PatchSet]:
    """YAMNet's 521 class scores and 1024-d embeddings per patch of every clip, computed once.

    Cached in `cache_dir` under the sha1 of the manifest and the clip list, so a changed
    manifest recomputes; audio is decoded in batches so it never all sits in memory.
    """
    paths = tuple(c.path for c in clips)
    digest = hashlib.sha1((data_dir / "manifest.csv").read_bytes())
    digest.update("\n".join(paths).encode())
    key = digest.hexdigest()[:16]
    files = (
        cache_dir / f"yamnet_scores_{key}.npz",
        cache_dir / f"yamnet_embeddings_{key}.npz",
    )
    if all(f.exists() for f in files):
        return PatchSet.load(files[0]), PatchSet.load(files[1])
    taps = _YamNetTaps(model)
    counts, score_rows, embedding_rows = [], [], []
    for start in range(0, len(clips), batch):
        for audio in load_audio(
            list(clips[start : start + batch]), data_dir, audio_cache
        ):
            patches = frame_patches(audio)
            counts.append(len(patches))
            for patch in patches:
                score, embedding = taps(patch)
                score_rows.append(score)
                embedding_rows.append(embedding)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    result = (
        PatchSet(paths, offsets, np.stack(score_rows)),
        PatchSet(paths, offsets, np.stack(embedding_rows)),
    )
    for patchset, file in zip(result, files, strict=True):
        patchset.save(file)
    return result


def probe_out_of_fold(
    embeddings: PatchSet, clips: Sequence[Clip], grid: Sequence[float]
) -> tuple[dict[str, Floats], dict[str, float], dict[str, dict[str, float | None]]]:
    """OOF scores of the logistic probe, C chosen per label by pooled OOF AUC over `grid`."""
    splits = dev_splits(clips)
    tried = {c: out_of_fold(embeddings, clips, logistic(c), splits) for c in grid}
    aucs = {
        label: {
            str(c): _num(roc_auc([x.label == label for x in clips], s[label]))
            for c, s in tried.items()
        }
        for label in LABELS
    }
    chosen = {}
    for label in LABELS:
        chosen[label] = max(grid, key=lambda c: aucs[label][str(c)] or 0.0)  # noqa: B023
    return {label: tried[chosen[label]][label] for label in LABELS}, chosen, aucs


def main(argv: Sequence[str] | None = None) -> None:
    """Report the YAMNet baselines: Frigate-style class scores and a logistic probe."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/cache")
    parser.add_argument("--audio-cache", type=Path, default=ROOT / "build/audio_cache")
    args = parser.parse_args(argv)
    clips = read_manifest(args.data)
    dev = [c for c in clips if c.fold in DEV_FOLDS]
    scores_ps, embeddings_ps = yamnet_patchsets(
        dev, args.data, args.cache, args.audio_cache
    )
    loso = source_splits(dev)
    classes = class_scores(scores_ps)
    probe, chosen, grid_aucs = probe_out_of_fold(embeddings_ps, dev, PROBE_GRID)
    probe_loso: dict[str, Floats] = {}
    for label in LABELS:
        probe_loso |= {
            label: out_of_fold(
                embeddings_ps, dev, logistic(chosen[label]), loso, labels=(label,)
            )[label]
        }
    results = {
        "YAMNet classes (Frigate)": {
            "cv": cv_report(dev, classes),
            "loso": loso_report(dev, classes, loso),
        },
        "YAMNet probe": {
            "cv": cv_report(dev, probe),
            "loso": loso_report(dev, probe_loso, loso),
            "c": chosen,
            "c_grid_auc": grid_aucs,
        },
    }
    print(
        "YAMNet probe: L2 logistic regression on YAMNet's 1024-d embeddings, C per label "
        "chosen from "
        + ", ".join(str(c) for c in PROBE_GRID)
        + " by pooled OOF AUC: "
        + ", ".join(f"{label} C={c}" for label, c in chosen.items())
        + "\n"
    )
    print(render_markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
