"""The benchmark report: targets from pooled out-of-fold figures beside the baselines, and the e2e's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.crossval import cv_report, loso_report, source_splits
from models.dataset import Clip
from models.report import render, write_report

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
SOURCES = ("donateacry", "esc50", "deeply_nonverbal")


def _clips() -> list[Clip]:
    """400 clips over four folds and three sources: 100 cries, 60 laughs, 240 others."""
    labels = ["cry"] * 100 + ["laughter"] * 60 + ["other"] * 240
    return [
        Clip(
            path=f"{SOURCES[i % 3]}/{label}/{i}.wav",
            label=label,
            source=SOURCES[i % 3],
            group=f"g{i}",
            fold=1 + i % 4,
            orig_class="laughing" if label == "other" and i % 7 == 0 else label,
            duration_s=5.0,
        )
        for i, label in enumerate(labels)
    ]


def _scores(clips: list[Clip], separation: float, seed: int) -> dict[str, Any]:
    """Scores in [0, 1] whose labels' positives sit `separation` above the rest."""
    rng = np.random.default_rng(seed)
    return {
        label: (
            1
            / (
                1
                + np.exp(
                    -(
                        rng.normal(size=len(clips))
                        + separation * np.array([c.label == label for c in clips])
                    )
                )
            )
        ).astype(np.float32)
        for label in ("cry", "laughter")
    }


def _model(clips: list[Clip], separation: float, seed: int) -> dict[str, Any]:
    scores = _scores(clips, separation, seed)
    return {
        "cv": cv_report(clips, scores),
        "loso": loso_report(clips, scores, source_splits(clips, SOURCES)),
    }


def _results(ours_separation: float = 4.0) -> dict[str, Any]:
    """Results as `scripts/bench` writes them, from synthetic out-of-fold scores."""
    clips = _clips()
    variant = {"recall": 0.97, "false_positive_rate": 0.008}
    ours = _model(clips, ours_separation, 0) | {
        "thresholds": {"cry": 0.93, "laughter": 0.9},
        "variants": {
            "clean": {
                "cry": variant | {"other_label_over": 0.0},
                "laughter": variant | {"other_label_over": 0.02},
            },
            "band": {
                "cry": {"recall": 0.95, "false_positive_rate": 0.012},
                "laughter": variant,
            },
            "noise0": {
                "cry": {"recall": 0.91, "false_positive_rate": 0.01},
                "laughter": variant,
            },
            "music0": {
                "cry": {"recall": 0.85, "false_positive_rate": 0.01},
                "laughter": variant,
            },
        },
        "sensitivity": {
            "default": 0.93,
            "rows": [
                {
                    "threshold": t,
                    **{
                        name: {"recall": 1 - t / 10, "false_positive_rate": t / 50}
                        for name in ("clean", "band", "noise0", "music0")
                    },
                }
                for t in (0.5, 0.9, 0.93)
            ],
        },
    }
    models = {
        "ours": ours,
        "mn04 probe": _model(clips, 2.5, 1) | {"c": {"cry": 0.01, "laughter": 0.1}},
        "mn04 classes": _model(clips, 1.0, 2),
        "YAMNet probe": _model(clips, 2.0, 3) | {"c": {"cry": 0.1, "laughter": 1.0}},
        "YAMNet classes": _model(clips, 0.8, 4),
    }
    soak_run = {
        "detected": 70,
        "cries": 72,
        "false_events": 0,
        "false_per_24h": 0.0,
        "latency_median_s": 1.2,
        "latency_p95_s": 3.1,
        "bed_cries": 14,
        "bed_detected": 13,
        "false_by_kind": {"household": 0, "instrumental": 0, "sung": 0, "noise": 0},
    }
    return json.loads(
        json.dumps(
            {
                "machine": "x86_64, cpu, python 3.13.0",
                "model": {
                    "name": "baby_monitor",
                    "version": "2026.12.04",
                    "bytes": 3_200_000,
                    "head_bytes": 200_000,
                    "backbone_bytes": 3_000_000,
                    "thresholds": {"cry": 0.93, "laughter": 0.9},
                },
                "clips": {
                    "dev": len(clips),
                    "by_label": {"cry": 100, "laughter": 60, "other": 240},
                },
                "models": models,
                "cost_ms_per_audio_s": {
                    "audio_s": 120.0,
                    "hop_s": 1.0,
                    "repeats": 3,
                    "litert": 0.8,
                    "litert_rss_added_mb": 12.0,
                    "litert_parts": {"frontend": 0.2, "backbone": 0.5, "head": 0.05},
                    "numpy": 6.0,
                    "numpy_rss_added_mb": 14.0,
                    "yamnet_litert": 0.9,
                },
                "soak": {
                    "hours": 6.0,
                    "negative_hours": 5.0,
                    "backend": "litert",
                    "threshold": 0.93,
                    "confirm_s": 2.0,
                    "hop_s": 1.0,
                    "fold": 4,
                    "head_folds": [1, 2, 3],
                    "household_clips": 300,
                    "cry_clips": 90,
                    "parent_singing": {
                        "soak": 0,
                        "by_fold": {"1": 11, "2": 0, "3": 12, "4": 0},
                    },
                    "nursery": {
                        "share": 0.2,
                        "sounds": {"instrumental": 16, "sung": 8, "noise": 7},
                        "beds": 17,
                        "played_hours": {
                            "instrumental": 0.6,
                            "sung": 0.3,
                            "noise": 0.35,
                        },
                        "negative_hours": {
                            "household": 3.95,
                            "instrumental": 0.5,
                            "sung": 0.25,
                            "noise": 0.3,
                        },
                    },
                    "ours": soak_run
                    | {
                        "false_alarms": [],
                        "duration_error_s": None,
                        "rss_start_mb": 500.0,
                        "rss_end_mb": 501.0,
                        "rss_mb": [500.0, 501.0],
                    },
                    "yamnet": soak_run | {"threshold": 0.5},
                    "sweep": [],
                },
                "seconds": {"ours": 300.0},
            },
            default=float,
        )
    )


