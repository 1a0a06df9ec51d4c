"""The head: trained on patch rows, judged out of fold, exported as both runtimes run it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from baby_monitor_engine.tflite import NumpyInterpreter
from models.backbone import LOGITS
from models.crossval import dev_splits
from models.dataset import Clip
from models.head import (
    CLASSES,
    HeadSettings,
    Member,
    TrainedHead,
    export_head,
    fit_on,
    hard_negative,
    out_of_fold,
    prior_start,
)
from models.metrics import roc_auc

QUICK = HeadSettings(hidden=8, epochs=30, members=1, batch=32)
WIDTH = 6 + len(LOGITS)  # a few embedding columns, then the backbone's AudioSet logits


def random_head(features: int, members: int = 2) -> TrainedHead:
    """Make a head with random weights (what the export must reproduce, whatever they are)."""
    rng = np.random.default_rng(0)

    def member() -> Member:
        return Member(
            rng.normal(0, 0.1, (features, 16)).astype(np.float32),
            rng.normal(0, 0.1, 16).astype(np.float32),
            rng.normal(0, 1.0, (16, len(CLASSES))).astype(np.float32),
            rng.normal(0, 0.1, len(CLASSES)).astype(np.float32),
            rng.normal(0, 0.5, (features, len(CLASSES))).astype(np.float32),
        )

    return TrainedHead(tuple(member() for _ in range(members)))


def synthetic_clips(per_fold: int = 12) -> tuple[list[Clip], np.ndarray, np.ndarray]:
    """Clips of three patches each whose rows say their class, in folds 1-4."""
    rng = np.random.default_rng(1)
    clips, rows = [], []
    for fold in range(1, 5):
        for index in range(per_fold):
            label = CLASSES[index % 3]
            clips.append(
                Clip(
                    f"{fold}/{index}.flac",
                    label,
                    "synth",
                    f"g{fold}{index}",
                    fold,
                    label,
                    3.0,
                )
            )
            row = np.zeros((3, WIDTH), np.float32)  # the AudioSet logits stay at 0
            row[:, :6] = rng.normal(0, 0.5, (3, 6))
            row[:, CLASSES.index(label)] += 2.0
            rows.append(row)
    offsets = np.arange(0, 3 * len(clips) + 1, 3)
    return clips, offsets, np.concatenate(rows)


def test_exported_head_scores_each_sound_by_its_loudest_patch() -> None:
    """Both runtimes give the members' averaged softmax, label columns, max over patches."""
    from ai_edge_litert.interpreter import Interpreter

    head = random_head(features=10)
    rows = np.random.default_rng(2).normal(0, 1, (6, 10)).astype(np.float32)
    expected = head.probabilities(rows)[:, 1:].max(axis=0)
    content = export_head(head, patches=6)
    for interpreter in (
        Interpreter(model_content=content),
        NumpyInterpreter(model_content=content),
    ):
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], rows[None])
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_members_probabilities_are_averaged() -> None:
    """A head of two members scores what their mean says; each row's classes sum to one."""
    head = random_head(features=4)
    rows = np.random.default_rng(3).normal(0, 1, (5, 4)).astype(np.float32)
    probs = head.probabilities(rows)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    mean = (
        head.members[0].probabilities(rows) + head.members[1].probabilities(rows)
    ) / 2
    np.testing.assert_allclose(probs, mean, rtol=1e-5)


def test_out_of_fold_scores_come_from_heads_that_never_saw_the_clip() -> None:
    """Every clip is scored once, by the fold model without it, and separable classes separate."""
    clips, offsets, rows = synthetic_clips()
    scores = out_of_fold({"clean": (offsets, rows)}, clips, dev_splits(clips), QUICK)
    for label in ("cry", "laughter"):
        s = scores["clean"][label]
        assert np.isfinite(s).all()
        assert roc_auc([c.label == label for c in clips], s) > 0.95


def test_the_prior_starts_at_the_pretrained_classes() -> None:
    """Before training, cry is "Baby cry" and laughter the mean of the two laughter classes."""
    start = prior_start()
    assert start[:, CLASSES.index("cry")].tolist() == [
        1.0 if index == 23 else 0.0 for index in LOGITS
    ]
    laughter = dict(zip(LOGITS, start[:, CLASSES.index("laughter")], strict=True))
    assert laughter[16] == laughter[17] == 0.5
    assert sum(laughter.values()) == 1.0
    assert not start[:, CLASSES.index("other")].any()


def test_a_frozen_prior_keeps_the_pretrained_classes_through_training() -> None:
    """With the prior frozen, the trained member's AudioSet map is the start, tempered."""
    clips, offsets, rows = synthetic_clips()
    settings = replace(QUICK, prior_trainable=False, prior_scale=2.0, members=1)
    head = fit_on(
        {"clean": (offsets, rows)}, clips, np.ones(len(clips), bool), settings
    )
    (member,) = head.members
    np.testing.assert_allclose(
        member.prior_kernel[WIDTH - len(LOGITS) :],
        prior_start() * 2.0 / settings.temperature,
        rtol=1e-6,
    )


def test_negatives_most_like_an_infant_are_the_hard_ones() -> None:
    """Adult crying, laughing adults, animals and every parent-with-child clip; not cries."""

    def clip(label: str, source: str, orig_class: str) -> Clip:
        return Clip("a.flac", label, source, "g", 1, orig_class, 5.0)

    assert hard_negative(clip("other", "deeply_nonverbal", "crying_noninfant"))
    assert hard_negative(clip("other", "esc50", "cat"))
    assert hard_negative(clip("other", "deeply_parent_child", "parent_reading"))
    assert not hard_negative(clip("other", "esc50", "rain"))
    assert not hard_negative(clip("cry", "esc50", "crying_baby"))
    assert not hard_negative(clip("laughter", "esc50", "laughing"))
