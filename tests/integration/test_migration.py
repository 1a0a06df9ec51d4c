"""Entries of version 1 carry their thresholds over to the shipped model's score scale.

The shipped model changes as it is retrained, so the new defaults are read from its metadata
(or from a stand-in replacement written here), never written into the tests.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.baby_monitor.config_flow import THRESHOLD_DECIMALS
from custom_components.baby_monitor.const import (
    CONF_CONFIRM_S,
    CONF_CRY_THRESHOLD,
    CONF_HOP_S,
    CONF_LAUGHTER_THRESHOLD,
    DOMAIN,
    LABEL_CRY,
    LABEL_LAUGHTER,
    THRESHOLD_OPTIONS,
    THRESHOLD_RANGE,
    V1_HOP_S,
    V1_THRESHOLDS,
)
from custom_components.baby_monitor.engine.model import DEFAULT_MODEL, load_metadata
from custom_components.baby_monitor.migration import (
    DECIMALS,
    map_threshold,
    migrate_thresholds,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from . import setup_integration
from .conftest import wait_until

MIGRATION_MODEL = "custom_components.baby_monitor.migration.DEFAULT_MODEL"
RUNTIME_MODEL = "custom_components.baby_monitor.runtime.DEFAULT_MODEL"
REPLACEMENT_THRESHOLDS = {LABEL_CRY: 0.75, LABEL_LAUGHTER: 0.35}
"""Defaults of a stand-in replacement model, far from the version-1 ones."""
CHOSEN = {CONF_CRY_THRESHOLD: 0.95, CONF_LAUGHTER_THRESHOLD: 0.4}
"""A parent's choice: crying less sensitive than the old default, laughter more."""
OTHER_OPTIONS = {CONF_CONFIRM_S: 0.0, CONF_HOP_S: 1.0}


def expected(threshold: float, old_default: float, new_default: float) -> float:
    """Map as the issue states it: the false-alarm side's share, or the ratio."""
    if threshold > old_default:
        new = new_default + (threshold - old_default) / (1 - old_default) * (
            1 - new_default
        )
    else:
        new = new_default * threshold / old_default
    return min(max(round(new, 2), THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])