def _report(
    tmp_path: Path,
    results: dict[str, Any],
    hass_cpu: dict[str, Any] | None = None,
) -> str:
    bench = tmp_path / "bench"
    bench.mkdir(exist_ok=True)
    (bench / "results.json").write_text(json.dumps(results), encoding="utf-8")
    if hass_cpu is not None:
        (bench / "hass_cpu.json").write_text(json.dumps(hass_cpu), encoding="utf-8")
    return render(bench).read_text(encoding="utf-8")


def _row(report: str, what: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {what} |"))


def test_targets_come_from_pooled_out_of_fold_figures_beside_every_baseline(
    tmp_path: Path,
) -> None:
    """AUC and recall rows carry the fold spread and the four baselines of the same run."""
    results = _results()
    report = _report(tmp_path, results)

    cry = results["models"]["ours"]["cv"]["cry"]
    row = _row(report, "cry ROC-AUC, pooled out-of-fold")
    assert f"{cry['auc']:.4f} (folds" in row
    for name in ("mn04 probe", "mn04 classes", "YAMNet probe", "YAMNet classes"):
        assert name in row
    assert row.endswith("✅ |") == (cry["auc"] >= 0.995)
    assert _row(report, "laughter recall at 1 % clip FPR, pooled out-of-fold")
    assert _row(report, "laughter clips over the cry 1 %-FPR threshold")
    assert _row(report, "cry clips over the laughter 1 %-FPR threshold")
    assert _row(report, "laughter clips over the default cry threshold").endswith(
        "| 0.0 % | ✅ |"
    )
    assert _row(report, "cry clips over the default laughter threshold").endswith(
        "| 2.0 % | ❌ |"
    )
    assert _row(
        report,
        "cry and laughter AUC above both logistic probes' (mn04, YAMNet embeddings)",
    ).endswith("✅ |")
    assert _row(
        report, "band-limited (≤ 4 kHz) vs full-band cry recall, default threshold"
    ).endswith("| 95.0 % vs 97.0 % | ✅ |")
    assert _row(
        report, "band-limited vs full-band negatives' FPR (cry), default threshold"
    ).endswith("| 1.2 % vs 0.8 % | ✅ |")
    assert _row(
        report, "cry recall, white, pink or brown noise at 0 dB SNR, default threshold"
    ).endswith("| 91.0 % | ✅ |")
    assert _row(report, "cry recall, music at 0 dB SNR, default threshold").endswith(
        "| 85.0 % | ❌ |"
    )
    assert _row(report, "model size (backbone + head)").endswith(
        "| 3.20 MB (2930 KiB + 195 KiB) | ✅ |"
    )
    cpu = "≤ 2 ms and ≤ YAMNet's | 0.80 ms (YAMNet, Frigate-style, 0.90 ms) | ✅ |"
    assert cpu in report
    assert "| litert | 0.20 | 0.50 | 0.05 |" in report
    assert "never heard fold 4" in report


def test_a_probe_that_beats_ours_fails_the_target(tmp_path: Path) -> None:
    """Ours below the mn04 probe is marked, whatever the absolute figures."""
    report = _report(tmp_path, _results(ours_separation=1.5))

    assert _row(
        report,
        "cry and laughter AUC above both logistic probes' (mn04, YAMNet embeddings)",
    ).endswith("❌ |")


def test_report_lists_spread_loso_and_our_false_positives_and_misses(
    tmp_path: Path,
) -> None:
    """Crossval's tables: summary with fold spread and LOSO for all, the details for ours."""
    report = _report(tmp_path, _results())

    assert "### Pooled out-of-fold, grouped 4-fold CV" in report
    assert "### Leave one source out" in report
    assert "| YAMNet classes | cry |" in report
    assert "#### ours: cry" in report
    assert "#### YAMNet probe: cry" not in report
    details = report[report.index("#### ours: laughter") :]
    assert "by class" in details
    assert "| laughing |" in report
    assert "Highest-scoring negatives" in details
    assert "Lowest-scoring positives" in details
    assert "| music at 0 dB SNR | 85.0 % |" in report
    assert "| 0.93 (default) |" in report


def test_shipped_thresholds_out_of_date_are_flagged(tmp_path: Path) -> None:
    """A shipped model whose thresholds are not this run's cross-validated ones is called out."""
    results = _results()
    results["model"]["thresholds"] = {"cry": 0.99, "laughter": 0.9}

    assert "are not this run's cross-validated" in _report(tmp_path, results)
    assert "are not this run's" not in _report(tmp_path, _results())


def test_report_renders_the_figures_measured_inside_home_assistant(
    tmp_path: Path,
) -> None:
    """Each backend's overhead is a target row and a line of its own section, from the JSON."""
    report = _report(tmp_path, _results(), HASS_CPU_FIGURES)

    assert (
        "| CPU the integration adds inside Home Assistant beyond the engine's own, litert "
        "| ≤ 2 ms per audio s | 1.4 ms (hass 3.0 ms - engine 1.5 ms) | ✅ |"
    ) in report
    assert "beyond the engine's own, numpy | ≤ 2 ms per audio s | 3.0 ms" in report
    assert "| numpy | 7.5 | 0.1 | 7.5 | 4.4 | 3.0 | – |" in report
    section = report[report.index("## Inside Home Assistant") :]
    assert "| litert (auto) | 3.0 | 0.1 | 3.0 | 1.5 | 1.4 | 1.8 |" in section
    assert "2026-12-04 06:30 UTC" in section


def test_report_takes_the_overhead_over_the_paced_engine_and_shows_the_tight_loop(
    tmp_path: Path,
) -> None:
    """With a paced engine figure, the overhead row names it and the tight loop gets a column."""
    paced = HASS_CPU_FIGURES | {
        "engine_paced_s": 15.0,
        "block_s": 1.0,
        "backends": {
            "numpy": HASS_CPU_FIGURES["backends"]["numpy"]  # type: ignore[index]
            | {"engine": 6.0, "engine_tight": 4.4, "overhead": 1.45}
        },
    }

    report = _report(tmp_path, _results(), paced)

    assert (
        "beyond the engine's own, numpy | ≤ 2 ms per audio s "
        "| 1.4 ms (hass 7.5 ms - engine paced 6.0 ms) | ✅ |"
    ) in report
    section = report[report.index("## Inside Home Assistant") :]
    assert "| engine alone (paced) | engine, tight loop | overhead |" in section
    assert "| numpy | 7.5 | 0.1 | 7.5 | 6.0 | 4.4 | 1.4 | – |" in section
    assert "one per room, each on its own thread" in section


def test_report_without_an_e2e_measurement_leaves_the_section_out(
    tmp_path: Path,
) -> None:
    """Before `scripts/e2e` has written its figures, the report has neither row nor section."""
    report = _report(tmp_path, _results())

    assert "## CPU cost" in report
    assert "Inside Home Assistant" not in report


@pytest.mark.parametrize("soak", [True, False])
def test_report_without_a_soak_leaves_its_rows_out(tmp_path: Path, soak: bool) -> None:
    """`--soak-hours 0` writes no soak: no rows, no section."""
    results = _results()
    if not soak:
        results["soak"] = None
    path = tmp_path / "REPORT.md"
    write_report(path, results)

    report = path.read_text(encoding="utf-8")
    assert ("## Soak" in report) == soak
    assert ("false cry events per 24 h" in report) == soak


def test_the_soak_reports_its_nursery_beds_by_kind_and_names_their_false_alarms(
    tmp_path: Path,
) -> None:
    """Hours and false events per kind of bed, cries over beds, and alarms naming the bed heard."""
    results = _results()
    soak = results["soak"]
    soak["ours"]["false_events"] = 2
    soak["ours"]["false_per_24h"] = 9.6
    soak["ours"]["false_by_kind"] = {
        "household": 1,
        "instrumental": 0,
        "sung": 0,
        "noise": 1,
    }
    soak["ours"]["false_alarms"] = [
        {"t": 3725.0, "clips": ["vacuum_cleaner (esc50/x.flac)"], "beds": []},
        {"t": 7322.0, "clips": [], "beds": ["noise machine: pink"]},
    ]
    soak["ours"]["missed_over_beds"] = [{"t": 900.0, "bed": "noise machine: brown"}]

    report = _report(tmp_path, results)

    section = report[report.index("### Nursery beds") :]
    assert "| noise machines | 0.35 | 0.30 | 1 | 80.0 | 0 |" in section
    assert (
        "| lullabies and songs, instrumental | 0.60 | 0.50 | 0 | 0.0 | 0 |" in section
    )
    assert "| household sound (no bed) | 4.75 | 3.95 | 1 | 6.1 | 0 |" in section
    assert "sung (voice programs)" in section
    assert "Voice Oohs" in section
    assert "Cries over a bed detected: 13 / 14; the others: 57 / 58" in section
    assert (
        "parent_singing`) among the household clips: 0 (11 in fold 1, 12 in fold 3"
        in section
    )
    assert "- 2:02:02: noise machine: pink" in report
    assert "- 0:15:00: under noise machine: brown" in section
    assert "- 1:02:05: vacuum_cleaner (esc50/x.flac)" in report
    row = _row(
        report,
        "false cry events per 24 h in the soak: household sound and ≥ 1 h of lullabies,"
        " children's songs (sung and instrumental) and noise machines",
    )
    assert row.endswith("| 9.6 (YAMNet 0.0); 1.2 h of nursery beds in 6.0 h | ❌ |")


def test_a_soak_without_an_hour_of_beds_misses_its_target(tmp_path: Path) -> None:
    """No false alarm is not enough: the soak must have held an hour of nursery sound."""
    results = _results()
    results["soak"]["nursery"]["played_hours"] = {
        "instrumental": 0.3,
        "sung": 0.1,
        "noise": 0.2,
    }
    assert _row(
        _report(tmp_path, results),
        "false cry events per 24 h in the soak: household sound"
        " and ≥ 1 h of lullabies, children's songs (sung and instrumental) and noise machines",
    ).endswith("❌ |")
    assert "| 0.0 (YAMNet 0.0); 1.2 h of nursery beds" in _report(tmp_path, _results())
    assert _report(tmp_path, _results()).count("nursery beds in 6.0 h | ✅ |") == 1
