"""The live picture: drawn only when fetched, refreshed only while someone looks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
import io
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.baby_monitor.engine.spectrogram import (
    BACKGROUND,
    COLOURS,
    Layout,
    render_png,
)
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import homeassistant.util.dt as dt_util

from .conftest import Room, changes, record_states, tick, tone, wait_until

IMAGE = "image.nursery_spectrogram"
LISTENING = "switch.nursery_listening"
LAYOUT = Layout()
REFRESH_S = 5.0  # a watched picture is drawn again this often

pytestmark = pytest.mark.usefixtures("no_drops")

type Fetch = Callable[[], Awaitable[npt.NDArray[np.uint8]]]


@pytest.fixture
def render() -> Iterator[MagicMock]:
    """Spy on rendering: every picture drawn goes through it."""
    with patch(
        "custom_components.baby_monitor.image.render_png", wraps=render_png
    ) as spy:
        yield spy


@pytest.fixture
async def fetch(hass_client: ClientSessionGenerator) -> Fetch:
    """Fetch the picture through the image proxy, as the frontend does; returns its pixels."""

    async def _fetch() -> npt.NDArray[np.uint8]:
        client = await hass_client()  # once the integration has set up http
        response = await client.get(f"/api/image_proxy/{IMAGE}")
        assert response.status == 200
        assert response.content_type == "image/png"
        with Image.open(io.BytesIO(await response.read())) as picture:
            assert picture.format == "PNG"
            return np.asarray(picture.convert("RGB"))

    return _fetch


def drawn_seconds(pixels: npt.NDArray[np.uint8]) -> float:
    """How many seconds of the 30 the spectrogram shows (columns that are not background)."""
    spectrogram = pixels[: LAYOUT.spectrogram_height]
    blank = np.all(spectrogram == np.asarray(BACKGROUND, np.uint8), axis=-1).all(axis=0)
    return 30.0 * float((~blank).sum()) / LAYOUT.width


def has_colour(pixels: npt.NDArray[np.uint8], label: str) -> bool:
    """Whether a sound's trace colour is anywhere in the picture."""
    return bool(np.all(pixels == np.asarray(COLOURS[label], np.uint8), axis=-1).any())


def hum(seconds: float = 10.0) -> npt.NDArray[np.float32]:
    """Make a tone for the room to hear (drawn by the real frontend)."""
    return tone(seconds, amplitude=0.3)