def entry_at(version: int, options: dict[str, Any]) -> MockConfigEntry:
    """Make the nursery's entry as stored by the entry `version` of the integration."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        version=version,
        unique_id="url:rtsp://192.0.2.10:554/stream1",
        data={"source_type": "url", "url": "rtsp://192.0.2.10:554/stream1"},
        options=OTHER_OPTIONS | options,
    )


def issues(registry: ir.IssueRegistry) -> list[ir.IssueEntry]:
    """List the repair issues Baby Monitor raised."""
    return [issue for (domain, _), issue in registry.issues.items() if domain == DOMAIN]


@pytest.fixture(params=["shipped", "replaced"])
def model(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Generator[dict[str, float]]:
    """Ship the model in the package, or a stand-in replacement, with an update.

    Yields its calibrated thresholds, read from its metadata.
    """
    if request.param == "shipped":
        yield load_metadata(DEFAULT_MODEL).thresholds
        return
    metadata = json.loads(DEFAULT_MODEL.read_text(encoding="utf-8"))
    metadata["thresholds"] = REPLACEMENT_THRESHOLDS
    path = tmp_path / DEFAULT_MODEL.name
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with patch(MIGRATION_MODEL, path), patch(RUNTIME_MODEL, path):
        yield load_metadata(path).thresholds


# --- through Home Assistant ----------------------------------------------------------------------


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_default_thresholds_follow_the_new_model(
    hass: HomeAssistant, model: dict[str, float], issue_registry: ir.IssueRegistry
) -> None:
    """Thresholds left at the old defaults (as the slider saved them) are removed, silently."""
    entry = entry_at(
        1,
        {
            CONF_CRY_THRESHOLD: round(V1_THRESHOLDS[LABEL_CRY], 2),
            CONF_LAUGHTER_THRESHOLD: round(V1_THRESHOLDS[LABEL_LAUGHTER], 2),
        },
    )
    await setup_integration(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    assert dict(entry.options) == OTHER_OPTIONS
    detectors = entry.runtime_data.runtime.pipeline.detectors
    assert {label: d.config.threshold for label, d in detectors.items()} == model
    assert issues(issue_registry) == []


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_chosen_thresholds_stay_as_sensitive_against_the_new_defaults(
    hass: HomeAssistant, model: dict[str, float], issue_registry: ir.IssueRegistry
) -> None:
    """A less and a more sensitive threshold are mapped; one notice lists what changed."""
    entry = entry_at(1, CHOSEN)
    await setup_integration(hass, entry)

    mapped = {
        key: expected(CHOSEN[key], V1_THRESHOLDS[label], model[label])
        for label, key in THRESHOLD_OPTIONS.items()
    }
    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    assert dict(entry.options) == OTHER_OPTIONS | mapped
    assert mapped[CONF_CRY_THRESHOLD] > round(model[LABEL_CRY], 2) or (
        mapped[CONF_CRY_THRESHOLD] == THRESHOLD_RANGE[1]
    )
    assert mapped[CONF_LAUGHTER_THRESHOLD] < model[LABEL_LAUGHTER]
    detectors = entry.runtime_data.runtime.pipeline.detectors
    assert detectors[LABEL_CRY].config.threshold == mapped[CONF_CRY_THRESHOLD]

    changed = [
        label for label, key in THRESHOLD_OPTIONS.items() if mapped[key] != CHOSEN[key]
    ]
    if model == REPLACEMENT_THRESHOLDS:
        assert changed == [LABEL_CRY, LABEL_LAUGHTER]
    if not changed:  # the shipped model is still the one version 1 was set against
        assert issues(issue_registry) == []
        return
    (issue,) = issues(issue_registry)
    assert issue.issue_id == f"thresholds_migrated_{entry.entry_id}"
    assert issue.translation_key == "thresholds_migrated"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.is_persistent
    assert issue.translation_placeholders == {
        "room": "Nursery",
        "old": ", ".join(
            f"{label} {CHOSEN[THRESHOLD_OPTIONS[label]]:.2f}" for label in changed
        ),
        "new": ", ".join(
            f"{label} {mapped[THRESHOLD_OPTIONS[label]]:.2f}" for label in changed
        ),
    }


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_saving_the_options_withdraws_the_notice(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry, tmp_path: Path
) -> None:
    """The notice stays until the parent saves the options (or ignores it)."""
    metadata = json.loads(DEFAULT_MODEL.read_text(encoding="utf-8"))
    metadata["thresholds"] = REPLACEMENT_THRESHOLDS
    path = tmp_path / DEFAULT_MODEL.name
    path.write_text(json.dumps(metadata), encoding="utf-8")
    entry = entry_at(1, CHOSEN)
    with patch(MIGRATION_MODEL, path):
        await setup_integration(hass, entry)
    assert len(issues(issue_registry)) == 1

    result = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(
        result["flow_id"], dict(entry.options) | {CONF_CRY_THRESHOLD: 0.9}
    )
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.options[CONF_CRY_THRESHOLD] == 0.9
    assert issues(issue_registry) == []


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_entry_of_a_newer_version_is_not_set_up(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """An entry saved by a newer Baby Monitor (after a downgrade) fails its migration."""
    entry = entry_at(3, CHOSEN)
    await setup_integration(hass, entry)

    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
    assert dict(entry.options) == OTHER_OPTIONS | CHOSEN
    assert issues(issue_registry) == []


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_current_entry_is_left_as_it_is(
    hass: HomeAssistant, model: dict[str, float], issue_registry: ir.IssueRegistry
) -> None:
    """Thresholds of a version-2 entry are already on the new scale."""
    entry = entry_at(2, CHOSEN)
    await setup_integration(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    assert dict(entry.options) == OTHER_OPTIONS | CHOSEN
    assert issues(issue_registry) == []


@pytest.mark.usefixtures("source_factory", "scripted_model")
async def test_migration_waits_for_a_readable_model(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    tmp_path: Path,
) -> None:
    """Without model metadata the entry stays at version 1 and retries; then it migrates."""
    entry = entry_at(1, CHOSEN)
    missing = tmp_path / "missing.json"
    with patch(MIGRATION_MODEL, missing), patch(RUNTIME_MODEL, missing):
        await setup_integration(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.version == 1
    assert dict(entry.options) == OTHER_OPTIONS | CHOSEN
    assert [issue.translation_key for issue in issues(issue_registry)] == [
        "model_error"
    ]

    freezer.tick(timedelta(minutes=5))
    async_fire_time_changed(hass)
    await wait_until(hass, lambda: entry.state is ConfigEntryState.LOADED)
    assert entry.version == 2
    assert (
        issue_registry.async_get_issue(DOMAIN, f"model_error_{entry.entry_id}") is None
    )


async def test_migrated_thresholds_fit_the_options_slider(hass: HomeAssistant) -> None:
    """Migrated values are ones the options form offers: its range and its step."""
    entry = entry_at(2, {})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    schema = result["data_schema"].schema
    keys = {str(key): key for key in schema}
    for option in THRESHOLD_OPTIONS.values():
        config = schema[keys[option]].config
        assert (config["min"], config["max"]) == THRESHOLD_RANGE
        assert config["step"] == 10**-DECIMALS
    assert DECIMALS == THRESHOLD_DECIMALS


# --- the mapping ---------------------------------------------------------------------------------

DEFAULT_PAIRS = [
    (V1_THRESHOLDS[LABEL_CRY], 0.5),
    (V1_THRESHOLDS[LABEL_CRY], 0.97),
    (V1_THRESHOLDS[LABEL_LAUGHTER], 0.2),
    (V1_THRESHOLDS[LABEL_LAUGHTER], 0.8),
    *(
        (V1_THRESHOLDS[label], default)
        for label, default in load_metadata(DEFAULT_MODEL).thresholds.items()
    ),
]
GRID = [round(0.05 + 0.01 * step, 2) for step in range(95)]
"""Every threshold the slider offers, 0.05 to 0.99."""


@pytest.mark.parametrize(("old_default", "new_default"), DEFAULT_PAIRS)
def test_the_default_maps_to_the_default(
    old_default: float, new_default: float
) -> None:
    """The old default becomes the new one (to the slider's step)."""
    assert map_threshold(old_default, old_default, new_default) == round(new_default, 2)


@pytest.mark.parametrize(("old_default", "new_default"), DEFAULT_PAIRS)
def test_the_mapping_keeps_order_and_side(
    old_default: float, new_default: float
) -> None:
    """A higher threshold never maps lower; each stays on its side of the default."""
    mapped = [map_threshold(t, old_default, new_default) for t in GRID]
    assert mapped == sorted(mapped)
    for threshold, new in zip(GRID, mapped, strict=True):
        assert THRESHOLD_RANGE[0] <= new <= THRESHOLD_RANGE[1]
        if threshold > old_default:
            assert new >= round(new_default, 2)
        elif threshold < old_default:
            assert new <= round(new_default, 2)


def test_the_mapping_follows_the_false_alarm_side() -> None:
    """Above: the same share of the distance to 1; below: the same ratio to the default."""
    assert map_threshold(0.95, 0.9, 0.6) == 0.8  # half-way to 1 stays half-way
    assert map_threshold(0.45, 0.9, 0.6) == 0.3  # half the default stays half


def test_the_mapping_stays_in_the_slider_range() -> None:
    """Values beyond the slider's ends are clamped to them."""
    assert map_threshold(0.05, 0.9, 0.1) == THRESHOLD_RANGE[0]
    assert map_threshold(0.99, 0.9, 0.995) == THRESHOLD_RANGE[1]


def test_migrate_thresholds_removes_defaults_and_keeps_the_rest() -> None:
    """Within 0.005 of the old default is the default; other options pass through."""
    options = {
        CONF_CRY_THRESHOLD: 0.904,
        CONF_LAUGHTER_THRESHOLD: 0.58,
        CONF_HOP_S: 1.0,
    }
    migrated, changes = migrate_thresholds(
        options, V1_THRESHOLDS, {"cry": 0.5, "laughter": 0.5}
    )
    assert migrated == {CONF_HOP_S: 1.0}
    assert changes == []
    assert migrate_thresholds({CONF_HOP_S: 1.0}, V1_THRESHOLDS, V1_THRESHOLDS) == (
        {CONF_HOP_S: 1.0},
        [],
    )


def test_the_old_default_hop_follows_the_new_default() -> None:
    """The old default hop, saved by every v1 options form, is dropped; another is kept.

    The backbone's patches come every second, the new default.
    """
    migrated, _ = migrate_thresholds(
        {CONF_HOP_S: V1_HOP_S}, V1_THRESHOLDS, V1_THRESHOLDS
    )
    assert CONF_HOP_S not in migrated
    migrated, _ = migrate_thresholds({CONF_HOP_S: 2.0}, V1_THRESHOLDS, V1_THRESHOLDS)
    assert migrated == {CONF_HOP_S: 2.0}


def test_migrate_thresholds_reports_only_what_changed() -> None:
    """A threshold whose value is kept is not reported; odd values are left alone."""
    migrated, changes = migrate_thresholds(
        {CONF_CRY_THRESHOLD: 0.95, CONF_LAUGHTER_THRESHOLD: "0.4"},
        V1_THRESHOLDS,
        V1_THRESHOLDS,
    )
    assert migrated == {CONF_CRY_THRESHOLD: 0.95, CONF_LAUGHTER_THRESHOLD: "0.4"}
    assert changes == []
