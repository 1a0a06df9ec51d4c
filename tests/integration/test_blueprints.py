"""The blueprints, loaded by Home Assistant's blueprint machinery and run as automations.

The automations react to the integration's real entities, driven by a scripted model over a
live fake source; the speaker, scenes and phones are recorded actions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
import shutil
from time import sleep
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
import voluptuous as vol

from custom_components.baby_monitor.const import DOMAIN
from custom_components.baby_monitor.engine.detector import ONSET_FILL
from custom_components.baby_monitor.runtime import BabyMonitorRuntime
from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    ValidationStatus,
    async_validate_config_item,
)
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.blueprint import (
    Blueprint,
    BlueprintInputs,
    MissingInput,
    importer,
)
from homeassistant.components.homeassistant.scene import CREATE_SCENE_SCHEMA
from homeassistant.components.media_player import (
    ATTR_MEDIA_VOLUME_LEVEL,
    MEDIA_PLAYER_PLAY_MEDIA_SCHEMA,
)
from homeassistant.components.notify import NOTIFY_SERVICE_SCHEMA
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
    selector,
)
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, slugify, yaml as yaml_util

from . import setup_integration
from .conftest import BLOCK, ENTRY_ID, ScriptedRuntime, silence

BLUEPRINTS = Path(__file__).parents[2] / "blueprints" / "automation" / "baby_monitor"
FILES = ("soothe_on_cry.yaml", "notify_on_cry.yaml", "laughter_moments.yaml")
REPOSITORY = "https://github.com/baby-monitor/baby_monitor/blob/main/"

CRYING = "binary_sensor.nursery_crying"
LEARNT = "sensor.nursery_learnt_examples"
SPEAKER = "media_player.nursery_speaker"
SCENE = "scene.baby_monitor_soothe_nursery_speaker"
WHITE_NOISE = "media-source://media_source/local/white_noise.mp3"
LULLABY = "media-source://media_source/local/lullaby.mp3"
PODCAST = "https://example.com/podcast.mp3"


def media(content_id: str) -> dict[str, Any]:
    """Make the value the media selector gives for a file picked in the media browser."""
    return {
        "entity_id": SPEAKER,
        "media_content_id": content_id,
        "media_content_type": "audio/mpeg",
        "metadata": {"title": content_id.rsplit("/", 1)[-1]},
    }


async def run_loop() -> None:
    """Let the event loop run what is ready.

    Not `async_block_till_done`: it waits for automation runs, and these wait for minutes.
    """
    for _ in range(100):
        await asyncio.sleep(0)


async def until(
    hass: HomeAssistant, predicate: Callable[[], bool], timeout: float = 30.0
) -> None:
    """Run the loop and the executor until predicate holds, then let the loop settle.

    Counts real pauses rather than reading clocks, so it also works under a frozen clock.
    """
    for _ in range(round(timeout / 0.002)):
        await run_loop()
        if predicate():
            await run_loop()
            return
        await hass.async_add_executor_job(sleep, 0.002)
    raise AssertionError("condition not reached in time")


# --- the room: a live source the test talks into -------------------------------------------


class LiveSource:
    """An audio source whose audio arrives when the test feeds it; in between it holds."""

    name = "live"

    def __init__(self) -> None:
        """Start with nothing to play."""
        self._blocks: asyncio.Queue[npt.NDArray[np.float32] | None] = asyncio.Queue()

    async def start(self) -> None:
        """Open (nothing to do)."""

    async def blocks(self) -> AsyncIterator[npt.NDArray[np.float32]]:
        """Yield fed audio in 0.1-s blocks until stopped."""
        while (block := await self._blocks.get()) is not None:
            yield block

    def feed(self, audio: npt.NDArray[np.float32]) -> None:
        """Queue audio to be heard."""
        for offset in range(0, len(audio), BLOCK):
            self._blocks.put_nowait(audio[offset : offset + BLOCK])

    @property
    def played(self) -> bool:
        """Whether everything fed has been read."""
        return self._blocks.empty()

    async def stop(self) -> None:
        """Close."""
        self._blocks.put_nowait(None)


@pytest.fixture
def live_sources() -> Generator[list[LiveSource]]:
    """Patch the runtime's source creation with live sources; returns those made."""
    created: list[LiveSource] = []

    async def create(hass: HomeAssistant, data: Any) -> LiveSource:
        created.append(LiveSource())
        return created[-1]

    with patch("custom_components.baby_monitor.runtime.async_create_source", create):
        yield created


