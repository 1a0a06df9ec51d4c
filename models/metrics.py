"""Clip-level detection metrics: ROC-AUC, recall at a false-positive rate, calibrated thresholds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["recall_at_fpr", "roc_auc", "threshold_at_fpr"]

type Scores = npt.ArrayLike


def roc_auc(labels: Scores, scores: Scores) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    order = np.argsort(np.concatenate((pos, neg)), kind="mergesort")
    ranks = np.empty(order.size, dtype=np.float64)
    ranks[order] = np.arange(1, order.size + 1)
    merged = np.concatenate((pos, neg))
    # average ranks over ties
    _, inverse, counts = np.unique(merged, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = sums[inverse] / counts[inverse]
    return float(
        (ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2)
        / (pos.size * neg.size)
    )


def threshold_at_fpr(labels: Scores, scores: Scores, fpr: float) -> float:
    """Smallest threshold (score >= t is positive) whose false-positive rate is at most `fpr`."""
    y = np.asarray(labels, dtype=bool)
    neg = np.sort(np.asarray(scores, dtype=np.float64)[~y])[::-1]
    allowed = int(np.floor(fpr * neg.size + 1e-9))
    if allowed >= neg.size:
        return float(neg[-1])
    # strictly above the (allowed+1)-th highest negative
    return float(np.nextafter(neg[allowed], np.inf))


def recall_at_fpr(labels: Scores, scores: Scores, fpr: float) -> float:
    """Recall at the threshold `threshold_at_fpr` picks."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    return float((s[y] >= threshold_at_fpr(y, s, fpr)).mean())
