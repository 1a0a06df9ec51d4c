"""Benchmark: accuracy on the validation fold and CPU cost per backend, beside YAMNet's.

`python -m models.bench` (scripts/bench) writes bench/REPORT.md and bench/results.json.
YAMNet is scored the way Frigate uses it: the maximum over consecutive 0.975-s windows of the cry
(or laughter) class scores.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
from pathlib import Path
import platform
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.baby_monitor.engine.detector import DEFAULT_CONFIRM_S
from custom_components.baby_monitor.engine.model import (
    DEFAULT_MODEL,
    ModelMetadata,
    load_metadata,
)
from custom_components.baby_monitor.engine.pipeline import DEFAULT_HOP_S, Listener
from custom_components.baby_monitor.engine.runtime import (
    Backend,
    available_backends,
    load_runtime,
)

from .data import DEFAULT_DATA, load_audio, read_manifest
from .evaluate import clip_scores, evaluate_model, window_max
from .metrics import threshold_at_fpr
from .soak import household, rss_mb, run_soak
from .teacher import FRAME as YAMNET_SAMPLES, YamNet
from .train import ROOT, validation_maskers

type Floats = npt.NDArray[np.float32]

COST_REPEATS = 3


def _cpu_ms_per_audio_s(
    run: Callable[[Floats], object], audio: Floats, block_s: float
) -> float:
    """Process CPU time spent per second of audio, feeding `audio` in `block_s` blocks.

    The least of `COST_REPEATS` passes: a busy neighbour on a shared machine once made one pass
    of the same model cost twice as much, and interference only ever adds time.
    """
    block = int(block_s * 16000)
    passes = []
    for _ in range(COST_REPEATS):
        start = time.process_time()
        for i in range(0, audio.size, block):
            run(audio[i : i + block])
        passes.append(time.process_time() - start)
    return 1000 * min(passes) / (audio.size / 16000)


def measure_cost(
    meta: ModelMetadata, backends: Sequence[Backend], audio: Floats
) -> dict[str, Any]:
    """Whole-pipeline CPU per second of audio for each backend, and YAMNet's, on the same audio."""
    cost: dict[str, Any] = {
        "audio_s": audio.size / 16000,
        "hop_s": DEFAULT_HOP_S,
        "repeats": COST_REPEATS,
    }
    for backend in backends:
        before = rss_mb()
        listener = Listener(load_runtime(meta, backend), hop_s=DEFAULT_HOP_S)
        listener.feed(audio[: 16000 * 8])  # warm up: first invoke allocates
        cost[backend] = _cpu_ms_per_audio_s(listener.feed, audio, 0.1)
        cost[f"{backend}_rss_added_mb"] = rss_mb() - before
    yamnet = YamNet()
    buffer: list[Floats] = []

    def yamnet_feed(block: Floats) -> None:
        buffer.append(block)
        if sum(b.size for b in buffer) >= YAMNET_SAMPLES:
            joined = np.concatenate(buffer)
            yamnet.frames(joined[:YAMNET_SAMPLES])
            buffer[:] = [joined[YAMNET_SAMPLES:]]

    cost["yamnet_litert"] = _cpu_ms_per_audio_s(yamnet_feed, audio, 0.1)
    return cost


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure everything and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/audio_cache")
    parser.add_argument("--cost-seconds", type=float, default=120.0)
    parser.add_argument(
        "--soak-hours", type=float, default=6.0, help="0 skips the soak"
    )
    parser.add_argument(
        "--confirm",
        type=float,
        default=DEFAULT_CONFIRM_S,
        help="detector confirm time in the soak (s; default: the integration's)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite REPORT.md from results.json and the e2e's hass_cpu.json",
    )
    parser.add_argument(
        "--hop",
        type=float,
        default=DEFAULT_HOP_S,
        help="seconds between windows in the soak (default: the integration's)",
    )
    args = parser.parse_args(argv)
    from .report import render, with_hass_cpu, write_report  # noqa: PLC0415

    if args.report_only:
        print(render(args.out).read_text())
        return with_hass_cpu(
            json.loads((args.out / "results.json").read_text()), args.out
        )

    meta = load_metadata(args.model)
    clips = [c for c in read_manifest(args.data) if c.fold == 4]
    audios = load_audio(clips, args.data, args.cache)
    maskers = validation_maskers(clips, audios)
    backends = [b for b in available_backends() if b in ("litert", "numpy")]
    runtime = load_runtime(meta, backends[0])
    ours = evaluate_model(
        clips,
        audios,
        window_max(runtime.predict_many, meta.frontend, meta.window_s),
        meta.thresholds,
        maskers,
    )
    yamnet = YamNet()
    yamnet_clean = clip_scores(audios, yamnet.score_clip)
    yamnet_thresholds = {
        label: threshold_at_fpr(
            [c.label == label for c in clips], yamnet_clean[:, i], 0.01
        )
        for i, label in enumerate(("cry", "laughter"))
    }
    theirs = evaluate_model(
        clips, audios, yamnet.score_clip, yamnet_thresholds, maskers
    )

    stream = np.concatenate(audios)[: int(args.cost_seconds * 16000)]
    cost = measure_cost(meta, backends, stream)
    home = [(c, a) for c, a in zip(clips, audios, strict=True) if household(c)]
    soak = (
        run_soak(
            runtime,
            [a for _, a in home],
            [a for c, a in zip(clips, audios, strict=True) if c.label == "cry"],
            args.soak_hours,
            yamnet_thresholds["cry"],
            confirm_s=args.confirm,
            hop_s=args.hop,
        )
        if args.soak_hours > 0
        else None
    )
    for alarm in soak["ours"]["false_alarms"] if soak else []:
        alarm["clips"] = [
            f"{home[i][0].orig_class} ({home[i][0].path})" for i in alarm["clips"]
        ]
    results = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "model": {
            "name": meta.name,
            "version": meta.version,
            "bytes": meta.model_path.stat().st_size,
        },
        "ours": {k: v for k, v in ours.items() if k != "scores"},
        "yamnet": {k: v for k, v in theirs.items() if k != "scores"},
        "cost_ms_per_audio_s": cost,
        "soak": soak,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(results, indent=1, default=float) + "\n"
    )
    write_report(args.out / "REPORT.md", with_hass_cpu(results, args.out))
    print((args.out / "REPORT.md").read_text())
    return results


def main() -> None:
    """Console entry."""
    run()


if __name__ == "__main__":
    main()