@dataclass
class Baby:
    """The baby in the nursery: makes the model hear crying, laughter or quiet."""

    hass: HomeAssistant
    runtime: BabyMonitorRuntime
    source: LiveSource
    model: ScriptedRuntime

    async def sounds(self, cry: float, laughter: float, seconds: float) -> None:
        """Score every window from now on as (cry, laughter); play `seconds` and wait for it."""
        del self.model.script[self.model.calls :]
        self.model.script.extend([(cry, laughter)] * 100_000)
        self.source.feed(silence(seconds))
        await until(
            self.hass,
            lambda: self.source.played and self.runtime.idle,
        )

    async def cries(self) -> None:
        """Start crying (crying turns on at once: no confirm time)."""
        await self.sounds(0.99, 0.0, 2.0)
        assert self.hass.states.get(CRYING).state == STATE_ON

    async def calms(self) -> None:
        """Stop crying (crying turns off after the 3-s hold time)."""
        await self.sounds(0.01, 0.0, 5.0)
        assert self.hass.states.get(CRYING).state == STATE_OFF


@pytest.fixture
async def baby(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    live_sources: list[LiveSource],
    scripted_model: Callable[[], ScriptedRuntime],
    no_drops: None,
) -> Baby:
    """Set up the Nursery, monitored by the integration and quiet (its first window heard)."""
    await setup_integration(hass, mock_config_entry)
    baby = Baby(
        hass, mock_config_entry.runtime_data.runtime, live_sources[-1], scripted_model()
    )
    await baby.sounds(0.0, 0.0, 7.0)  # the first window needs 7 s of audio
    assert hass.states.get(CRYING).state == STATE_OFF
    return baby


@pytest.fixture
def nursery(
    baby: Baby, mock_config_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> str:
    """Device id of the Nursery."""
    device = device_registry.async_get_device(
        identifiers={(DOMAIN, mock_config_entry.entry_id)}
    )
    assert device is not None
    return device.id


# --- what the automations act on: recorded actions ----------------------------------------


class Home:
    """Records the speaker and scene actions in order; the speaker follows its volume."""

    SCHEMAS = {
        ("media_player", "play_media"): cv.make_entity_service_schema(
            MEDIA_PLAYER_PLAY_MEDIA_SCHEMA
        ),
        ("media_player", "volume_set"): cv.make_entity_service_schema(
            {vol.Required(ATTR_MEDIA_VOLUME_LEVEL): cv.small_float}
        ),
        ("media_player", "media_stop"): cv.make_entity_service_schema({}),
        ("scene", "create"): CREATE_SCENE_SCHEMA,
        ("scene", "turn_on"): cv.make_entity_service_schema({}),
    }

    def __init__(self, hass: HomeAssistant) -> None:
        """Put a speaker playing a podcast at 20 % in the nursery."""
        self.hass = hass
        self.calls: list[ServiceCall] = []
        hass.states.async_set(
            SPEAKER,
            "playing",
            {"volume_level": 0.2, "media_content_id": PODCAST},
        )
        for (domain, service), schema in self.SCHEMAS.items():
            hass.services.async_register(domain, service, self._record, schema=schema)

    @callback
    def _record(self, call: ServiceCall) -> None:
        self.calls.append(call)
        if call.service == "volume_set":
            for entity_id in call.data["entity_id"]:
                state = self.hass.states.get(entity_id)
                self.hass.states.async_set(
                    entity_id,
                    state.state,
                    {**state.attributes, "volume_level": call.data["volume_level"]},
                )

    def actions(self) -> list[tuple[Any, ...]]:
        """Sum the actions up so far: what was done, with the value that matters."""
        done: list[tuple[Any, ...]] = []
        for call in self.calls:
            if call.domain == "scene":
                if call.service == "create":
                    done.append(
                        (
                            "scene.create",
                            call.data["scene_id"],
                            call.data["snapshot_entities"],
                        )
                    )
                else:
                    done.append(("scene.turn_on", call.data["entity_id"]))
                continue
            assert call.data["entity_id"] == [SPEAKER]
            if call.service == "volume_set":
                done.append(("volume_set", call.data["volume_level"]))
            elif call.service == "play_media":
                assert call.data["media_content_type"] == "audio/mpeg"
                done.append(("play_media", call.data["media_content_id"]))
            else:
                done.append((call.service,))
        return done

    def new_actions(self, seen: int) -> list[tuple[Any, ...]]:
        """Actions after the first `seen`."""
        return self.actions()[seen:]


@pytest.fixture
def home(hass: HomeAssistant) -> Home:
    """Record the nursery's speaker and the scenes."""
    return Home(hass)


PHONES = ("Mum's Phone", "Dad's Pixel", "Grandma's iPad")


@dataclass
class Phone:
    """A phone with the Companion app: its device and the notifications it got."""

    device_id: str
    notifications: list[ServiceCall]


@pytest.fixture
def phones(hass: HomeAssistant, device_registry: dr.DeviceRegistry) -> dict[str, Phone]:
    """Three phones registered by the Companion app, their notify actions recorded."""
    phones: dict[str, Phone] = {}
    for name in PHONES:
        entry = MockConfigEntry(domain="mobile_app", data={"device_name": name})
        entry.add_to_hass(hass)
        device = device_registry.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={("mobile_app", slugify(name))},
            name=name,
        )
        # the name mobile_app's notify platform gives the phone's action
        service = slugify(f"mobile_app_{name}")
        phones[name] = Phone(
            device.id,
            async_mock_service(hass, "notify", service, schema=NOTIFY_SERVICE_SCHEMA),
        )
    return phones


