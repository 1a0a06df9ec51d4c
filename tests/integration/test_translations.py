"""translations/en.json: every string passes hassfest's checks, and it matches the code.

hassfest (`script/hassfest/translations.py` in Home Assistant core) is not part of the
`homeassistant` package; its rules are restated here: no HTML, placeholders that are valid
identifiers (not single-quoted, not where the frontend takes none), no `[%key:...%]` references
(a custom integration ships its text written out), no leading or trailing spaces, no URLs (they
are passed as description placeholders), and translation keys of lower-case words. The frontend
formats strings as ICU messages, where `<word>` opens a tag and `'{` quotes a placeholder away.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import json
from pathlib import Path
import re
import string
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol
from voluptuous.humanize import humanize_error

from custom_components.baby_monitor import config_flow, const
from custom_components.baby_monitor.const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    CONF_SOUNDS,
    DOMAIN,
    SOUNDS,
    SOURCE_TYPES,
)
from custom_components.baby_monitor.engine.backends import BACKENDS
from custom_components.baby_monitor.engine.room import VERDICTS
from custom_components.baby_monitor.issues import ISSUES
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.selector import SelectSelector
from homeassistant.util import yaml as yaml_util

PACKAGE = Path(config_flow.__file__).parent
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)

RE_REFERENCE = re.compile(r"\[%key:|\[%|%\]")
RE_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[a-z0-9]|\bwww\.[a-z0-9]", re.IGNORECASE)
RE_ICU_TAG = re.compile(r"</?[a-z]", re.IGNORECASE)
RE_QUOTED_BRACE = re.compile(r"'[{}]")
RE_KEY = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def _text(value: Any, *, placeholders: bool = True) -> str:
    """Check one translated string as hassfest and the frontend's ICU formatter would."""
    text = cv.string_with_no_html(value)
    if RE_ICU_TAG.search(text):
        raise vol.Invalid("the frontend reads <...> as an ICU tag")
    if RE_QUOTED_BRACE.search(text):
        raise vol.Invalid("an apostrophe before a brace quotes the placeholder away")
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError as err:
        raise vol.Invalid(f"unbalanced braces: {err}") from err
    for name, spec, conversion in fields:
        if not placeholders:
            raise vol.Invalid("placeholders are not supported in this value")
        if not name.isidentifier() or spec or conversion:
            raise vol.Invalid(f"placeholder {{{name}}} is not a plain identifier")
    if RE_REFERENCE.search(text):
        raise vol.Invalid("a custom integration writes its text out, no [%key:...%]")
    if text != text.strip():
        raise vol.Invalid("the string has leading or trailing spaces")
    if RE_URL.search(text):
        raise vol.Invalid("URLs go into description placeholders, not into strings")
    return text


def _plain(value: Any) -> str:
    """Check a string that takes no placeholders (states, attribute names, units)."""
    return _text(value, placeholders=False)


KEY = vol.Match(RE_KEY, msg="translation keys are lower-case words joined by - or _")


def _data_described(flow: dict[str, Any]) -> dict[str, Any]:
    """Refuse a field description without its field."""
    for step_id, step in flow["step"].items():
        if extra := set(step.get("data_description", {})) - set(step.get("data", {})):
            raise vol.Invalid(f"step {step_id}: data_description of no field {extra}")
    return flow


