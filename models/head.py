"""The head over the backbone's patch rows: trained, cross-validated and exported.

Each patch row (embedding plus the backbone's AudioSet logits) gets a small network's
cry / laughter / neither probabilities; the window's score for a sound is its loudest patch.
One softmax over the three keeps a laugh from also being a cry.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
import hashlib
import json
import math
from pathlib import Path
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.model import LABELS, spread_scores

from .backbone import EMBEDDING, FRONTEND, LOGITS, PATCH_HOP_S, PATCH_S, backbone_tflite
from .card import write_card
from .crossval import Split, cv_report, dev_splits, loso_report, source_splits
from .dataset import DEFAULT_DATA, Clip, read_manifest
from .metrics import threshold_at_fpr
from .patches import VARIANTS, patch_features

__all__ = [
    "CLASSES",
    "HeadSettings",
    "Member",
    "TrainedHead",
    "crossvalidate",
    "export_head",
    "fit_head",
    "out_of_fold",
    "run",
]

type Floats = npt.NDArray[np.float32]
type Ints = npt.NDArray[np.intp]

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 7.0
CLASSES = ("other", *LABELS)
"""Softmax classes of a patch; the labels' columns are the model's outputs."""


@dataclass(frozen=True)
class HeadSettings:
    """Recipe of the head (chosen by pooled out-of-fold scores of grouped CV)."""

    hidden: int = 128
    dropout: float = 0.3
    l2: float = 1e-2
    epochs: int = 20
    batch: int = 256
    learning_rate: float = 1e-3
    laughter_weight: float = 1.0
    members: int = 3
    temperature: float = 2.0
    """Logits are divided by this in training (a softer target than plain softmax)."""
    spread: float = 3.0
    """Scores are reported as 1 - (1 - p)^(1 / spread): the averaged softmax crowds the strict
    thresholds into 0.97-0.999, finer than the options' 0.01 steps; spread keeps the ranking
    and quiet rooms near 0 and moves those thresholds to 0.7-0.9."""
    prior_scale: float = 1.0
    """The AudioSet-logit map starts at the pretrained classes times this."""
    prior_trainable: bool = False
    """Whether training may move that map (frozen, the pretrained classes keep their say)."""
    hard_weight: float = 1.0
    """Weight of the negatives most like an infant's voice (HARD_NEGATIVES) within "other"."""
    extra_variants: tuple[str, ...] = ("pitch",)
    """Audio variants trained on beside VARIANTS, never judged (patches.EXTRA_VARIANTS)."""
    mlp_logits: bool = True
    """Whether the network also reads the AudioSet logits (else the embedding only)."""
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """For the model card and metadata (as JSON will hold it)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }


@dataclass(frozen=True)
class Member:
    """One network of the head, feature standardisation and temperature folded into it.

    Its logits are a small network of the standardised row plus a learnt linear map of the
    backbone's own AudioSet logits (read raw), started at "Baby cry" for cry and "Laughter" /
    "Baby laughter" for laughter: the pretrained classes stay the head's prior.
    """

    hidden_kernel: Floats
    hidden_bias: Floats
    out_kernel: Floats
    out_bias: Floats
    prior_kernel: Floats  # (features, 3), zero but for the AudioSet logit rows

    def probabilities(self, rows: Floats) -> Floats:
        """Per-row probabilities of CLASSES, shape (n, 3)."""
        hidden = np.maximum(rows @ self.hidden_kernel + self.hidden_bias, 0.0)
        logits = hidden @ self.out_kernel + self.out_bias + rows @ self.prior_kernel
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), np.float32)


def prior_start() -> Floats:
    """Start the map from AudioSet logits to class logits at the pretrained classes.

    Cry starts as "Baby cry" (23); laughter as the mean of "Laughter" (16) and "Baby
    laughter" (17).
    """
    start = np.zeros((len(LOGITS), len(CLASSES)), np.float32)
    start[LOGITS.index(23), CLASSES.index("cry")] = 1.0
    start[LOGITS.index(16), CLASSES.index("laughter")] = 0.5
    start[LOGITS.index(17), CLASSES.index("laughter")] = 0.5
    return start


@dataclass(frozen=True)
class TrainedHead:
    """The head: its members' probabilities averaged."""

    members: tuple[Member, ...]

    def probabilities(self, rows: Floats) -> Floats:
        """Per-row probabilities of CLASSES, shape (n, 3) (numpy, for evaluation)."""
        return np.asarray(
            np.mean([m.probabilities(rows) for m in self.members], axis=0), np.float32
        )