# --- the blueprints ------------------------------------------------------------------------


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Make a config folder with the blueprints where imported blueprints go."""
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints", "automation", "baby_monitor"))
    shutil.copytree(BLUEPRINTS, target)
    return tmp_path


def load_blueprint(file: str) -> Blueprint:
    """Read a blueprint file as Home Assistant does."""
    return Blueprint(
        yaml_util.load_yaml_dict(BLUEPRINTS / file),
        path=file,
        expected_domain=AUTOMATION_DOMAIN,
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


async def use_blueprint(
    hass: HomeAssistant, file: str, inputs: dict[str, Any], alias: str
) -> str:
    """Create an automation from a blueprint; returns its entity id.

    Every input is first checked against its selector, as the automation editor would.
    """
    declared = load_blueprint(file).inputs
    for key, value in inputs.items():
        selector.selector(declared[key]["selector"])(value)
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: {
                "id": slugify(alias),
                "alias": alias,
                "use_blueprint": {"path": f"baby_monitor/{file}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    entity_id = f"automation.{slugify(alias)}"
    state = hass.states.get(entity_id)
    assert state is not None, f"{file} did not make a valid automation"
    assert state.state == STATE_ON
    return entity_id


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    """Let time pass."""
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await run_loop()


async def move_to(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, clock: str
) -> None:
    """Move forward to the next time the local clock reads `clock` (HH:MM:SS)."""
    now = dt_util.now()
    target = datetime.combine(now.date(), time.fromisoformat(clock), now.tzinfo)
    while target <= now:
        target += timedelta(days=1)
    freezer.move_to(target)
    async_fire_time_changed(hass)
    await run_loop()


# --- the files -------------------------------------------------------------------------------


@pytest.mark.parametrize("file", FILES)
def test_blueprint_file_is_valid_with_its_own_source_url(file: str) -> None:
    """Each file loads with its !input tags and points at its own path.

    It uses only inputs it declares and declares none it does not use.
    """
    data = yaml_util.load_yaml_dict(BLUEPRINTS / file)
    blueprint = load_blueprint(file)

    assert yaml_util.extract_inputs(data) == set(blueprint.inputs)
    assert blueprint.metadata["source_url"] == (
        f"{REPOSITORY}blueprints/automation/baby_monitor/{file}"
    )
    assert blueprint.validate() is None  # this Home Assistant is new enough


@pytest.mark.parametrize("file", FILES)
def test_input_defaults_are_valid_for_their_selectors(file: str) -> None:
    """A default is something its selector could have given (an empty one: not chosen)."""
    for key, spec in load_blueprint(file).inputs.items():
        if "default" not in spec or spec["default"] in ({}, "", []):
            continue
        try:
            selector.selector(spec["selector"])(spec["default"])
        except vol.Invalid as err:
            pytest.fail(f"default of {key}: {err}")


@pytest.mark.parametrize(
    ("file", "required"),
    [
        ("soothe_on_cry.yaml", "crying_sensor, media_player, soothing_media"),
        ("notify_on_cry.yaml", "crying_sensor, notify_devices"),
        ("laughter_moments.yaml", "baby_monitor, notify_devices"),
    ],
)
def test_only_the_essential_inputs_must_be_filled_in(file: str, required: str) -> None:
    """Without inputs, the blueprint asks for the room, the speaker or phones, the sound.

    Notify on cry needs no speaker: a parent may want phone alerts only.
    """
    inputs = BlueprintInputs(
        load_blueprint(file), {"use_blueprint": {"path": file, "input": {}}}
    )

    with pytest.raises(MissingInput, match=f"Missing input {required}$"):
        inputs.validate()


# The inputs a parent must fill in, nothing else.
REQUIRED_INPUTS: dict[str, dict[str, Any]] = {
    "soothe_on_cry.yaml": {
        "crying_sensor": CRYING,
        "media_player": SPEAKER,
        "soothing_media": media(WHITE_NOISE),
    },
    "notify_on_cry.yaml": {
        "crying_sensor": CRYING,
        "notify_devices": ["0123456789abcdef0123456789abcdef"],
    },
    "laughter_moments.yaml": {
        "baby_monitor": "fedcba9876543210fedcba9876543210",
        "notify_devices": ["0123456789abcdef0123456789abcdef"],
    },
}


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize("file", FILES)
async def test_automation_editor_saves_with_only_the_required_inputs(
    hass: HomeAssistant, file: str
) -> None:
    """The editor's validation takes the required inputs alone: every other has a default.

    This is the check behind the editor's Save ("Message malformed: Missing input ...").
    """
    assert await async_setup_component(hass, AUTOMATION_DOMAIN, {})
    config = {
        "id": "first_hour",
        "alias": "First hour",
        "use_blueprint": {
            "path": f"baby_monitor/{file}",
            "input": REQUIRED_INPUTS[file],
        },
    }

    validated = await async_validate_config_item(hass, "first_hour", config)

    assert validated is not None
    assert validated.validation_status is ValidationStatus.OK
    assert "triggers" in validated  # the blueprint was filled in


async def test_blueprints_are_listed_by_home_assistant(
    hass: HomeAssistant, config_dir: Path
) -> None:
    """Home Assistant's automation blueprints list the three, all loaded without error."""
    assert await async_setup_component(hass, AUTOMATION_DOMAIN, {})
    found = await async_get_blueprints(hass).async_get_blueprints()

    ours = {path: bp for path, bp in found.items() if path.startswith("baby_monitor/")}
    assert set(ours) == {f"baby_monitor/{file}" for file in FILES}
    for path, blueprint in ours.items():
        assert isinstance(blueprint, Blueprint), f"{path}: {blueprint}"
        assert blueprint.validate() is None