FLOW = vol.All(
    {
        vol.Required("step"): {
            str: {
                vol.Optional("title"): _text,
                vol.Optional("description"): _text,
                vol.Optional("data"): {str: _text},
                vol.Optional("data_description"): {str: _text},
                vol.Optional("menu_options"): {str: _text},
                vol.Optional("submit"): _text,
            }
        },
        vol.Optional("error"): {str: _text},
        vol.Optional("abort"): {str: _text},
        vol.Optional("progress"): {str: _text},
        vol.Optional("create_entry"): {str: _text},
    },
    _data_described,
)
SCHEMA = vol.Schema(
    {
        vol.Optional("title"): _text,
        vol.Optional("config"): FLOW,
        vol.Optional("options"): FLOW,
        vol.Optional("selector"): {KEY: {vol.Optional("options"): {KEY: _text}}},
        vol.Optional("entity"): {
            cv.slug: {
                KEY: {
                    vol.Optional("name"): _text,
                    vol.Optional("state"): {KEY: _plain},
                    vol.Optional("state_attributes"): {
                        KEY: {
                            vol.Optional("name"): _plain,
                            vol.Optional("state"): {KEY: _plain},
                        }
                    },
                    vol.Optional("unit_of_measurement"): _plain,
                }
            }
        },
        vol.Optional("exceptions"): {cv.slug: {vol.Required("message"): _text}},
        vol.Optional("issues"): {
            KEY: {vol.Required("title"): _text, vol.Required("description"): _text}
        },
        vol.Optional("services"): {
            KEY: {
                vol.Required("name"): _text,
                vol.Required("description"): _text,
                vol.Optional("fields"): {
                    KEY: {
                        vol.Required("name"): _text,
                        vol.Required("description"): _text,
                    }
                },
            }
        },
    }
)


def _leaves(tree: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of the file with its path."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{path}{key}.")
        else:
            yield f"{path}{key}", value


# --- every string ------------------------------------------------------------------------------


def test_en_json_passes_hassfests_translation_checks() -> None:
    """The whole file, every string in it, validates against hassfest's schema and rules."""
    try:
        SCHEMA(STRINGS)
    except vol.Invalid as err:
        pytest.fail(humanize_error(STRINGS, err))


@pytest.mark.parametrize(
    "text",
    [
        "Use <driver>:<device> with driver pulse.",  # HTML to hassfest, a tag to ICU
        "For example rtsp://user:password@192.168.1.20:554/stream1.",
        "See https://www.home-assistant.io for more.",
        "Name: '{room}'",
        "Crying in {room",
        "Crying in {room!r}",
        "Crying in {0}",
        "[%key:common::config_flow::error::cannot_connect%]",
        " Room",
    ],
)
def test_the_checks_refuse_what_hassfest_or_the_frontend_refuses(text: str) -> None:
    """Each rule catches the mistake it is there for."""
    with pytest.raises(vol.Invalid):
        _text(text)


def test_the_checks_accept_plain_text_code_and_placeholders() -> None:
    """Code spans, scheme names, arrows, apostrophes and placeholders are allowed."""
    for text in (
        "Type it as `driver:device`, e.g. `pulse:default`.",
        "Use `rtsp://`, `http(s)://` or a file path.",
        "Media → My media → baby_monitor; the room's name is {room}.",
        "For example `{example_url}`.",
    ):
        assert _text(text) == text
    with pytest.raises(vol.Invalid):
        _plain("Crying in {room}")


LEAVES = list(_leaves(STRINGS))


@pytest.mark.parametrize(("path", "text"), LEAVES, ids=[path for path, _ in LEAVES])
def test_every_string_is_valid(path: str, text: str) -> None:
    """Each string on its own (the failing one is named by its path)."""
    _text(text, placeholders=".state" not in path and "unit_of" not in path)


# --- the file matches the code -------------------------------------------------------------------


def _resolve(node: ast.expr) -> set[str]:
    """Collect the strings an expression can give (names looked up in the package)."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value)
        elif isinstance(sub, ast.Name):
            for module in (const, config_flow):
                value = getattr(module, sub.id, None)
                if isinstance(value, str):
                    found.add(value)
                elif isinstance(value, (frozenset, set, tuple)) and all(
                    isinstance(item, str) for item in value
                ):
                    found |= set(value)
    return found


def _calls(tree: ast.AST) -> Iterator[tuple[str, dict[str, ast.expr]]]:
    """Every call: the called name and its keyword arguments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)
            yield name, {kw.arg: kw.value for kw in node.keywords if kw.arg}