def class_weights(classes: Ints, per_row: Floats, laughter_weight: float) -> Floats:
    """Row weights that give every class the same total, laughter times `laughter_weight`."""
    total = float(per_row.sum())
    scale = np.array(
        [
            total / max(float(per_row[classes == k].sum()), 1e-9)
            for k in range(len(CLASSES))
        ]
    )
    scale[CLASSES.index("laughter")] *= laughter_weight
    weights = per_row * scale[classes]
    return np.asarray(weights / weights.mean(), np.float32)


def fit_head(
    rows: Floats, classes: Ints, weights: Floats, settings: HeadSettings
) -> TrainedHead:
    """Train the head's members on patch rows (class index per row; weights balanced)."""
    return TrainedHead(
        tuple(
            _fit_member(rows, classes, weights, settings, settings.seed + index)
            for index in range(settings.members)
        )
    )


def _fit_member(
    rows: Floats, classes: Ints, weights: Floats, settings: HeadSettings, seed: int
) -> Member:
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    embedding = rows.shape[1] - len(LOGITS)
    mean = rows.mean(axis=0)
    std = rows.std(axis=0) + 1e-6
    if not settings.mlp_logits:
        # the network reads the embedding alone; the logits reach the output via the prior
        std[embedding:] = np.inf
    standardised = keras.Input((rows.shape[1],))
    raw_logits = keras.Input((len(LOGITS),))
    hidden_layer = keras.layers.Dense(
        settings.hidden,
        activation="relu",
        kernel_regularizer=keras.regularizers.l2(settings.l2),
    )
    out_layer = keras.layers.Dense(len(CLASSES))
    prior_layer = keras.layers.Dense(
        len(CLASSES),
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(
            prior_start() * settings.prior_scale
        ),
        trainable=settings.prior_trainable,
    )
    hidden = keras.layers.Dropout(settings.dropout)(hidden_layer(standardised))
    logits = keras.layers.Add()([out_layer(hidden), prior_layer(raw_logits)])
    tempered = keras.layers.Rescaling(1.0 / settings.temperature)(logits)
    model = keras.Model([standardised, raw_logits], keras.layers.Softmax()(tempered))
    model.compile(
        keras.optimizers.Adam(settings.learning_rate), "sparse_categorical_crossentropy"
    )
    model.fit(
        [(rows - mean) / std, rows[:, embedding:]],
        classes,
        sample_weight=weights,
        epochs=settings.epochs,
        batch_size=settings.batch,
        verbose=0,
    )
    kernel, bias = (np.asarray(w, np.float32) for w in hidden_layer.get_weights())
    out_kernel, out_bias = (np.asarray(w, np.float32) for w in out_layer.get_weights())
    (prior,) = (np.asarray(w, np.float32) for w in prior_layer.get_weights())
    prior_kernel = np.zeros((rows.shape[1], len(CLASSES)), np.float32)
    prior_kernel[embedding:] = prior
    cool = np.float32(1.0 / settings.temperature)
    return Member(
        hidden_kernel=(kernel / std[:, None]).astype(np.float32),
        hidden_bias=(bias - mean / std @ kernel).astype(np.float32),
        out_kernel=out_kernel * cool,
        out_bias=out_bias * cool,
        prior_kernel=prior_kernel * cool,
    )


def window_scores(
    head: TrainedHead, rows: Floats, offsets: Ints, spread: float
) -> Floats:
    """Per clip (rows offsets[i]:offsets[i+1]) the loudest patch's [cry, laughter], as reported."""
    probs = head.probabilities(rows)[:, 1:]
    loudest = np.maximum.reduceat(probs, offsets[:-1], axis=0)
    return np.asarray(spread_scores(loudest, spread), np.float32)


def export_head(head: TrainedHead, patches: int) -> bytes:
    """Export the head as a float32 flatbuffer: (1, patches, features) rows -> (1, 2) [cry, laughter].

    Only ops the numpy executor has: fully connected layers, softmax, a constant selection
    of the label columns, and a max over the patches.
    """
    import keras  # noqa: PLC0415

    from .export import export_tflite  # noqa: PLC0415

    first = head.members[0]
    inputs = keras.Input(
        (patches, first.hidden_kernel.shape[0]), batch_size=1, name="patch_rows"
    )
    branches = []
    for member in head.members:
        hidden = keras.layers.Dense(member.hidden_kernel.shape[1], activation="relu")
        out = keras.layers.Dense(len(CLASSES))
        prior = keras.layers.Dense(len(CLASSES), use_bias=False)
        logits = keras.layers.Add()([out(hidden(inputs)), prior(inputs)])
        branches.append(keras.layers.Softmax()(logits))
        hidden.set_weights([member.hidden_kernel, member.hidden_bias])
        out.set_weights([member.out_kernel, member.out_bias])
        prior.set_weights([member.prior_kernel])
    mean = keras.layers.Average()(branches) if len(branches) > 1 else branches[0]
    pick = keras.layers.Dense(len(LABELS), use_bias=False)
    window = keras.layers.GlobalMaxPooling1D(name="loudest_patch")(pick(mean))
    model = keras.Model(inputs, window, name="baby_monitor_head")
    select = np.zeros((len(CLASSES), len(LABELS)), np.float32)
    for column, label in enumerate(LABELS):
        select[CLASSES.index(label), column] = 1.0
    pick.set_weights([select])
    return export_tflite(model)