@pytest.mark.parametrize("file", FILES)
async def test_blueprint_imports_from_its_source_url(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, file: str
) -> None:
    """The import button's URL fetches the raw file from GitHub and gives this blueprint."""
    text = (BLUEPRINTS / file).read_text(encoding="utf-8")
    raw = (
        "https://raw.githubusercontent.com/baby-monitor/baby_monitor/main/"
        f"blueprints/automation/baby_monitor/{file}"
    )
    aioclient_mock.get(raw, text=text)
    url = load_blueprint(file).metadata["source_url"]

    imported = await importer.fetch_blueprint_from_url(hass, url)

    assert imported.suggested_filename == f"baby-monitor/{file.removesuffix('.yaml')}"
    assert imported.blueprint.name == load_blueprint(file).name
    assert imported.blueprint.inputs == load_blueprint(file).inputs


async def test_room_pickers_offer_the_integrations_entities(
    hass: HomeAssistant,
    baby: Baby,
    nursery: str,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The pickers offer the integration's real crying sensor and device."""

    def matches(entity_id: str, filters: list[dict[str, Any]]) -> bool:
        entry = entity_registry.async_get(entity_id)
        state = hass.states.get(entity_id)
        device_class = state.attributes.get("device_class")
        return any(
            f.get("integration", entry.platform) == entry.platform
            and entry.domain in f.get("domain", [entry.domain])
            and device_class in f.get("device_class", [device_class])
            for f in filters
        )

    for file in ("soothe_on_cry.yaml", "notify_on_cry.yaml"):
        spec = load_blueprint(file).inputs["crying_sensor"]["selector"]["entity"]
        assert matches(CRYING, spec["filter"])

    spec = load_blueprint("laughter_moments.yaml").inputs["baby_monitor"]["selector"]
    device = device_registry.async_get(nursery)
    entries = {
        hass.config_entries.async_get_entry(entry_id).domain
        for entry_id in device.config_entries
    }
    assert {f["integration"] for f in spec["device"]["filter"]} <= entries


# --- Soothe on cry ---------------------------------------------------------------------------


def soothe_inputs(**inputs: Any) -> dict[str, Any]:
    """Give the soothe inputs: nursery, speaker, white noise, defaults otherwise."""
    return {
        "crying_sensor": CRYING,
        "media_player": SPEAKER,
        "soothing_media": media(WHITE_NOISE),
        **inputs,
    }


@pytest.mark.usefixtures("config_dir")
async def test_soothe_plays_escalates_then_stops_and_restores_after_calm(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, baby: Baby, home: Home
) -> None:
    """Crying plays white noise, louder with time; calm stops it and restores the speaker.

    It starts at 25 %; every 3 minutes of crying it goes up 10 %, to at most 50 %; 5 calm
    minutes later it stops and the speaker gets its podcast back.
    """
    soothe = await use_blueprint(hass, "soothe_on_cry.yaml", soothe_inputs(), "Soothe")

    await baby.cries()
    assert home.actions() == [
        ("scene.create", "baby_monitor_soothe_nursery_speaker", [SPEAKER]),
        ("volume_set", 0.25),
        ("play_media", WHITE_NOISE),
    ]
    seen = len(home.calls)

    await tick(hass, freezer, timedelta(minutes=3) - timedelta(seconds=2))
    assert home.new_actions(seen) == []  # not yet

    await tick(hass, freezer, timedelta(seconds=2))
    assert home.new_actions(seen) == [("volume_set", 0.35)]

    for _ in range(3):
        await tick(hass, freezer, timedelta(minutes=3))
    assert home.new_actions(seen) == [
        ("volume_set", 0.35),
        ("volume_set", 0.45),
        ("volume_set", 0.5),  # the maximum; no step after it
    ]
    seen = len(home.calls)

    await baby.calms()
    await tick(hass, freezer, timedelta(minutes=5) - timedelta(seconds=2))
    assert home.new_actions(seen) == []  # still soothing

    await tick(hass, freezer, timedelta(seconds=2))
    assert home.new_actions(seen) == [("media_stop",), ("scene.turn_on", [SCENE])]
    assert hass.states.get(soothe).attributes["current"] == 0  # the run is over


@pytest.mark.usefixtures("config_dir")
async def test_soothe_keeps_playing_when_crying_resumes_before_the_calm_time(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, baby: Baby, home: Home
) -> None:
    """Crying again 4 calm minutes in is the same episode: no new snapshot, no stop.

    The step-up timer starts again with the new crying, the calm time with the next calm.
    """
    await use_blueprint(hass, "soothe_on_cry.yaml", soothe_inputs(), "Soothe")

    await baby.cries()
    await tick(hass, freezer, timedelta(minutes=1))
    await baby.calms()
    await tick(hass, freezer, timedelta(minutes=4))
    await baby.cries()
    await tick(hass, freezer, timedelta(minutes=2))
    assert home.actions() == [
        ("scene.create", "baby_monitor_soothe_nursery_speaker", [SPEAKER]),
        ("volume_set", 0.25),
        ("play_media", WHITE_NOISE),
    ]

    await tick(hass, freezer, timedelta(minutes=1))  # 3 minutes of this crying
    await baby.calms()
    await tick(hass, freezer, timedelta(minutes=4))
    assert home.new_actions(3) == [("volume_set", 0.35)]

    await tick(hass, freezer, timedelta(minutes=1))
    assert home.new_actions(3) == [
        ("volume_set", 0.35),
        ("media_stop",),
        ("scene.turn_on", [SCENE]),
    ]


@pytest.mark.usefixtures("config_dir")
async def test_soothe_switches_to_the_second_sound_when_crying_goes_on(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, baby: Baby, home: Home
) -> None:
    """With a second sound and no volume step, the first step switches to the lullaby once."""
    await use_blueprint(
        hass,
        "soothe_on_cry.yaml",
        soothe_inputs(escalation_media=media(LULLABY), volume_step=0),
        "Soothe",
    )

    await baby.cries()
    for _ in range(3):
        await tick(hass, freezer, timedelta(minutes=3))

    assert home.new_actions(1) == [
        ("volume_set", 0.25),
        ("play_media", WHITE_NOISE),
        ("play_media", LULLABY),
    ]


# --- Notify on cry ---------------------------------------------------------------------------


def notify_inputs(phones: dict[str, Phone], **inputs: Any) -> dict[str, Any]:
    """Give the notify inputs: nursery, Mum's and Dad's phones, defaults otherwise."""
    return {
        "crying_sensor": CRYING,
        "notify_devices": [
            phones["Mum's Phone"].device_id,
            phones["Dad's Pixel"].device_id,
        ],
        "media_player": SPEAKER,
        "soothing_media": media(WHITE_NOISE),
        **inputs,
    }


def verdict_buttons(hass: HomeAssistant) -> list[dict[str, str]]:
    """Give the "Not a cry" and "Was a cry" buttons of the nursery's cry going on now."""
    episode = hass.states.get(CRYING).attributes["episode"]
    prefix = f"BABY_MONITOR_TEACH_{CRYING}:"
    return [
        {"action": f"{prefix}not_this_sound:{episode}", "title": "Not a cry"},
        {"action": f"{prefix}this_sound:{episode}", "title": "Was a cry"},
    ]


def notified(phones: dict[str, Phone]) -> dict[str, int]:
    """How many notifications each phone got."""
    return {name: len(phone.notifications) for name, phone in phones.items()}


def crying_for(baby: Baby, on_s: float) -> str:
    """Give the message sent once the crying sensor has been on `on_s` seconds.

    It counts from the sensor's started_at: the sound's estimated start, ONSET_FILL of a
    window before the first window that heard it ended (crying counts at once here).
    """
    seconds = int(on_s + ONSET_FILL * baby.model.meta.window_s)
    return f"The baby has been crying for {seconds} seconds."


@pytest.mark.usefixtures("config_dir", "home")
async def test_notify_after_crying_for_a_while_then_cooldown(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
) -> None:
    """The chosen phones are told after 30 s of crying, then not within the cooldown.

    Crying again within the 10-minute cooldown is not told; after it, it is.
    """
    await move_to(hass, freezer, "14:00:00")
    await use_blueprint(hass, "notify_on_cry.yaml", notify_inputs(phones), "Notify")

    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=28))
    assert notified(phones) == {"Mum's Phone": 0, "Dad's Pixel": 0, "Grandma's iPad": 0}

    await tick(hass, freezer, timedelta(seconds=2))
    assert notified(phones) == {"Mum's Phone": 1, "Dad's Pixel": 1, "Grandma's iPad": 0}
    call = phones["Mum's Phone"].notifications[0]
    assert call.data["title"] == "Nursery"
    assert call.data["message"] == crying_for(baby, 30)
    assert call.data["data"]["tag"] == f"baby_monitor_cry_{CRYING}"
    assert call.data["data"]["actions"] == [
        {"action": f"BABY_MONITOR_SOOTHE_{CRYING}", "title": "Play soothing sound"},
        *verdict_buttons(hass),
    ]

    await baby.calms()
    await tick(hass, freezer, timedelta(minutes=5))
    await baby.cries()
    await tick(hass, freezer, timedelta(minutes=1))
    assert notified(phones)["Mum's Phone"] == 1  # 5.5 minutes after: cooling down

    await baby.calms()
    await tick(hass, freezer, timedelta(minutes=4))
    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))
    assert notified(phones) == {"Mum's Phone": 2, "Dad's Pixel": 2, "Grandma's iPad": 0}


