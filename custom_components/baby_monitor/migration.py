"""Carry thresholds saved against one model's scores over to another's (no Home Assistant)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .const import CONF_HOP_S, THRESHOLD_OPTIONS, THRESHOLD_RANGE, V1_HOP_S
from .engine.model import DEFAULT_MODEL, load_metadata

SAME_AS_DEFAULT: Final = 0.005
"""A saved threshold this close to the old default is that default (the slider rounds to 0.01)."""
DECIMALS: Final = 2
"""Migrated thresholds are rounded to the slider's step, like those a parent saves."""


@dataclass(frozen=True, slots=True)
class ThresholdChange:
    """A saved threshold of one sound, before and after the migration."""

    label: str
    old: float
    new: float


def model_thresholds() -> dict[str, float]:
    """Calibrated thresholds of the shipped model, by label (blocking: run it in an executor)."""
    return load_metadata(DEFAULT_MODEL).thresholds


def map_threshold(threshold: float, old_default: float, new_default: float) -> float:
    """Place `threshold` against `new_default` as it stood against `old_default`.

    Above the default (fewer false alarms) it keeps its share of the distance to 1; below it
    (more sensitive) its ratio to the default. The result is rounded to the slider's step and
    kept in its range.
    """
    if threshold >= old_default:
        share = (threshold - old_default) / (1 - old_default)
        mapped = new_default + share * (1 - new_default)
    else:
        mapped = new_default * threshold / old_default
    low, high = THRESHOLD_RANGE
    return min(max(round(mapped, DECIMALS), low), high)


def migrate_thresholds(
    options: Mapping[str, Any],
    old_defaults: Mapping[str, float],
    new_defaults: Mapping[str, float],
) -> tuple[dict[str, Any], list[ThresholdChange]]:
    """Options with every saved threshold on the new scale, and the thresholds that changed.

    A threshold at the old default is removed, so that the entry follows the new model's
    default; one of a sound either model lacks, or not a number, is left as it is. So is the
    old model's default hop, which every v1 options form saved.
    """
    migrated = dict(options)
    if migrated.get(CONF_HOP_S) == V1_HOP_S:
        # the old default, saved with the options: follow the new model's default instead
        del migrated[CONF_HOP_S]
    changes: list[ThresholdChange] = []
    for label, key in THRESHOLD_OPTIONS.items():
        value = migrated.get(key)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or label not in old_defaults
            or label not in new_defaults
        ):
            continue
        if abs(value - old_defaults[label]) <= SAME_AS_DEFAULT:
            del migrated[key]
            continue
        migrated[key] = map_threshold(value, old_defaults[label], new_defaults[label])
        if migrated[key] != value:
            changes.append(ThresholdChange(label, value, migrated[key]))
    return migrated, changes


def change_placeholders(changes: list[ThresholdChange]) -> dict[str, str]:
    """Describe the `old` and `new` thresholds for a repair issue, e.g. "cry 0.95, laughter 0.40"."""
    return {
        side: ", ".join(
            f"{change.label} {getattr(change, side):.{DECIMALS}f}" for change in changes
        )
        for side in ("old", "new")
    }
