"""Turn a config entry's source settings into an engine audio source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.camera import async_get_stream_source
from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import (
    CONF_CAMERA,
    CONF_DEVICE,
    CONF_SOURCE_TYPE,
    CONF_URL,
    DRIVER_ALSA,
    DRIVER_PULSE,
    DRIVER_SOUNDDEVICE,
    SOURCE_CAMERA,
    SOURCE_URL,
)
from .engine.pipeline import DEFAULT_HOP_S
from .engine.sources import (
    AudioSource,
    FFmpegSource,
    SoundDeviceSource,
    SourceError,
    redact_url,
    strip_credentials,
    validate_url,
)
from .engine.sources.ffmpeg import PACE_LEAD_S
from .engine.sources.urls import NETWORK_SCHEMES


def split_device(value: str) -> tuple[str, str]:
    """Split a stored microphone "<driver>:<device>" into its parts; SourceError if malformed."""
    driver, sep, device = value.partition(":")
    if (
        not sep
        or not device
        or driver not in (DRIVER_PULSE, DRIVER_ALSA, DRIVER_SOUNDDEVICE)
    ):
        raise SourceError(
            "device_not_found",
            f"microphone {value!r} is not <pulse|alsa|sounddevice>:<device name>",
        )
    return driver, device


def source_unique_id(data: Mapping[str, Any]) -> str:
    """Identify a source so that the same one cannot be added twice (credentials left out)."""
    kind = data[CONF_SOURCE_TYPE]
    if kind == SOURCE_CAMERA:
        return f"camera:{data[CONF_CAMERA]}"
    if kind == SOURCE_URL:
        return f"url:{strip_credentials(data[CONF_URL])}"
    return f"microphone:{data[CONF_DEVICE]}"


def describe_source(data: Mapping[str, Any]) -> str:
    """Where the audio comes from, for logs, repairs and diagnostics (a URL as scheme://host:port)."""
    kind = data[CONF_SOURCE_TYPE]
    if kind == SOURCE_CAMERA:
        return str(data[CONF_CAMERA])
    if kind == SOURCE_URL:
        return redact_url(data[CONF_URL])
    return str(data[CONF_DEVICE])


def _is_file(url: str) -> bool:
    """Tell whether a URL is a local file (played at real speed, like a live stream)."""
    scheme, sep, _rest = url.partition("://")
    return not sep or scheme.lower() not in NETWORK_SCHEMES


def _check_path_allowed(hass: HomeAssistant, url: str) -> None:
    """Refuse a file outside the folders Home Assistant may read (allowlist_external_dirs)."""
    validate_url(url)
    path = url[len("file:") :] if url.lower().startswith("file:") else url
    # a few stat calls on the loop, as camera.snapshot does
    if not hass.config.is_allowed_path(path):
        raise SourceError(
            "path_not_allowed",
            f"{url} is outside the folders Home Assistant may read",
        )


async def async_create_source(
    hass: HomeAssistant, data: Mapping[str, Any], block_s: float = DEFAULT_HOP_S
) -> AudioSource:
    """Build the audio source an entry describes; SourceError when it cannot exist.

    It yields blocks of `block_s`: the engine computes only when a window is due, so blocks
    as long as the hop between windows delay nothing, and the event loop handles a fifth as
    many as 0.1-s blocks.
    """
    ffmpeg = get_ffmpeg_manager(hass).binary
    kind = data[CONF_SOURCE_TYPE]
    if kind == SOURCE_CAMERA:
        entity_id = data[CONF_CAMERA]
        try:
            url = await async_get_stream_source(hass, entity_id)
        except HomeAssistantError as err:
            raise SourceError("cannot_connect", f"{entity_id}: {err}") from err
        if not url:
            raise SourceError(
                "no_stream", f"{entity_id} gives no stream (only still pictures)"
            )
        source = FFmpegSource(
            url, ffmpeg=ffmpeg, pace_lead_s=PACE_LEAD_S, block_s=block_s
        )
        source.name = f"{entity_id} ({source.name})"
        return source
    if kind == SOURCE_URL:
        url = data[CONF_URL]
        if _is_file(url):
            _check_path_allowed(hass, url)
            return FFmpegSource(url, ffmpeg=ffmpeg, realtime=True, block_s=block_s)
        return FFmpegSource(
            url, ffmpeg=ffmpeg, pace_lead_s=PACE_LEAD_S, block_s=block_s
        )
    driver, device = split_device(data[CONF_DEVICE])
    if driver == DRIVER_SOUNDDEVICE:
        return SoundDeviceSource(device, block_s=block_s)
    return FFmpegSource.microphone(
        device,
        DRIVER_PULSE if driver == DRIVER_PULSE else DRIVER_ALSA,
        ffmpeg=ffmpeg,
        block_s=block_s,
    )
