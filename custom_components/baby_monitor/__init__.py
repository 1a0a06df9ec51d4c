"""Baby Monitor: on-device crying and laughter detection for Home Assistant."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import (
    config_validation as cv,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.typing import ConfigType

from .clips import async_remove_clips, async_setup_clips
from .const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    DOMAIN,
    ISSUE_MODEL_ERROR,
    ISSUE_THRESHOLDS_MIGRATED,
    LOGGER,
    SOUND_ENTITY_KEYS,
    V1_THRESHOLDS,
)
from .data import BabyMonitorConfigEntry, BabyMonitorData
from .engine.model import ModelError
from .issues import ISSUES, async_raise_issue, async_withdraw_issue, has_issue
from .learning import RoomLearning, async_remove_learnt
from .migration import change_placeholders, migrate_thresholds, model_thresholds
from .runtime import BabyMonitorRuntime, DetectionSettings, load_model
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions (they exist whether or not an entry is loaded)."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> bool:
    """Carry a version-1 entry's thresholds over to the shipped model's score scale."""
    if entry.version > 2:
        LOGGER.error(
            "%s was set up by a newer Baby Monitor (entry version %s); install that again",
            entry.title,
            entry.version,
        )
        return False
    if entry.version == 1:
        try:
            defaults = await hass.async_add_executor_job(model_thresholds)
        except ModelError as err:
            # Left at version 1: setup raises model_error and retries, migrating first.
            LOGGER.warning("Cannot migrate %s yet: %s", entry.title, err)
            return True
        options, changes = migrate_thresholds(entry.options, V1_THRESHOLDS, defaults)
        hass.config_entries.async_update_entry(entry, options=options, version=2)
        if changes:
            async_raise_issue(
                hass,
                ISSUE_THRESHOLDS_MIGRATED,
                entry.entry_id,
                {"room": entry.title, **change_placeholders(changes)},
                severity=ir.IssueSeverity.WARNING,
                persistent=True,
            )
        LOGGER.debug("Migrated %s to version 2: %s", entry.title, changes)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: BabyMonitorConfigEntry) -> bool:
    """Load the model, start listening and set up the entities."""
    try:
        model = await hass.async_add_executor_job(
            load_model, entry.options.get(CONF_BACKEND, BACKEND_AUTO)
        )
    except ModelError as err:
        if not has_issue(hass, ISSUE_MODEL_ERROR, entry.entry_id):
            # Home Assistant logs a setup retry at debug level only: say it once, clearly.
            LOGGER.error("Cannot load the detection model for %s: %s", entry.title, err)
        async_raise_issue(
            hass,
            ISSUE_MODEL_ERROR,
            entry.entry_id,
            {"room": entry.title, "error": str(err)},
        )
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=ISSUE_MODEL_ERROR,
            translation_placeholders={"error": str(err)},
        ) from err
    async_withdraw_issue(hass, ISSUE_MODEL_ERROR, entry.entry_id)

    runtime = BabyMonitorRuntime(
        hass, entry, model, DetectionSettings.from_options(entry.options, model)
    )
    clips = async_setup_clips(
        hass,
        entry,
        lambda: runtime.pipeline.stream.seconds,
        max(
            (config.confirm_s for config in runtime.settings.detectors.values()),
            default=0.0,
        ),
    )
    entry.async_on_unload(runtime.async_add_audio_listener(clips.async_handle_audio))
    entry.async_on_unload(runtime.async_add_event_listener(clips.async_handle_event))
    entry.async_on_unload(runtime.async_add_pause_listener(clips.async_forget))
    learning = RoomLearning(hass, entry, runtime, clips)
    await learning.async_load()
    entry.runtime_data = BabyMonitorData(runtime, clips, learning)
    _async_remove_undetected(hass, entry, runtime.settings.sounds)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(
        hass, runtime.run(), f"{DOMAIN} listener {entry.title}"
    )
    entry.async_on_unload(runtime.stop)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> bool:
    """Unload the entities; the entry then stops the runtime and cancels its tasks."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> None:
    """Withdraw the entry's repair issues, forget what it learnt, delete its clips.

    Clips stay when the entry's options keep them.
    """
    for key in ISSUES:
        async_withdraw_issue(hass, key, entry.entry_id)
    await async_remove_learnt(hass, entry.entry_id)
    await async_remove_clips(hass, entry)


async def _async_update_listener(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry
) -> None:
    """Reload when the options change (a reconfigure reloads by itself)."""
    if dict(entry.options) != entry.runtime_data.runtime.options:
        # options saved after a migration are reviewed: its notice has served
        async_withdraw_issue(hass, ISSUE_THRESHOLDS_MIGRATED, entry.entry_id)
        await hass.config_entries.async_reload(entry.entry_id)


def _async_remove_undetected(
    hass: HomeAssistant, entry: BabyMonitorConfigEntry, sounds: tuple[str, ...]
) -> None:
    """Remove the entities of sounds the options no longer detect."""
    registry = er.async_get(hass)
    stale = {
        f"{entry.entry_id}-{key}"
        for label, keys in SOUND_ENTITY_KEYS.items()
        if label not in sounds
        for key in keys
    }
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.unique_id in stale:
            registry.async_remove(entity.entity_id)