def _translation_keys() -> dict[str, set[str]]:
    """translation_key arguments in the package's code, by what they translate."""
    keys: dict[str, set[str]] = {}
    for file in PACKAGE.glob("*.py"):
        for name, keywords in _calls(ast.parse(file.read_text(encoding="utf-8"))):
            if "translation_key" not in keywords:
                continue
            if name == "async_create_issue":
                kind = "issues"
            elif "translation_domain" in keywords:
                kind = "exceptions"
            elif name.endswith("EntityDescription"):
                kind = f"entity.{file.stem}"
            elif name == "SelectSelectorConfig":
                kind = "selector"
            else:
                kind = f"unknown: {name} in {file.name}"
            keys.setdefault(kind, set()).update(_resolve(keywords["translation_key"]))
    return keys


# A flow helper's abort reason, named by Home Assistant.
IMPLIED_ABORTS = {
    "_abort_if_unique_id_configured": "already_configured",
    "async_set_unique_id": "already_in_progress",
    "async_update_reload_and_abort": "reconfigure_successful",
}


def _flow_class(name: str) -> ast.ClassDef:
    tree = ast.parse((PACKAGE / "config_flow.py").read_text(encoding="utf-8"))
    (cls,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return cls


def _flow_uses(cls: ast.ClassDef) -> dict[str, set[str]]:
    """Collect the steps, errors and abort reasons a flow class uses."""
    steps = {
        node.name.removeprefix("async_step_")
        for node in cls.body
        if isinstance(node, ast.AsyncFunctionDef)
        and node.name.startswith("async_step_")
    }
    errors: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Subscript) and ast.unparse(target.value) == "errors"
            for target in node.targets
        ):
            errors |= _resolve(node.value)
    aborts: set[str] = set()
    for name, keywords in _calls(cls):
        if name == "async_abort":
            aborts |= _resolve(keywords["reason"])
        if name in IMPLIED_ABORTS:
            aborts.add(IMPLIED_ABORTS[name])
    return {"step": steps, "error": errors, "abort": aborts}


@pytest.mark.parametrize(
    ("section", "cls"),
    [("config", "BabyMonitorConfigFlow"), ("options", "BabyMonitorOptionsFlow")],
)
def test_flow_steps_errors_and_aborts_match_the_code(section: str, cls: str) -> None:
    """Each step, error and abort of a flow has its text, and each text is used."""
    uses = _flow_uses(_flow_class(cls))
    assert uses["step"] == set(STRINGS[section]["step"])
    assert uses["error"] == set(STRINGS[section].get("error", {}))
    assert uses["abort"] == set(STRINGS[section].get("abort", {}))


def test_menus_offer_every_source_with_a_label() -> None:
    """Both menus (add, reconfigure) label exactly the source kinds."""
    for step in ("user", "reconfigure"):
        assert set(STRINGS["config"]["step"][step]["menu_options"]) == set(SOURCE_TYPES)


def test_translation_keys_in_the_code_match_the_file() -> None:
    """Entities, selectors, issues and exceptions: a text for each key, a key for each text."""
    keys = _translation_keys()
    assert not [kind for kind in keys if kind.startswith("unknown")], keys
    # issues are raised through issues.py, which lists every one a room can raise
    assert keys.get("issues", set()) | set(ISSUES) == set(STRINGS["issues"])
    assert keys["exceptions"] == set(STRINGS["exceptions"])
    assert keys["selector"] | _service_selector_keys() == set(STRINGS["selector"])
    platforms = {kind.removeprefix("entity."): v for kind, v in keys.items()}
    for platform, entities in STRINGS["entity"].items():
        assert platforms.get(platform) == set(entities), platform
    assert {kind for kind in keys if kind.startswith("entity.")} == {
        f"entity.{platform}" for platform in STRINGS["entity"]
    }