@pytest.mark.usefixtures("config_dir", "home")
async def test_short_cries_are_not_notified(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
) -> None:
    """Crying that stops before 30 s is not told, however often it happens."""
    await use_blueprint(hass, "notify_on_cry.yaml", notify_inputs(phones), "Notify")

    for _ in range(3):
        await baby.cries()
        await tick(hass, freezer, timedelta(seconds=20))
        await baby.calms()
        await tick(hass, freezer, timedelta(seconds=20))

    assert notified(phones)["Mum's Phone"] == 0


@pytest.mark.parametrize(
    ("quiet_start", "quiet_end", "clock", "told"),
    [
        ("22:00:00", "07:00:00", "23:30:00", False),  # quiet hours across midnight
        ("22:00:00", "07:00:00", "02:00:00", False),
        ("22:00:00", "07:00:00", "06:58:00", False),
        ("22:00:00", "07:00:00", "07:00:00", True),
        ("22:00:00", "07:00:00", "21:58:00", True),
        ("13:00:00", "15:00:00", "14:00:00", False),  # quiet hours within a day
        ("13:00:00", "15:00:00", "15:30:00", True),
        ("00:00:00", "00:00:00", "03:00:00", True),  # same start and end: none
    ],
)
@pytest.mark.usefixtures("config_dir", "home")
async def test_no_notification_during_quiet_hours(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
    quiet_start: str,
    quiet_end: str,
    clock: str,
    told: bool,
) -> None:
    """Crying that starts at `clock` is told only outside the quiet hours."""
    await move_to(hass, freezer, clock)
    await use_blueprint(
        hass,
        "notify_on_cry.yaml",
        notify_inputs(phones, quiet_start=quiet_start, quiet_end=quiet_end),
        "Notify",
    )

    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))

    assert notified(phones)["Mum's Phone"] == int(told)


