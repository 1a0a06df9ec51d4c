"""The project's licence: Apache-2.0 text, a NOTICE for third-party material, and pyproject."""

from __future__ import annotations

from pathlib import Path
import tomllib

ROOT = Path(__file__).parents[1]


def test_licence_is_the_apache_2_text_with_our_copyright() -> None:
    """LICENSE holds the whole Apache License 2.0 and names the copyright holders."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")

    assert text.startswith("Copyright 2026 Baby Monitor contributors\n")
    assert (
        "Apache License\n                           Version 2.0, January 2004" in text
    )
    for section in range(1, 10):
        assert f"\n   {section}. " in text, f"section {section} is missing"
    assert "END OF TERMS AND CONDITIONS" in text


def test_notice_points_to_the_training_data_licences() -> None:
    """NOTICE says the model is ours and where the data and pretrained licences are."""
    text = (ROOT / "NOTICE").read_text(encoding="utf-8")

    assert "Copyright 2026 Baby Monitor contributors" in text
    assert "models/MODEL_CARD.md" in text
    assert "YAMNet" in text
    assert "EfficientAT" in text


def test_pyproject_declares_apache_2() -> None:
    """The package metadata says Apache-2.0 and ships LICENSE and NOTICE."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]

    assert project["license"] == "Apache-2.0"
    assert set(project["license-files"]) == {"LICENSE", "NOTICE"}
