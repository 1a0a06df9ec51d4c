"""Repair issues of a room: one per room and problem, raised and withdrawn alike everywhere."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    DOMAIN,
    ISSUE_CLIPS_UNWRITABLE,
    ISSUE_LEARNT_RESET,
    ISSUE_MODEL_ERROR,
    ISSUE_SCORING_FAILED,
    ISSUE_SOURCE_DOWN,
    ISSUE_THRESHOLDS_MIGRATED,
)

ISSUES = (
    ISSUE_MODEL_ERROR,
    ISSUE_SOURCE_DOWN,
    ISSUE_SCORING_FAILED,
    ISSUE_CLIPS_UNWRITABLE,
    ISSUE_THRESHOLDS_MIGRATED,
    ISSUE_LEARNT_RESET,
)
"""Every issue a room can raise (problems and the one-time notice); a removed room withdraws them all."""


def issue_id(key: str, entry_id: str) -> str:
    """Id of the `key` issue of one entry."""
    return f"{key}_{entry_id}"


def has_issue(hass: HomeAssistant, key: str, entry_id: str) -> bool:
    """Tell whether the `key` issue of an entry is raised."""
    return (
        ir.async_get(hass).async_get_issue(DOMAIN, issue_id(key, entry_id)) is not None
    )


@callback
def async_raise_issue(
    hass: HomeAssistant,
    key: str,
    entry_id: str,
    placeholders: dict[str, str],
    *,
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
    persistent: bool = False,
) -> None:
    """Raise (or update) the `key` issue of an entry: something the user must fix outside.

    A persistent issue outlives a restart (one raised once, not again while the problem lasts).
    """
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(key, entry_id),
        is_fixable=False,
        is_persistent=persistent,
        severity=severity,
        translation_key=key,
        translation_placeholders=placeholders,
    )


@callback
def async_withdraw_issue(hass: HomeAssistant, key: str, entry_id: str) -> None:
    """Withdraw the `key` issue of an entry (nothing happens if it is not raised)."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry_id))
