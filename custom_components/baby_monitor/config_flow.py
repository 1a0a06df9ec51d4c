"""Config flow for Baby Monitor: pick a source, name the room, hear a second of audio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    CONF_CAMERA,
    CONF_CLIP_MAX_SIZE_MB,
    CONF_CLIP_RETENTION_DAYS,
    CONF_CONFIRM_S,
    CONF_DEVICE,
    CONF_HOLD_S,
    CONF_HOP_S,
    CONF_KEEP_CLIPS_ON_REMOVE,
    CONF_SAVE_CLIPS,
    CONF_SOUNDS,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DEFAULT_CLIP_MAX_SIZE_MB,
    DEFAULT_CLIP_RETENTION_DAYS,
    DEFAULT_KEEP_CLIPS_ON_REMOVE,
    DEFAULT_SAVE_CLIPS,
    DOMAIN,
    DRIVER_SOUNDDEVICE,
    FALLBACK_THRESHOLD,
    FFMPEG_MICROPHONES,
    LOGGER,
    SOUNDS,
    SOURCE_CAMERA,
    SOURCE_MICROPHONE,
    SOURCE_TYPES,
    SOURCE_URL,
    THRESHOLD_OPTIONS,
)
from .data import BabyMonitorConfigEntry
from .engine.backends import available_backends
from .engine.detector import DEFAULT_CONFIRM_S, DEFAULT_HOLD_S
from .engine.model import DEFAULT_MODEL, ModelError, load_metadata
from .engine.pipeline import DEFAULT_HOP_S
from .engine.sources import (
    REASONS,
    SourceError,
    list_input_devices,
    portaudio_available,
    probe,
)
from .source import async_create_source, source_unique_id

DEFAULT_ROOM = "Nursery"
THRESHOLD_DECIMALS = 2
"""Thresholds are offered to two decimals (the slider's 0.01 step); the model keeps its own."""
ERRORS = frozenset(REASONS) - {"stream_ended"}
"""SourceError reasons the form shows as they are; a source that ends before giving any audio
reads as cannot_connect."""
DESCRIPTION_PLACEHOLDERS: dict[str, dict[str, str]] = {
    SOURCE_URL: {"example_url": "rtsp://user:password@192.168.1.20:554/stream1"},
}
"""Text the forms show as it is: URLs are not written into translations."""


def _microphones() -> list[str]:
    """Microphones on this host: PortAudio devices where it exists, then ffmpeg's defaults."""
    devices = (
        [f"{DRIVER_SOUNDDEVICE}:{device.name}" for device in list_input_devices()]
        if portaudio_available()
        else []
    )
    return [*devices, *FFMPEG_MICROPHONES]


class BabyMonitorConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add (or reconfigure) a room listened to through one source."""

    VERSION = 2

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: BabyMonitorConfigEntry,
    ) -> BabyMonitorOptionsFlow:
        """Create the options flow (detection settings)."""
        return BabyMonitorOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the kind of source."""
        return self.async_show_menu(step_id="user", menu_options=list(SOURCE_TYPES))

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the kind of the new source (the same steps as adding one)."""
        return self.async_show_menu(
            step_id="reconfigure", menu_options=list(SOURCE_TYPES)
        )

    async def async_step_camera(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Listen to a camera entity's stream."""
        schema = vol.Schema(
            {
                vol.Required(CONF_CAMERA): EntitySelector(
                    EntitySelectorConfig(domain="camera")
                ),
                vol.Required(CONF_NAME): TextSelector(),
            }
        )
        return await self._async_step_source(SOURCE_CAMERA, schema, user_input)

    async def async_step_url(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Listen to a stream URL (RTSP, HTTP, anything ffmpeg reads)."""
        schema = vol.Schema(
            {
                vol.Required(CONF_URL): TextSelector(),
                vol.Required(CONF_NAME): TextSelector(),
            }
        )
        return await self._async_step_source(SOURCE_URL, schema, user_input)

    async def async_step_microphone(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Listen to a microphone on the Home Assistant host."""
        microphones = await self.hass.async_add_executor_job(_microphones)
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE, default=microphones[0]): SelectSelector(
                    SelectSelectorConfig(
                        options=microphones,
                        custom_value=True,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_NAME): TextSelector(),
            }
        )
        return await self._async_step_source(SOURCE_MICROPHONE, schema, user_input)

    async def _async_step_source(
        self,
        kind: str,
        schema: vol.Schema,
        user_input: dict[str, Any] | None,
    ) -> ConfigFlowResult:
        """Test the source, then create the entry (or update the reconfigured one)."""
        errors: dict[str, str] = {}
        reconfiguring = self.source == SOURCE_RECONFIGURE
        if user_input is not None:
            data = {CONF_SOURCE_TYPE: kind} | {
                key: value.strip() if isinstance(value, str) else value
                for key, value in user_input.items()
                if key != CONF_NAME
            }
            title = str(user_input[CONF_NAME]).strip() or DEFAULT_ROOM
            unique_id = source_unique_id(data)
            if (
                not reconfiguring
                or unique_id != self._get_reconfigure_entry().unique_id
            ):
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
            try:
                await probe(await async_create_source(self.hass, data))
            except SourceError as err:
                LOGGER.debug("Testing %s failed: %s", kind, err)
                errors["base"] = (
                    err.reason if err.reason in ERRORS else "cannot_connect"
                )
            except Exception:  # noqa: BLE001 - shown as unknown, logged with its traceback
                LOGGER.exception("Unexpected error testing the %s source", kind)
                errors["base"] = "unknown"
            else:
                if reconfiguring:
                    return self.async_update_reload_and_abort(
                        self._get_reconfigure_entry(),
                        unique_id=unique_id,
                        title=title,
                        data=data,
                    )
                return self.async_create_entry(title=title, data=data)
        suggested: Mapping[str, Any] = user_input or {CONF_NAME: DEFAULT_ROOM}
        if reconfiguring and user_input is None:
            entry = self._get_reconfigure_entry()
            suggested = {CONF_NAME: entry.title}
            if entry.data[CONF_SOURCE_TYPE] == kind:
                suggested = {**entry.data, **suggested}
        return self.async_show_form(
            step_id=kind,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=DESCRIPTION_PLACEHOLDERS.get(kind),
        )