@pytest.mark.usefixtures("config_dir")
async def test_notification_button_plays_the_soothing_sound(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
    home: Home,
) -> None:
    """Pressing the notification's button plays the soothing sound on the speaker.

    Other buttons do nothing; the button works during quiet hours too.
    """
    await move_to(hass, freezer, "20:00:00")
    await use_blueprint(
        hass,
        "notify_on_cry.yaml",
        notify_inputs(phones, volume=30, quiet_start="21:00:00", quiet_end="06:00:00"),
        "Notify",
    )
    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))
    button = phones["Mum's Phone"].notifications[0].data["data"]["actions"][0]

    hass.bus.async_fire("mobile_app_notification_action", {"action": "OPEN_GARAGE"})
    await run_loop()
    assert home.actions() == []

    hass.bus.async_fire("mobile_app_notification_action", {"action": button["action"]})
    await hass.async_block_till_done()
    assert home.actions() == [("volume_set", 0.3), ("play_media", WHITE_NOISE)]

    await move_to(hass, freezer, "23:00:00")  # quiet hours
    hass.bus.async_fire("mobile_app_notification_action", {"action": button["action"]})
    await hass.async_block_till_done()
    assert home.new_actions(2) == [("volume_set", 0.3), ("play_media", WHITE_NOISE)]


@pytest.mark.usefixtures("config_dir")
async def test_notify_without_a_speaker_sends_no_soothe_button(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
    home: Home,
) -> None:
    """Without a speaker the phones are told all the same, with no button to play a sound.

    An old notification's button then plays nothing and is not counted as acting.
    """
    await move_to(hass, freezer, "14:00:00")
    inputs = {
        key: value
        for key, value in notify_inputs(phones).items()
        if key not in ("media_player", "soothing_media")
    }
    notify = await use_blueprint(hass, "notify_on_cry.yaml", inputs, "Notify")

    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))

    assert notified(phones) == {"Mum's Phone": 1, "Dad's Pixel": 1, "Grandma's iPad": 0}
    call = phones["Mum's Phone"].notifications[0]
    assert call.data["message"] == crying_for(baby, 30)
    assert call.data["data"]["tag"] == f"baby_monitor_cry_{CRYING}"
    assert call.data["data"]["actions"] == verdict_buttons(hass)
    state = hass.states.get(notify)
    assert state is not None
    last_triggered = state.attributes["last_triggered"]

    await tick(hass, freezer, timedelta(minutes=1))
    action = f"BABY_MONITOR_SOOTHE_{CRYING}"
    hass.bus.async_fire("mobile_app_notification_action", {"action": action})
    await hass.async_block_till_done()
    assert home.actions() == []
    state = hass.states.get(notify)
    assert state is not None
    assert state.attributes["last_triggered"] == last_triggered