HARD_NEGATIVES = frozenset(
    {
        "laughing",
        "screaming",
        "crying_noninfant",
        "moaning",
        "cat",
        "crow",
        "pig",
        "sheep",
        "hen",
        "rooster",
        "car_horn",
        "door_wood_creaks",
    }
)
"""Negatives a parent's ear tells from a baby and a network easily does not (DESIGN §7); every
clip of a parent with a child is one too."""


def hard_negative(clip: Clip) -> bool:
    """Whether `clip` is a negative most like an infant's voice."""
    return clip.label == "other" and (
        clip.source == "deeply_parent_child" or clip.orig_class in HARD_NEGATIVES
    )


DEFAULT_FPR = {"cry": 0.003, "laughter": 0.01}
"""Clip false-positive rates the default thresholds sit at, on pooled out-of-fold scores.

Cry is stricter: at the 1 % point the soak raised dozens of false alarms a day, and a parent
switches off a monitor that cries wolf; a long cry has many windows to be heard in.
"""


def _rows(
    variants: Mapping[str, tuple[Ints, Floats]], clips: Sequence[Clip]
) -> tuple[Ints, Ints]:
    """(patch owner, class index per clip) shared by every variant."""
    offsets = next(iter(variants.values()))[0]
    owner: Ints = np.repeat(np.arange(len(clips)), np.diff(offsets))
    classes: Ints = np.array([CLASSES.index(c.label) for c in clips], np.intp)
    return owner, classes


def training_variants(
    clips: Sequence[Clip], settings: HeadSettings
) -> dict[str, tuple[Ints, Floats]]:
    """Patch rows of every variant the recipe trains on: VARIANTS, then its extras."""
    names = (*VARIANTS, *settings.extra_variants)
    return {name: patch_features(name, clips) for name in names}


def fit_on(
    variants: Mapping[str, tuple[Ints, Floats]],
    clips: Sequence[Clip],
    train: npt.NDArray[np.bool_],
    settings: HeadSettings,
) -> TrainedHead:
    """Fit on the clips in `train`, every variant of each (a clip weighs the same in all)."""
    owner, classes = _rows(variants, clips)
    offsets = next(iter(variants.values()))[0]
    rows = train[owner]
    per_row = (1.0 / np.diff(offsets)[owner][rows]).astype(np.float32)
    hard = np.array([hard_negative(c) for c in clips])
    per_row *= np.where(hard[owner][rows], settings.hard_weight, 1.0).astype(np.float32)
    weights = class_weights(classes[owner][rows], per_row, settings.laughter_weight)
    return fit_head(
        np.concatenate([features[rows] for _, features in variants.values()]),
        np.tile(classes[owner][rows], len(variants)),
        np.tile(weights, len(variants)),
        settings,
    )


def out_of_fold(
    variants: Mapping[str, tuple[Ints, Floats]],
    clips: Sequence[Clip],
    splits: Sequence[Split],
    settings: HeadSettings,
) -> dict[str, dict[str, Floats]]:
    """Per variant and label, each clip's score from the head that never saw its split."""
    scores: dict[str, dict[str, Floats]] = {
        name: {label: np.full(len(clips), np.nan, np.float32) for label in LABELS}
        for name in variants
    }
    for split in splits:
        train = np.zeros(len(clips), bool)
        train[split.train] = True
        head = fit_on(variants, clips, train, settings)
        for name, (offsets, features) in variants.items():
            window = window_scores(head, features, offsets, settings.spread)
            for column, label in enumerate(LABELS):
                scores[name][label][split.test] = window[split.test, column]
    return scores


