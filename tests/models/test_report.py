"""The benchmark report carries what `scripts/e2e` measured inside Home Assistant."""

from __future__ import annotations

import json
from pathlib import Path
import shutil

from models.report import BENCH, HASS_CPU, render

HASS_CPU_FIGURES = {
    "unit": "ms CPU per second of audio",
    "sources": 2,
    "stretch_s": 10.0,
    "engine_audio_s": 30.0,
    "engine_repeats": 3,
    "hass_paused": 0.05,
    "paused_wall_s": 10.0,
    "target_overhead": 2.0,
    "backends": {
        "litert": {
            "hass_listening": 3.0,
            "hass_added": 2.95,
            "engine": 1.5,
            "overhead": 1.45,
            "ffmpeg": 1.8,
            "wall_s": 10.0,
        },
        "numpy": {
            "hass_listening": 7.5,
            "hass_added": 7.45,
            "engine": 4.4,
            "overhead": 3.05,
            "ffmpeg": None,
            "wall_s": 10.0,
        },
    },
    "default_backend": "litert",
    "measured_at": "2026-12-04 06:30 UTC",
}


def _bench(tmp_path: Path) -> Path:
    """Make a bench folder holding the shipped benchmark's results only."""
    bench = tmp_path / "bench"
    bench.mkdir()
    shutil.copy(BENCH / "results.json", bench / "results.json")
    return bench


def test_report_renders_the_figures_measured_inside_home_assistant(
    tmp_path: Path,
) -> None:
    """Each backend's overhead is a target row and a line of its own section, from the JSON."""
    bench = _bench(tmp_path)
    (bench / HASS_CPU).write_text(json.dumps(HASS_CPU_FIGURES), encoding="utf-8")

    report = render(bench).read_text(encoding="utf-8")

    assert (
        "| CPU the integration adds inside Home Assistant beyond the engine's own, litert "
        "| ≤ 2 ms per audio s | 1.4 ms (hass 3.0 ms - engine 1.5 ms) | ✅ |"
    ) in report
    assert "beyond the engine's own, numpy | ≤ 2 ms per audio s | 3.0 ms" in report
    assert "| numpy | 7.5 | 0.1 | 7.5 | 4.4 | 3.0 | – |" in report
    section = report[report.index("## Inside Home Assistant") :]
    assert "| litert (auto) | 3.0 | 0.1 | 3.0 | 1.5 | 1.4 | 1.8 |" in section
    assert "2026-12-04 06:30 UTC" in section


def test_report_without_an_e2e_measurement_leaves_the_section_out(
    tmp_path: Path,
) -> None:
    """Before `scripts/e2e` has written its figures, the report has neither row nor section."""
    report = render(_bench(tmp_path)).read_text(encoding="utf-8")

    assert "## CPU cost" in report
    assert "Inside Home Assistant" not in report