@pytest.mark.usefixtures("config_dir", "home")
async def test_verdict_buttons_teach_the_room_about_that_cry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
) -> None:
    """The verdict buttons teach the nursery about the notified cry.

    Also after another cry and within the cooldown; other rooms' and apps' buttons teach
    nothing and do not count as acting.
    """
    await move_to(hass, freezer, "14:00:00")
    notify = await use_blueprint(
        hass, "notify_on_cry.yaml", notify_inputs(phones), "Notify"
    )
    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))
    not_a_cry, was_a_cry = (
        phones["Mum's Phone"].notifications[0].data["data"]["actions"][1:]
    )
    last_triggered = hass.states.get(notify).attributes["last_triggered"]

    for action in (
        "OPEN_GARAGE",
        not_a_cry["action"].replace(CRYING, "binary_sensor.playroom_crying"),
        not_a_cry["action"].rsplit(":", 1)[0],
    ):
        hass.bus.async_fire("mobile_app_notification_action", {"action": action})
        await hass.async_block_till_done()
    assert hass.states.get(LEARNT).state == "0"
    assert hass.states.get(notify).attributes["last_triggered"] == last_triggered

    await baby.calms()
    await baby.cries()  # a new cry: the button still means the notified one
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": not_a_cry["action"]}
    )
    await hass.async_block_till_done()
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": was_a_cry["action"]}
    )
    await hass.async_block_till_done()
    learnt = hass.states.get(LEARNT).attributes
    assert (learnt["cry_not_this_sound"], learnt["cry_this_sound"]) == (1, 1)


@pytest.mark.usefixtures("config_dir", "home")
async def test_verdict_buttons_can_be_left_out(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    baby: Baby,
    phones: dict[str, Phone],
) -> None:
    """A parent who wants no verdict buttons gets only the soothe button."""
    await use_blueprint(
        hass,
        "notify_on_cry.yaml",
        notify_inputs(phones, verdict_buttons=False),
        "Notify",
    )
    await baby.cries()
    await tick(hass, freezer, timedelta(seconds=30))
    assert [
        button["title"]
        for button in phones["Mum's Phone"].notifications[0].data["data"]["actions"]
    ] == ["Play soothing sound"]


@pytest.mark.parametrize(
    ("started_as", "message_s"), [("datetime", 33), ("text", 33), (None, 30)]
)
@pytest.mark.usefixtures("config_dir")
async def test_notify_says_how_long_since_the_crying_began(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    phones: dict[str, Phone],
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    started_as: str | None,
    message_s: int,
) -> None:
    """The message counts from the sensor's started_at, so the confirm time is included.

    started_at may be a datetime or its ISO text; without it the message falls back to the
    time the sensor has been on (the "Crying for at least" setting).
    """
    await move_to(hass, freezer, "14:00:00")
    entry = MockConfigEntry(domain=DOMAIN, title="Nursery")
    entry.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, "nursery")},
        name="Nursery",
    )
    entity_registry.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        "nursery-crying",
        suggested_object_id="nursery_crying",
        config_entry=entry,
        device_id=device.id,
    )
    hass.states.async_set(CRYING, STATE_OFF)
    await use_blueprint(hass, "notify_on_cry.yaml", notify_inputs(phones), "Notify")

    started = dt_util.utcnow() - timedelta(seconds=3)  # heard 3 s before confirmed
    attributes = {
        "datetime": {"started_at": started},
        "text": {"started_at": started.isoformat()},
        None: {},
    }[started_as]
    hass.states.async_set(CRYING, STATE_ON, attributes)
    await run_loop()
    await tick(hass, freezer, timedelta(seconds=30))

    call = phones["Mum's Phone"].notifications[0]
    assert call.data["message"] == f"The baby has been crying for {message_s} seconds."


# --- Laughter moments ------------------------------------------------------------------------


def clip_saved(
    device_id: str, sound: str = "laughter", episode: int | None = 3
) -> dict[str, Any]:
    """Make the data of the bus event the integration fires when it has saved a clip."""
    relative = f"baby_monitor/nursery/2025-06-01/101500_{sound}.wav"
    return {
        "device_id": device_id,
        "entry_id": ENTRY_ID,
        "sound": sound,
        "path": f"/media/{relative}",
        "media_content_id": f"media-source://media_source/local/{relative}",
        "url": f"/media/local/{relative}",
        "duration": 6.4,
        "episode": episode,
    }


