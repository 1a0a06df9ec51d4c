"""README promises that must match the files they describe."""

from __future__ import annotations

import json
from pathlib import Path
import re

ROOT = Path(__file__).parents[1]
BRAND_ICONS_FROM = (2026, 3)
"""First Home Assistant release that shows a custom integration's brand/icon.png."""


def _requirements() -> str:
    """Return the README's Requirements section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Requirements", 1)[1].split("\n## ", 1)[0]


def test_readme_names_the_minimum_home_assistant_of_hacs_json() -> None:
    """The version users are told is the one HACS enforces."""
    minimum = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))[
        "homeassistant"
    ]
    major_minor = ".".join(minimum.split(".")[:2])

    assert f"Home Assistant **{major_minor}** or newer" in _requirements()


def test_readme_says_what_versions_without_brand_icons_show() -> None:
    """Versions HACS allows but that ignore brand/ are told they get the placeholder icon."""
    assert (ROOT / "custom_components/baby_monitor/brand/icon.png").is_file()
    minimum = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))[
        "homeassistant"
    ]
    if tuple(int(part) for part in minimum.split(".")[:2]) >= BRAND_ICONS_FROM:
        return
    text = " ".join(_requirements().split())

    assert re.search(r"icon .*\*\*2026\.3\*\* on", text)
    assert "generic placeholder icon in the integrations list" in text
