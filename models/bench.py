"""Benchmark: pooled out-of-fold accuracy beside four baselines, CPU, size, and a soak.

`python -m models.bench` (scripts/bench) writes bench/REPORT.md and bench/results.json.

Accuracy is never measured on one fold (DESIGN.md §5): every figure is the pooled out-of-fold
score of grouped 4-fold cross-validation over dev folds 1–4 (plus leave-one-source-out), and
every baseline is measured in the same run on the same splits:

- ours: the head's recipe (`models.head.crossvalidate`), retrained per split on the frozen
  mn04 patch rows of every audio variant;
- mn04 probe: L2 logistic regression on mn04's 384-d embedding (its logit columns left out);
- mn04 classes: mn04's own AudioSet logits through a sigmoid (cry: "Baby cry", laughter: the
  laughter family's maximum), max over patches;
- YAMNet probe and YAMNet classes (Frigate-style), as `python -m models.crossval` scores them.

The soak plays fold-4 audio, so it runs a head trained on folds 1–3 only, with the shipped
backbone and thresholds: the shipped head was trained on all four folds and has heard it.
The rooms (`models.rooms`, "It learns your home") likewise hear each fold through the head
trained on the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
from pathlib import Path
import platform
import tempfile
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.backends import (
    Backend,
    ModelRuntime,
    available_backends,
    load_runtime,
)
from baby_monitor_engine.detector import DEFAULT_CONFIRM_S
from baby_monitor_engine.frontend import StreamingFrontend
from baby_monitor_engine.model import (
    DEFAULT_MODEL,
    LABELS,
    ModelMetadata,
    load_metadata,
)
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.pipeline import DEFAULT_HOP_S, SoundPipeline

from .backbone import LOGITS
from .crossval import (
    DEV_FOLDS,
    PROBE_GRID,
    PatchSet,
    class_scores,
    cv_report,
    dev_splits,
    logistic,
    loso_report,
    out_of_fold,
    probe_out_of_fold,
    source_splits,
    yamnet_patchsets,
)
from .dataset import DEFAULT_DATA, Clip, load_audio, read_manifest
from .head import (
    HeadSettings,
    crossvalidate,
    export_head,
    fit_on,
    training_variants,
    write_model,
)
from .nursery import sounds as nursery_sounds
from .patches import patch_features
from .rooms import run_rooms
from .soak import NURSERY_SHARE, household, rss_mb, run_soak
from .teacher import FRAME as YAMNET_SAMPLES, YamNet

type Floats = npt.NDArray[np.float32]

ROOT = Path(__file__).resolve().parent.parent
COST_REPEATS = 3
SOAK_FOLD = 4
"""Fold whose household sounds and cries the soak plays; its head is trained on the others."""
OURS = "ours"
BASELINES = ("mn04 probe", "mn04 classes", "YAMNet probe", "YAMNet classes")
PROBES = ("mn04 probe", "YAMNet probe")
CRY_LOGITS = (23,)
"""AudioSet "Baby cry, infant cry"."""
LAUGHTER_LOGITS = (16, 17, 18, 19, 20, 21)
"""AudioSet laughter family: laughter, baby laughter, giggle, snicker, belly laugh, chuckle."""
SENSITIVITY = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
"""Cry thresholds whose out-of-fold masked recall and clean false-positive rate are listed."""


def _cpu_ms_per_audio_s(
    run: Callable[[Floats], object], audio: Floats, block_s: float
) -> float:
    """Process CPU time spent per second of audio, feeding `audio` in `block_s` blocks.

    The least of `COST_REPEATS` passes: a busy neighbour on a shared machine once made one pass
    of the same model cost twice as much, and interference only ever adds time.
    """
    block = int(block_s * SAMPLE_RATE)
    passes = []
    for _ in range(COST_REPEATS):
        start = time.process_time()
        for i in range(0, audio.size, block):
            run(audio[i : i + block])
        passes.append(time.process_time() - start)
    return 1000 * min(passes) / (audio.size / SAMPLE_RATE)


def cost_parts(runtime: ModelRuntime, audio: Floats) -> dict[str, float]:
    """Where the pipeline's CPU goes, per second of audio: frontend, backbone, head.

    The backbone embeds one new patch per second (the rest come from the cache); the head is
    timed on a window whose patches are all cached already.
    """
    meta = runtime.meta
    frontend = StreamingFrontend(meta.frontend)
    parts = {"frontend": _cpu_ms_per_audio_s(frontend.process, audio, DEFAULT_HOP_S)}
    features = StreamingFrontend(meta.frontend).process(audio)
    frames, step = meta.window_frames, meta.frontend.frames_for(DEFAULT_HOP_S)
    ends = range(frames, len(features) + 1, step)
    seconds = len(ends) * DEFAULT_HOP_S
    inference, head = [], []
    for _ in range(COST_REPEATS):
        cache = runtime.new_cache()
        spent = [0.0, 0.0]
        for end in ends:
            window = features[end - frames : end]
            # the second call finds every patch cached: it times the head alone
            for k in range(2):
                started = time.process_time()
                runtime.predict(window, end=end, cache=cache)
                spent[k] += time.process_time() - started
        inference.append(spent[0])
        head.append(spent[1])
    parts["inference"] = 1000 * min(inference) / seconds
    parts["head"] = 1000 * min(head) / seconds
    parts["backbone"] = parts.pop("inference") - parts["head"]
    return parts


def measure_cost(
    meta: ModelMetadata, backends: Sequence[Backend], audio: Floats
) -> dict[str, Any]:
    """Whole-pipeline CPU per second of audio for each backend, and YAMNet's, on the same audio.

    Audio arrives in blocks of one hop, as the integration's sources read it.
    """
    cost: dict[str, Any] = {
        "audio_s": audio.size / SAMPLE_RATE,
        "hop_s": DEFAULT_HOP_S,
        "block_s": DEFAULT_HOP_S,
        "repeats": COST_REPEATS,
    }
    for backend in backends:
        before = rss_mb()
        runtime = load_runtime(meta, backend)
        listener = SoundPipeline(runtime, hop_s=DEFAULT_HOP_S)
        listener.feed(audio[: SAMPLE_RATE * 8])  # warm up: first invoke allocates
        cost[backend] = _cpu_ms_per_audio_s(listener.feed, audio, DEFAULT_HOP_S)
        cost[f"{backend}_rss_added_mb"] = rss_mb() - before
        cost[f"{backend}_parts"] = cost_parts(runtime, audio)
    yamnet = YamNet()
    buffer: list[Floats] = []

    def yamnet_feed(block: Floats) -> None:
        buffer.append(block)
        if sum(b.size for b in buffer) >= YAMNET_SAMPLES:
            joined = np.concatenate(buffer)
            yamnet.frames(joined[:YAMNET_SAMPLES])
            buffer[:] = [joined[YAMNET_SAMPLES:]]

    cost["yamnet_litert"] = _cpu_ms_per_audio_s(yamnet_feed, audio, DEFAULT_HOP_S)
    return cost


# --- accuracy -----------------------------------------------------------------------------------


def _sigmoid(x: Floats) -> Floats:
    return np.asarray(np.exp(-np.logaddexp(0, -x)), np.float32)


def mn04_patchsets(
    clips: Sequence[Clip], offsets: npt.ArrayLike, features: Floats
) -> tuple[PatchSet, PatchSet]:
    """Split mn04 patch rows into (sigmoid of the AudioSet logits, 384-d embedding) patch sets.

    A patch row is the embedding followed by the logits of `LOGITS`, in that order.
    """
    paths = tuple(c.path for c in clips)
    bounds = np.asarray(offsets, np.int64)
    width = features.shape[1] - len(LOGITS)
    return (
        PatchSet(paths, bounds, _sigmoid(features[:, width:])),
        PatchSet(paths, bounds, np.ascontiguousarray(features[:, :width])),
    )


def mn04_classes() -> dict[str, list[int]]:
    """Columns of the logit patch set that score each label (mn04's own classes)."""
    return {
        "cry": [LOGITS.index(k) for k in CRY_LOGITS],
        "laughter": [LOGITS.index(k) for k in LAUGHTER_LOGITS],
    }


def probe(
    embeddings: PatchSet, clips: Sequence[Clip], loso: Sequence[Any]
) -> dict[str, Any]:
    """Logistic probe as `python -m models.crossval` fits it: C per label by pooled OOF AUC."""
    scores, chosen, grid_aucs = probe_out_of_fold(embeddings, clips, PROBE_GRID)
    held_out: dict[str, Floats] = {}
    for label in LABELS:
        held_out |= out_of_fold(
            embeddings, clips, logistic(chosen[label]), loso, labels=(label,)
        )
    return {
        "cv": cv_report(clips, scores),
        "loso": loso_report(clips, held_out, loso),
        "c": chosen,
        "c_grid_auc": grid_aucs,
    }


def sensitivity(
    clips: Sequence[Clip],
    scores: dict[str, dict[str, list[float]]],
    default: float,
) -> dict[str, Any]:
    """Per cry threshold: out-of-fold cry recall of every variant, and negatives' FPR clean and band."""
    thresholds = sorted({*SENSITIVITY, default})
    y = np.array([c.label == "cry" for c in clips])
    rows = []
    for threshold in thresholds:
        row: dict[str, Any] = {"threshold": threshold}
        for name, by_label in scores.items():
            over = np.asarray(by_label["cry"]) >= threshold
            row[name] = {
                "recall": float(over[y].mean()),
                "false_positive_rate": float(over[~y].mean()),
            }
        rows.append(row)
    return {"default": default, "rows": rows}


def accuracy(
    clips: Sequence[Clip], data: Path, audio_cache: Path, cache: Path
) -> tuple[dict[str, Any], dict[str, float]]:
    """Pooled out-of-fold reports of ours and the baselines, and seconds each took."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    settings = HeadSettings()
    ours = crossvalidate(clips, settings)
    seconds[OURS] = time.monotonic() - started
    loso = source_splits(clips)
    results: dict[str, Any] = {
        OURS: {
            "cv": ours["cv"],
            "loso": ours["loso"],
            "thresholds": ours["thresholds"],
            "variants": ours["variants"],
            "settings": settings.to_dict(),
            "sensitivity": sensitivity(
                clips, ours["scores"], ours["thresholds"]["cry"]
            ),
        }
    }

    started = time.monotonic()
    offsets, features = patch_features("clean", clips)
    logits, embedding = mn04_patchsets(clips, offsets, features)
    results["mn04 probe"] = probe(embedding, clips, loso)
    seconds["mn04 probe"] = time.monotonic() - started
    classes = class_scores(logits, mn04_classes())
    results["mn04 classes"] = {
        "cv": cv_report(clips, classes),
        "loso": loso_report(clips, classes, loso),
    }

    started = time.monotonic()
    yamnet_scores, yamnet_embeddings = yamnet_patchsets(clips, data, cache, audio_cache)
    results["YAMNet probe"] = probe(yamnet_embeddings, clips, loso)
    seconds["YAMNet probe"] = time.monotonic() - started
    classes = class_scores(yamnet_scores)
    results["YAMNet classes"] = {
        "cv": cv_report(clips, classes),
        "loso": loso_report(clips, classes, loso),
    }
    return results, seconds


# --- soak ---------------------------------------------------------------------------------------


def soak_model(
    clips: Sequence[Clip], meta: ModelMetadata, out_dir: Path, settings: HeadSettings
) -> ModelMetadata:
    """Write the shipped backbone with a head trained on every dev fold but `SOAK_FOLD`.

    Its thresholds are the shipped ones (the cross-validated defaults), so the soak plays the
    shipped detector settings on audio its head never heard.
    """
    if meta.backbone is None:
        raise ValueError(f"{meta.model_path} has no backbone")
    variants = training_variants(clips, settings)
    train = np.array([c.fold != SOAK_FOLD for c in clips])
    head = fit_on(variants, clips, train, settings)
    write_model(
        out_dir,
        meta.name,
        meta.backbone.read_model(),
        export_head(head, meta.patches),
        meta.patches,
        meta.thresholds,
        {
            "trained_on_folds": sorted({c.fold for c in clips} - {SOAK_FOLD}),
            "settings": settings.to_dict(),
        },
    )
    return load_metadata(out_dir / f"{meta.name}.json")


def soak(
    dev: Sequence[Clip],
    audios: Sequence[Floats],
    meta: ModelMetadata,
    backend: Backend,
    args: argparse.Namespace,
    yamnet_threshold: float,
) -> dict[str, Any]:
    """Run the soak on `SOAK_FOLD`'s household sounds and cries with a head that never heard them.

    `audios` are the audio of `dev`'s clips in `SOAK_FOLD`, in order. Nursery beds (rendered
    once into `args.cache`) fill `args.soak_nursery` of the time.
    """
    clips = [c for c in dev if c.fold == SOAK_FOLD]
    home = [(c, a) for c, a in zip(clips, audios, strict=True) if household(c)]
    nursery = nursery_sounds(cache=args.cache) if args.soak_nursery > 0 else []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        runtime = load_runtime(
            soak_model(dev, meta, Path(tmp), HeadSettings()), backend
        )
        result = run_soak(
            runtime,
            [a for _, a in home],
            [a for c, a in zip(clips, audios, strict=True) if c.label == "cry"],
            args.soak_hours,
            yamnet_threshold,
            confirm_s=args.confirm,
            hop_s=args.hop,
            nursery=nursery,
            nursery_share=args.soak_nursery,
        )
    for alarm in result["ours"]["false_alarms"]:
        alarm["clips"] = [
            f"{home[i][0].orig_class} ({home[i][0].path})" for i in alarm["clips"]
        ]
    result["fold"] = SOAK_FOLD
    result["head_folds"] = sorted({c.fold for c in dev} - {SOAK_FOLD})
    result["household_clips"] = len(home)
    result["cry_clips"] = sum(c.label == "cry" for c in clips)
    singing = [c for c in dev if c.orig_class == "parent_singing"]
    result["parent_singing"] = {
        "soak": sum(c.orig_class == "parent_singing" for c, _ in home),
        "by_fold": {f: sum(c.fold == f for c in singing) for f in DEV_FOLDS},
    }
    return result


# --- entry --------------------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure everything and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/audio_cache")
    parser.add_argument(
        "--feature-cache",
        type=Path,
        default=ROOT / "build/cache",
        help="YAMNet patch scores and embeddings (as `python -m models.crossval` caches them)",
    )
    parser.add_argument("--cost-seconds", type=float, default=120.0)
    parser.add_argument(
        "--soak-hours", type=float, default=6.0, help="0 skips the soak"
    )
    parser.add_argument(
        "--soak-nursery",
        type=float,
        default=NURSERY_SHARE,
        help="share of the soak filled by nursery beds: lullabies, songs, noise machines "
        "(0 leaves them out)",
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
        "--rooms",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the simulated rooms taught Not a cry / Was a cry (models/rooms.py)",
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
    dev = [c for c in read_manifest(args.data) if c.fold in DEV_FOLDS]
    dev_splits(
        dev
    )  # refuses a recording group that spans two folds before hours of work
    models, seconds = accuracy(dev, args.data, args.cache, args.feature_cache)
    print(
        f"accuracy measured: {', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())}"
    )

    fold = [c for c in dev if c.fold == SOAK_FOLD]
    audios = load_audio(fold, args.data, args.cache)
    backends = [b for b in available_backends() if b in ("litert", "numpy")]
    started = time.monotonic()
    stream = np.concatenate(audios)[: int(args.cost_seconds * SAMPLE_RATE)]
    cost = measure_cost(meta, backends, stream)
    seconds["cost"] = time.monotonic() - started
    started = time.monotonic()
    soaked = (
        soak(
            dev,
            audios,
            meta,
            backends[0],
            args,
            models["YAMNet classes"]["cv"]["cry"]["threshold"],
        )
        if args.soak_hours > 0
        else None
    )
    seconds["soak"] = time.monotonic() - started
    started = time.monotonic()
    rooms = run_rooms(dev, threshold=meta.thresholds["cry"]) if args.rooms else None
    seconds["rooms"] = time.monotonic() - started
    assert meta.backbone is not None
    head_bytes = meta.model_path.stat().st_size
    backbone_bytes = meta.backbone.model_path.stat().st_size
    results = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "model": {
            "name": meta.name,
            "version": meta.version,
            "bytes": head_bytes + backbone_bytes,
            "head_bytes": head_bytes,
            "backbone_bytes": backbone_bytes,
            "thresholds": meta.thresholds,
        },
        "clips": {
            "dev": len(dev),
            "by_label": {
                label: sum(c.label == label for c in dev)
                for label in (*LABELS, "other")
            },
        },
        "models": models,
        "cost_ms_per_audio_s": cost,
        "soak": soaked,
        "rooms": rooms,
        "seconds": seconds,
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
