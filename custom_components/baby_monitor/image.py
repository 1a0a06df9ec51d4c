"""The live picture: the last 30 s as a mel spectrogram with the probability traces."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Final

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval
import homeassistant.util.dt as dt_util

from .data import BabyMonitorConfigEntry
from .engine.pipeline import Scored, Window
from .engine.spectrogram import SpectrogramHistory, levels_for, render_png
from .entity import BabyMonitorEntity

PARALLEL_UPDATES = 0

HISTORY_S: Final = 30.0
REFRESH_INTERVAL: Final = timedelta(seconds=5)
"""How often the picture moves on while someone looks at it."""
WATCHED_FOR: Final = timedelta(seconds=30)
"""A picture not fetched for this long has no viewer: refreshing stops until the next fetch."""

SPECTROGRAM = ImageEntityDescription(key="spectrogram", translation_key="spectrogram")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: BabyMonitorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the spectrogram image."""
    async_add_entities([BabyMonitorSpectrogram(hass, entry, SPECTROGRAM)])


class BabyMonitorSpectrogram(BabyMonitorEntity, ImageEntity):
    """What the monitor hears, drawn only when fetched and refreshed only while watched.

    Every scored window adds its new frames to a 30-s history (microseconds). A fetch renders
    the history in the executor and starts a timer that bumps `image_last_updated` every few
    seconds, so the frontend fetches again; once nobody has fetched for WATCHED_FOR, the timer
    stops and nothing more is rendered or written.
    """

    _attr_content_type = "image/png"

    def __init__(
        self,
        hass: HomeAssistant,
        entry: BabyMonitorConfigEntry,
        description: ImageEntityDescription,
    ) -> None:
        """Set up an empty history sized by the model's frontend."""
        BabyMonitorEntity.__init__(self, entry, description)
        ImageEntity.__init__(self, hass)
        frontend = self.runtime.model.meta.frontend
        self._bands = frontend.heard_mels
        self.history = SpectrogramHistory(
            self._bands, frontend.hop_length / frontend.sample_rate, HISTORY_S
        )
        self._levels = levels_for(frontend)
        self._attr_image_last_updated = dt_util.utcnow()
        self._last_fetch: datetime | None = None
        self._stop_refresh: CALLBACK_TYPE | None = None
        self._png: tuple[datetime | None, bytes] | None = None
        self._render_lock = asyncio.Lock()
        self._written_available: bool | None = None

    async def async_added_to_hass(self) -> None:
        """Collect every scored window; stop refreshing when removed."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.async_add_window_listener(self._handle_window)
        )
        self.async_on_remove(self._async_stop_refresh)

    @callback
    def async_write_ha_state(self) -> None:
        """Write the state, remembering the availability written."""
        self._written_available = self.available
        super().async_write_ha_state()

    @callback
    def _handle_update(self) -> None:
        """Forget the history when audio stops; a new picture when it or availability changes.

        Windows reach the picture through its window listener, not through this update.
        """
        changed = self.available != self._written_available
        if (not self.runtime.listening or not self.runtime.available) and len(
            self.history
        ):
            self.history.reset()
            changed = True
        if changed:
            self._attr_image_last_updated = dt_util.utcnow()
            self.async_write_ha_state()

    @callback
    def _handle_window(self, window: Window, scored: Scored) -> None:
        """Keep the window's new frames and its probabilities."""
        self.history.push(
            window.t, window.features[:, : self._bands], scored.probabilities
        )

    async def async_image(self) -> bytes | None:
        """Render the last 30 s (once per update, however many viewers) and keep refreshing."""
        self._last_fetch = dt_util.utcnow()
        if self._stop_refresh is None:
            self._stop_refresh = async_track_time_interval(
                self.hass,
                self._async_refresh,
                REFRESH_INTERVAL,
                name=f"{self.entity_id} refresh",
            )
        async with self._render_lock:
            updated = self.image_last_updated
            if self._png is None or self._png[0] != updated:
                thresholds = {
                    label: config.threshold
                    for label, config in self.runtime.settings.detectors.items()
                }
                picture = self.history.picture(thresholds)
                png = await self.hass.async_add_executor_job(
                    render_png, picture, None, self._levels
                )
                self._png = (updated, png)
            return self._png[1]

    @callback
    def _async_refresh(self, _fired: datetime) -> None:
        """Move the picture on while it is fetched; stop once nobody has looked for a while."""
        now = dt_util.utcnow()
        if self._last_fetch is None or now - self._last_fetch >= WATCHED_FOR:
            self._async_stop_refresh()
            return
        if self.available:
            self._attr_image_last_updated = now
            self.async_write_ha_state()

    @callback
    def _async_stop_refresh(self) -> None:
        """Stop the timer and drop the cached picture (the next fetch draws a fresh one)."""
        if self._stop_refresh is not None:
            self._stop_refresh()
            self._stop_refresh = None
        self._png = None