def variant_report(
    clips: Sequence[Clip],
    scores: Mapping[str, Mapping[str, Floats]],
    thresholds: Mapping[str, float],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant, at the (clean) default thresholds: recall, FPR, the other label over it."""
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_label in scores.items():
        report[name] = {}
        for label, s in by_label.items():
            y = np.array([c.label == label for c in clips])
            other = np.array([c.label not in (label, "other") for c in clips])
            over = np.asarray(s) >= thresholds[label]
            report[name][label] = {
                "recall": float(over[y].mean()),
                "false_positive_rate": float(over[~y].mean()),
                "other_label_over": float(over[other].mean()),
            }
    return report


def crossvalidate(clips: Sequence[Clip], settings: HeadSettings) -> dict[str, Any]:
    """Measure grouped 4-fold and leave-one-source-out figures of the recipe, and its thresholds."""
    variants = training_variants(clips, settings)
    dev = {
        name: scores
        for name, scores in out_of_fold(
            variants, clips, dev_splits(clips), settings
        ).items()
        if name in VARIANTS
    }
    clean = dev["clean"]
    # up to the options' 0.01 step, so the default is one a parent can set and never looser
    thresholds = {
        label: math.ceil(
            100
            * threshold_at_fpr(
                [c.label == label for c in clips], clean[label], DEFAULT_FPR[label]
            )
        )
        / 100
        for label in LABELS
    }
    sources = source_splits(clips)
    loso = out_of_fold({"clean": variants["clean"]}, clips, sources, settings)
    return {
        "thresholds": thresholds,
        "cv": cv_report(clips, clean),
        "variants": variant_report(clips, dev, thresholds),
        "loso": loso_report(clips, loso["clean"], sources),
        "scores": {
            name: {k: v.tolist() for k, v in s.items()} for name, s in dev.items()
        },
    }


def write_model(
    out_dir: Path,
    name: str,
    backbone: bytes,
    head: bytes,
    patches: int,
    thresholds: Mapping[str, float],
    metrics: Mapping[str, Any],
    spread: float = HeadSettings.spread,
) -> Path:
    """Write the backbone, the head and `<name>.json` (DESIGN.md §4, backbone + head)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    backbone_name = f"{name}_backbone.tflite"
    (out_dir / backbone_name).write_bytes(backbone)
    (out_dir / f"{name}.tflite").write_bytes(head)
    features = len(LOGITS) + EMBEDDING
    metadata = {
        "name": name,
        "version": time.strftime("%Y.%m.%d"),
        "labels": list(LABELS),
        "sample_rate": FRONTEND.sample_rate,
        "window_s": WINDOW_S,
        "frontend": FRONTEND.to_dict(),
        "backbone": {
            "file": backbone_name,
            "sha256": hashlib.sha256(backbone).hexdigest(),
            "patch_s": PATCH_S,
            "patch_hop_s": PATCH_HOP_S,
            "features": features,
            "network": "EfficientAT mn04 (MIT), AudioSet-pretrained, frozen",
        },
        "input": {
            "shape": [1, patches, features],
            "dtype": "float32",
            "scale": 0.0,
            "zero_point": 0,
        },
        "output": {
            "activation": "softmax over other/cry/laughter, max over patches",
            "spread": spread,
        },
        "thresholds": dict(thresholds),
        "metrics": dict(metrics),
        "sha256": hashlib.sha256(head).hexdigest(),
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return path


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: cross-validate the recipe, train on every dev clip, export."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "custom_components/baby_monitor/model"
    )
    parser.add_argument("--name", default="baby_monitor")
    parser.add_argument("--card", type=Path, default=ROOT / "models/MODEL_CARD.md")
    parser.add_argument("--seed", type=int, default=HeadSettings.seed)
    args = parser.parse_args(argv)
    settings = HeadSettings(seed=args.seed)
    started = time.monotonic()
    clips = read_manifest(args.data)
    report = crossvalidate(clips, settings)
    variants = training_variants(clips, settings)
    head = fit_on(variants, clips, np.ones(len(clips), bool), settings)
    patches = round((WINDOW_S - PATCH_S) / PATCH_HOP_S) + 1
    backbone = backbone_tflite()
    exported = export_head(head, patches)
    metrics = {key: value for key, value in report.items() if key != "scores"}
    metrics["settings"] = settings.to_dict()
    metrics["train_seconds"] = round(time.monotonic() - started)
    metrics["model_bytes"] = len(backbone) + len(exported)
    write_model(
        args.out,
        args.name,
        backbone,
        exported,
        patches,
        report["thresholds"],
        metrics,
        settings.spread,
    )
    if args.card:
        write_card(args.card, metrics, args.data)
    print(json.dumps({k: metrics[k] for k in ("thresholds", "variants")}, indent=1))
    return report


if __name__ == "__main__":
    run()