def _model_defaults() -> tuple[dict[str, float], list[str]]:
    """Thresholds of the shipped model and the runtime backends installed (blocking)."""
    try:
        thresholds = load_metadata(DEFAULT_MODEL).thresholds
    except ModelError:
        thresholds = {}
    return thresholds, list(available_backends())


class BabyMonitorOptionsFlow(OptionsFlow):
    """Sensitivity, timing, sounds and runtime backend; saving reloads the entry."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the detection settings."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if not user_input.get(CONF_SOUNDS):
                errors[CONF_SOUNDS] = "no_sounds"
            else:
                return self.async_create_entry(data=user_input)
        schema = await _options_schema(self.hass)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, _rounded_thresholds(user_input or self.config_entry.options)
            ),
            errors=errors,
        )


def _rounded_thresholds(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with the thresholds shown to the slider's step (0.58, not 0.5797354578971864)."""
    return {
        key: round(value, THRESHOLD_DECIMALS)
        if key in THRESHOLD_OPTIONS.values() and isinstance(value, float)
        else value
        for key, value in values.items()
    }


async def _options_schema(hass: HomeAssistant) -> vol.Schema:
    """Options form; defaults come from the shipped model, rounded to the slider's step."""
    thresholds, backends = await hass.async_add_executor_job(_model_defaults)
    threshold = NumberSelector(
        NumberSelectorConfig(
            min=0.05,
            max=0.99,
            step=10**-THRESHOLD_DECIMALS,
            mode=NumberSelectorMode.SLIDER,
        )
    )

    def seconds(maximum: float, step: float) -> NumberSelector:
        return NumberSelector(
            NumberSelectorConfig(
                min=0,
                max=maximum,
                step=step,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        )

    return vol.Schema(
        {
            **{
                vol.Required(
                    key,
                    default=round(
                        thresholds.get(label, FALLBACK_THRESHOLD), THRESHOLD_DECIMALS
                    ),
                ): threshold
                for label, key in THRESHOLD_OPTIONS.items()
            },
            vol.Required(CONF_CONFIRM_S, default=DEFAULT_CONFIRM_S): seconds(60, 0.5),
            vol.Required(CONF_HOLD_S, default=DEFAULT_HOLD_S): seconds(300, 0.5),
            vol.Required(CONF_SOUNDS, default=list(SOUNDS)): SelectSelector(
                SelectSelectorConfig(
                    options=list(SOUNDS),
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                    translation_key=CONF_SOUNDS,
                )
            ),
            vol.Required(CONF_HOP_S, default=DEFAULT_HOP_S): NumberSelector(
                NumberSelectorConfig(
                    min=0.25,
                    max=5,
                    step=0.25,
                    unit_of_measurement="s",
                    mode=NumberSelectorMode.BOX,
                )
            ),
            vol.Required(CONF_BACKEND, default=BACKEND_AUTO): SelectSelector(
                SelectSelectorConfig(
                    options=[BACKEND_AUTO, *backends],
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key=CONF_BACKEND,
                )
            ),
            vol.Required(
                CONF_SAVE_CLIPS, default=DEFAULT_SAVE_CLIPS
            ): BooleanSelector(),
            vol.Required(
                CONF_CLIP_RETENTION_DAYS, default=DEFAULT_CLIP_RETENTION_DAYS
            ): NumberSelector(
                NumberSelectorConfig(
                    min=1,
                    max=365,
                    step=1,
                    unit_of_measurement="d",
                    mode=NumberSelectorMode.BOX,
                )
            ),
            vol.Required(
                CONF_CLIP_MAX_SIZE_MB, default=DEFAULT_CLIP_MAX_SIZE_MB
            ): NumberSelector(
                NumberSelectorConfig(
                    min=10,
                    max=100_000,
                    step=10,
                    unit_of_measurement="MB",
                    mode=NumberSelectorMode.BOX,
                )
            ),
            vol.Required(
                CONF_KEEP_CLIPS_ON_REMOVE, default=DEFAULT_KEEP_CLIPS_ON_REMOVE
            ): BooleanSelector(),
        }
    )