@pytest.fixture
def playroom(device_registry: dr.DeviceRegistry, hass: HomeAssistant) -> str:
    """Device id of a second Baby Monitor room."""
    entry = MockConfigEntry(domain=DOMAIN, title="Playroom")
    entry.add_to_hass(hass)
    return device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, "playroom")},
        name="Playroom",
    ).id


def laughter_inputs(
    nursery: str, phones: dict[str, Phone], **inputs: Any
) -> dict[str, Any]:
    """Give the laughter inputs: the nursery, Mum's phone, defaults otherwise."""
    return {
        "baby_monitor": nursery,
        "notify_devices": [phones["Mum's Phone"].device_id],
        **inputs,
    }


@pytest.mark.usefixtures("config_dir")
async def test_laughter_clip_is_sent_for_its_own_room_only(
    hass: HomeAssistant, nursery: str, playroom: str, phones: dict[str, Phone]
) -> None:
    """A saved laugh of the nursery reaches the phone with the clip attached.

    The playroom's laughs and the nursery's cry clips do not.
    """
    await use_blueprint(
        hass, "laughter_moments.yaml", laughter_inputs(nursery, phones), "Laughter"
    )

    hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(playroom))
    hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(nursery, "cry"))
    await hass.async_block_till_done()
    assert notified(phones)["Mum's Phone"] == 0

    hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(nursery))
    await hass.async_block_till_done()
    assert notified(phones) == {"Mum's Phone": 1, "Dad's Pixel": 0, "Grandma's iPad": 0}
    call = phones["Mum's Phone"].notifications[0]
    assert call.data["title"] == "Nursery"
    assert call.data["message"] == "The baby is laughing! Listen to the moment (6 s)."
    assert call.data["data"]["audio"] == clip_saved(nursery)["url"]
    assert call.data["data"]["actions"] == [
        {
            "action": f"BABY_MONITOR_TEACH_{nursery}:laughter:not_this_sound:3",
            "title": "Not a laugh",
        }
    ]


@pytest.mark.usefixtures("config_dir")
async def test_not_a_laugh_teaches_the_room_about_that_laugh(
    hass: HomeAssistant, baby: Baby, nursery: str, phones: dict[str, Phone]
) -> None:
    """The notification's "Not a laugh" teaches the nursery about the laugh it was about.

    Another room's button teaches nothing and does not count as acting.
    """
    notify = await use_blueprint(
        hass, "laughter_moments.yaml", laughter_inputs(nursery, phones), "Laughter"
    )
    await baby.sounds(0.0, 0.99, 2.0)
    episode = hass.states.get("event.nursery_sound").attributes["episode"]
    hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(nursery, episode=episode))
    await hass.async_block_till_done()
    (button,) = phones["Mum's Phone"].notifications[0].data["data"]["actions"]
    last_triggered = hass.states.get(notify).attributes["last_triggered"]

    other = button["action"].replace(nursery, "another_device")
    hass.bus.async_fire("mobile_app_notification_action", {"action": other})
    await hass.async_block_till_done()
    assert hass.states.get(LEARNT).state == "0"
    assert hass.states.get(notify).attributes["last_triggered"] == last_triggered

    hass.bus.async_fire("mobile_app_notification_action", {"action": button["action"]})
    await hass.async_block_till_done()
    assert hass.states.get(LEARNT).attributes["laughter_not_this_sound"] == 1


@pytest.mark.usefixtures("config_dir")
async def test_not_a_laugh_can_be_left_out(
    hass: HomeAssistant, nursery: str, phones: dict[str, Phone]
) -> None:
    """A parent who wants no button gets the clip alone."""
    await use_blueprint(
        hass,
        "laughter_moments.yaml",
        laughter_inputs(nursery, phones, not_a_laugh_button=False),
        "Laughter",
    )
    hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(nursery))
    await hass.async_block_till_done()
    assert "actions" not in phones["Mum's Phone"].notifications[0].data["data"]


@pytest.mark.usefixtures("config_dir")
async def test_laughter_cooldown(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    nursery: str,
    phones: dict[str, Phone],
) -> None:
    """Laughs within the cooldown after a notified one are not sent.

    With 30 minutes, a laugh 10 minutes after a notified one is not sent; 31 minutes after it
    one is.
    """
    await use_blueprint(
        hass,
        "laughter_moments.yaml",
        laughter_inputs(nursery, phones, cooldown=30),
        "Laughter",
    )

    for minutes in (0, 10, 21):
        await tick(hass, freezer, timedelta(minutes=minutes))
        hass.bus.async_fire("baby_monitor_clip_saved", clip_saved(nursery))
        await hass.async_block_till_done()

    assert notified(phones)["Mum's Phone"] == 2