async def test_picture_belongs_to_the_room_device(
    hass: HomeAssistant,
    listening_room: Room,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """image.<room>_spectrogram is on the room's device, unavailable until audio arrives."""
    await listening_room.async_start(tone(0.0))  # connects, but no audio arrives
    entry = entity_registry.async_get(IMAGE)
    assert entry is not None
    assert entry.translation_key == "spectrogram"
    assert entry.unique_id == f"{listening_room.entry.entry_id}-spectrogram"
    device = device_registry.async_get_device(
        identifiers={("baby_monitor", listening_room.entry.entry_id)}
    )
    assert device is not None
    assert entry.device_id == device.id
    assert hass.states.get(IMAGE).state == STATE_UNAVAILABLE
    assert hass.states.get(IMAGE).attributes["friendly_name"] == "Nursery Spectrogram"


@pytest.mark.parametrize("script", [[(0.9, 0.05)] * 10])
async def test_fetch_draws_what_was_heard(
    hass: HomeAssistant,
    listening_room: Room,
    fetch: Fetch,
) -> None:
    """After 10 s of audio the proxy serves a PNG with 10 s of spectrogram and both traces."""
    await listening_room.async_listen(hum(10.0))
    assert hass.states.get(IMAGE).state != STATE_UNAVAILABLE

    pixels = await fetch()

    assert pixels.shape == (LAYOUT.height, LAYOUT.width, 3)
    assert drawn_seconds(pixels) == pytest.approx(10.0, abs=0.2)
    panel = pixels[LAYOUT.trace_top :]
    cry_rows = np.flatnonzero(
        np.all(panel == np.asarray(COLOURS["cry"], np.uint8), axis=-1).any(axis=1)
    )
    assert cry_rows.min() == round(0.1 * (LAYOUT.trace_height - 1))  # p = 0.9
    assert has_colour(pixels, "laughter")


async def test_nothing_is_drawn_while_nobody_looks(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
    render: MagicMock,
) -> None:
    """Audio keeps arriving and time passes, but without a fetch no picture and no state change."""
    images = record_states(hass, IMAGE)
    await listening_room.async_listen(hum(20.0))
    settled = changes(images)
    for _ in range(24):
        await tick(hass, freezer, REFRESH_S)
    assert listening_room.runtime.windows_scored == 14
    render.assert_not_called()
    assert changes(images) == settled  # only unavailable -> available, no refreshes
    assert len(settled) == 2


async def test_refreshes_every_few_seconds_while_watched_then_stops(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
    render: MagicMock,
    fetch: Fetch,
) -> None:
    """A fetch starts 5-s refreshes; each refresh is fetched again; 30 s unfetched stops them."""
    await listening_room.async_listen(hum())
    images = record_states(hass, IMAGE)

    await fetch()
    assert render.call_count == 1
    for _ in range(3):  # a viewer: the frontend fetches after every new state
        await tick(hass, freezer, REFRESH_S)
        await fetch()
    assert len(changes(images)) == 3
    refreshed = [dt_util.parse_datetime(state) for state in changes(images)]
    assert all(
        later - earlier == timedelta(seconds=5)
        for earlier, later in zip(refreshed, refreshed[1:], strict=False)
    )
    assert render.call_count == 4

    await fetch()  # a second viewer of the same picture
    assert render.call_count == 4

    for _ in range(12):  # the viewer leaves
        await tick(hass, freezer, REFRESH_S)
    assert len(changes(images)) == 3 + 5  # 5, 10, 15, 20 and 25 s after the last fetch
    assert render.call_count == 4

    await fetch()  # someone looks again: a fresh picture and refreshes resume
    assert render.call_count == 5
    await tick(hass, freezer, REFRESH_S)
    assert len(changes(images)) == 9


async def test_picture_starts_over_after_a_reconnect(
    hass: HomeAssistant,
    listening_room: Room,
    freezer: FrozenDateTimeFactory,
    fetch: Fetch,
) -> None:
    """A dropped stream blanks the picture (unavailable); after reconnecting only new audio shows."""
    listening_room.sources.end = "fail"
    runtime = await listening_room.async_listen(hum(12.0))
    await wait_until(hass, lambda: not runtime.available)
    assert hass.states.get(IMAGE).state == STATE_UNAVAILABLE
    assert drawn_seconds(await fetch()) == 0.0

    listening_room.sources.end = "hold"
    # new sound, not a replay of the first
    listening_room.sources.audio = tone(8.0, amplitude=0.3, freq=330.0)
    await tick(hass, freezer, 1.0)  # the reconnect backoff
    await wait_until(hass, lambda: len(listening_room.sources.created) == 2)
    await listening_room.async_heard()
    assert hass.states.get(IMAGE).state != STATE_UNAVAILABLE
    assert drawn_seconds(await fetch()) == pytest.approx(8.0, abs=0.2)


async def test_pausing_blanks_the_picture(
    hass: HomeAssistant,
    listening_room: Room,
    fetch: Fetch,
) -> None:
    """Turning listening off forgets what was heard: the picture is blank, the entity available."""
    await listening_room.async_listen(hum())
    assert drawn_seconds(await fetch()) == pytest.approx(10.0, abs=0.2)

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: LISTENING}, blocking=True
    )
    await hass.async_block_till_done()

    assert hass.states.get(IMAGE).state != STATE_UNAVAILABLE
    assert drawn_seconds(await fetch()) == 0.0
