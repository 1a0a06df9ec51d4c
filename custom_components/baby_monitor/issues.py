"""Repair issues of a room: one per room and problem, raised and withdrawn alike everywhere."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    DOMAIN,
    ISSUE_CLIPS_UNWRITABLE,
    ISSUE_MODEL_ERROR,
    ISSUE_SCORING_FAILED,
    ISSUE_SOURCE_DOWN,
)

ISSUES = (
    ISSUE_MODEL_ERROR,
    ISSUE_SOURCE_DOWN,
    ISSUE_SCORING_FAILED,
    ISSUE_CLIPS_UNWRITABLE,
)
"""Every problem a room can raise; a removed room withdraws them all."""


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
    hass: HomeAssistant, key: str, entry_id: str, placeholders: dict[str, str]
) -> None:
    """Raise (or update) the `key` issue of an entry: an error the user must fix outside."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(key, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=key,
        translation_placeholders=placeholders,
    )


@callback
def async_withdraw_issue(hass: HomeAssistant, key: str, entry_id: str) -> None:
    """Withdraw the `key` issue of an entry (nothing happens if it is not raised)."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(key, entry_id))