def test_event_types_have_names() -> None:
    """The sound event's types are named, and only those."""
    states = STRINGS["entity"]["event"]["sound"]["state_attributes"]["event_type"]
    assert set(states["state"]) == {
        f"{sound}_{kind}" for sound in SOUNDS for kind in ("started", "stopped")
    }


def _service_selector_keys() -> set[str]:
    """translation_key of the select selectors in services.yaml."""
    services = yaml_util.load_yaml_dict(PACKAGE / "services.yaml")
    return {
        field["selector"]["select"]["translation_key"]
        for spec in services.values()
        for field in spec.get("fields", {}).values()
        if "translation_key" in field.get("selector", {}).get("select", {})
    }


def test_services_and_their_fields_have_names() -> None:
    """services.yaml and the file name the same actions and fields."""
    services = yaml_util.load_yaml_dict(PACKAGE / "services.yaml")
    assert set(services) == set(STRINGS["services"])
    for service, spec in services.items():
        assert set(spec.get("fields", {})) == set(
            STRINGS["services"][service]["fields"]
        )


def test_service_selectors_offer_the_values_the_action_takes() -> None:
    """The teach action's sound and verdict lists are the sounds and verdicts, each labelled."""
    fields = yaml_util.load_yaml_dict(PACKAGE / "services.yaml")["teach"]["fields"]
    assert fields["sound"]["selector"]["select"]["options"] == list(SOUNDS)
    assert fields["verdict"]["selector"]["select"]["options"] == list(VERDICTS)
    assert set(STRINGS["selector"]["verdict"]["options"]) == set(VERDICTS)


# --- the forms: their fields and placeholders ---------------------------------------------------


def _placeholders(texts: dict[str, Any]) -> set[str]:
    """Placeholders used in a step's strings."""
    return {
        name
        for _, text in _leaves(texts)
        for _, name, _, _ in string.Formatter().parse(text)
        if name
    }


def _check_form(section: str, result: Any) -> None:
    """Check that the form's fields are labelled and described, its placeholders given."""
    assert result["type"] is FlowResultType.FORM
    step = STRINGS[section]["step"][result["step_id"]]
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == set(step["data"])
    assert set(step.get("data_description", {})) <= fields
    given = result["description_placeholders"] or {}
    assert _placeholders(step) == set(given)


@pytest.mark.usefixtures("mock_setup_entry")
@pytest.mark.parametrize("kind", SOURCE_TYPES)
async def test_source_forms_match_their_strings(hass: HomeAssistant, kind: str) -> None:
    """Each source form: its fields have labels, its placeholders (the example URL) values."""
    with (
        patch.object(config_flow, "portaudio_available", return_value=False),
        patch.object(config_flow, "probe", AsyncMock()),
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": kind}
        )
    _check_form("config", result)


async def test_url_example_is_shown_as_code(hass: HomeAssistant) -> None:
    """The example URL is a placeholder in a code span, so it is not linked as an e-mail."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "url"}
    )
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    example = placeholders["example_url"]
    assert example == "rtsp://user:password@192.168.1.20:554/stream1"
    text = STRINGS["config"]["step"]["url"]["data_description"]["url"]
    assert "`{example_url}`" in text


@pytest.mark.usefixtures("mock_setup_entry")
async def test_options_form_matches_its_strings(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The options form's fields have labels and descriptions."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    _check_form("options", result)
    selectors = [
        value.config
        for value in result["data_schema"].schema.values()
        if isinstance(value, SelectSelector) and "translation_key" in value.config
    ]
    assert selectors
    for config in selectors:
        labels = STRINGS["selector"][config["translation_key"]]["options"]
        assert set(config["options"]) <= set(labels)


def test_selector_options_are_the_values_the_code_knows() -> None:
    """Every sound and every runtime backend (installed here or not) has a label."""
    assert set(STRINGS["selector"][CONF_SOUNDS]["options"]) == set(SOUNDS)
    assert set(STRINGS["selector"][CONF_BACKEND]["options"]) == {
        BACKEND_AUTO,
        *BACKENDS,
    }
