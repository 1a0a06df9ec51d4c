"""Train, export and evaluate the cry/laughter model: `python -m models.train` (scripts/train).

Reads `../shared/data/manifest.csv`, trains on folds 1-3, picks thresholds and reports on fold 4,
and writes `<out>/<name>.tflite`, `<out>/<name>.json` and the model card. Seeded: the same command
on the same data gives the same model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
import hashlib
import json
import multiprocessing
import os
from pathlib import Path
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.baby_monitor.engine.blas import single_threaded
from custom_components.baby_monitor.engine.frontend import (
    FrontendConfig,
    LogScale,
    log_mel,
)
from custom_components.baby_monitor.engine.model import LABELS, load_metadata
from custom_components.baby_monitor.engine.pipeline import SCAN_HOP_S
from custom_components.baby_monitor.engine.runtime import load_runtime
from custom_components.baby_monitor.engine.windows import clip_windows

from .data import DEFAULT_DATA, Clip, load_audio, read_manifest, trim_silence
from .evaluate import evaluate_model, window_max
from .music import pieces, songs
from .synth import Pools, synthesize
from .teacher import FRAME as TEACHER_FRAME, YAMNET, YamNet

type Floats = npt.NDArray[np.float32]

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 7.0
VALIDATION_FOLD = 4
SINGING_CLASSES = {"parent_singing", "child_singing"}
MUSIC_CLASSES = {"music", *SINGING_CLASSES}
# Negatives that sound most like a baby crying or laughing: drawn three times as often.
HARD_NEGATIVES = {
    "screaming",
    "crying_noninfant",
    "moaning",
    "cat",
    "sheep",
    "rooster",
    "siren",
    "music",
    "parent_singing",
    "child_singing",
    "child_other_utterance",
    "coughing",
    "door_wood_creaks",
    "dog",
    "pig",
    "cow",
    "crow",
    "throat-clearing",
    "read_speech_positive_voice",
    "read_speech_negative_voice",
    "read_speech_neutral_voice",
}
_CHUNK = 250
STEM = 24
"""Channels of the first (full 3x3, stride 2) convolution at width 1."""
BLOCKS = ((48, 2, 3), (96, 2, 3), (96, 1, 3), (128, 2, 3), (128, 1, 3))
"""Depthwise-separable blocks after it: channels at width 1, stride, time extent of the kernel."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides the trained model."""

    seed: int = 20261122
    examples: int = 40000
    epochs: int = 16
    batch_size: int = 64
    learning_rate: float = 3e-3
    width: float = 1.5  # channel multiplier of the CNN
    limit: int | None = None
    distil: bool = True  # learn YAMNet's 521 class scores as a side task (not exported)
    music_pieces: int = 160  # rendered pieces of music (models/music.py), 30 s each
    music_share: float = 0.15  # of negative draws that are rendered music
    frontend: FrontendConfig = FrontendConfig()


def _select(clips: list[Clip], folds: set[int], limit: int | None) -> list[Clip]:
    chosen = [clip for clip in clips if clip.fold in folds]
    if limit is None:
        return chosen
    by_label: dict[str, list[Clip]] = {}
    for clip in chosen:
        by_label.setdefault(clip.label, []).append(clip)
    return [clip for group in by_label.values() for clip in group[:limit]]


def build_pools(
    clips: Sequence[Clip],
    audios: Sequence[Floats],
    rendered: Sequence[Floats] = (),
    rendered_share: float = 0.0,
) -> Pools:
    """Sort trimmed training clips into positives per label, negatives and music.

    `rendered` music, and songs made by singing the training set's singing clips over it,
    join both the music (beds, maskers) and the negatives, where together they make up
    `rendered_share` of the draws.
    """
    positives: dict[str, list[Floats]] = {label: [] for label in LABELS}
    negatives: list[Floats] = []
    weights: list[float] = []
    music: list[Floats] = []
    voices: list[Floats] = []
    for clip, audio in zip(clips, audios, strict=True):
        trimmed = trim_silence(audio)
        if clip.label in positives:
            positives[clip.label].append(trimmed)
            continue
        negatives.append(trimmed)
        weights.append(3.0 if clip.orig_class in HARD_NEGATIVES else 1.0)
        if clip.orig_class in MUSIC_CLASSES:
            music.append(trimmed)
        if clip.orig_class in SINGING_CLASSES:
            voices.append(trimmed)
    p = np.asarray(weights) / np.sum(weights)
    if rendered:
        rendered = [*rendered, *songs(voices, rendered)]
        negatives += rendered
        music += rendered
        p = np.concatenate(
            [
                p * (1.0 - rendered_share),
                np.full(len(rendered), rendered_share / len(rendered)),
            ]
        )
    return Pools(
        positives=positives, negatives=negatives, music=music, negative_weights=p
    )


_POOLS: Pools | None = None
_TEACHER: Any = None


def _chunk(
    args: tuple[int, int, int, FrontendConfig, bool],
) -> tuple[npt.NDArray[np.float16], Floats, npt.NDArray[np.float16] | None]:
    """Synthesise one reproducible chunk of examples (seeded by chunk number, not by worker)."""
    global _TEACHER  # noqa: PLW0603 - one teacher per worker process
    seed, index, count, frontend, distil = args
    assert _POOLS is not None
    if distil and _TEACHER is None:
        _TEACHER = YamNet()
    rng = np.random.default_rng([seed, index])
    context = frontend.win_length - frontend.hop_length
    n = int(WINDOW_S * frontend.sample_rate) + context
    features, labels, soft = [], [], []
    # One BLAS thread per worker: the workers already fill the cores, and OpenBLAS threads
    # spinning beside them made synthesis 1.65 times slower on two cores (same features).
    with single_threaded():
        for _ in range(count):
            audio, label = synthesize(_POOLS, n, rng)
            features.append(log_mel(audio, frontend).astype(np.float16))
            labels.append(label)
            if distil:
                heard = audio[-7 * TEACHER_FRAME :]  # YAMNet's seven frames
                soft.append(_TEACHER.soft_targets(heard).astype(np.float16))
    return np.stack(features), np.stack(labels), np.stack(soft) if distil else None


def synthesize_dataset(
    pools: Pools, settings: Settings, count: int, seed: int
) -> tuple[npt.NDArray[np.float16], Floats, npt.NDArray[np.float16] | None]:
    """`count` windows of raw-dB log-mel features, labels and YAMNet's soft targets (if distilling)."""
    global _POOLS  # noqa: PLW0603 - read by forked workers
    _POOLS = pools
    raw = FrontendConfig(**{**settings.frontend.to_dict(), "log": LogScale()})
    jobs = [
        (seed, i, min(_CHUNK, count - i * _CHUNK), raw, settings.distil)
        for i in range(-(-count // _CHUNK))
    ]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_chunk, jobs)
    soft = (
        np.concatenate([p[2] for p in parts if p[2] is not None])
        if settings.distil
        else None
    )
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        soft,
    )


def multiply_adds(
    frames: int,
    mels: int,
    labels: int,
    width: float,
    blocks: Sequence[tuple[int, int, int]] = BLOCKS,
) -> int:
    """Multiply-adds of one window through the network `build_model` makes."""
    rows, cols, channels = -(-frames // 2), -(-mels // 2), round(STEM * width)
    total = rows * cols * channels * 9
    for base, stride, extent in blocks:
        rows, cols = -(-rows // stride), -(-cols // stride)
        total += rows * cols * channels * (extent * 3 + round(base * width))
        channels = round(base * width)
    return total + 2 * channels * labels


def build_model(
    frames: int,
    mels: int,
    labels: int,
    teacher_classes: int = 0,
    width: float = 1.0,
    blocks: Sequence[tuple[int, int, int]] = BLOCKS,
) -> tuple[Any, Any]:
    """Build a small depthwise-separable CNN of `blocks` (its cost per window: `multiply_adds`).

    Returns (model to train, model to ship); with `teacher_classes` the trained one also has a
    head imitating YAMNet's class scores, a side task that teaches general sound structure from
    far more than our labels say, and that is dropped from the shipped model.
    """
    import keras  # noqa: PLC0415

    layers = keras.layers
    inputs = keras.Input((frames, mels, 1), name="log_mel")
    x = layers.Conv2D(
        round(STEM * width), 3, strides=2, padding="same", use_bias=False
    )(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for base, stride, extent in blocks:
        channels = round(base * width)
        x = layers.DepthwiseConv2D(
            (extent, 3), strides=stride, padding="same", use_bias=False
        )(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(channels, 1, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    pooled = layers.Concatenate()(
        [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
    )
    x = layers.Dropout(0.2)(pooled)
    outputs = layers.Dense(labels, activation="sigmoid", name="probabilities")(x)
    serving = keras.Model(inputs, outputs, name="baby_monitor")
    if not teacher_classes:
        return serving, serving
    teacher = layers.Dense(teacher_classes, activation="sigmoid", name="teacher")(x)
    return keras.Model(inputs, [outputs, teacher], name="baby_monitor_distil"), serving


def _batches(
    features: npt.NDArray[np.float16],
    labels: Floats,
    soft: npt.NDArray[np.float16] | None,
    batch: int,
    seed: int,
) -> Iterator[tuple[Floats, Floats | tuple[Floats, Floats]]]:
    """Shuffled batches with feature-domain augmentation: level shift and SpecAugment masks."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(features))
        for start in range(0, len(order) - batch + 1, batch):
            idx = np.sort(order[start : start + batch])
            x = features[idx].astype(np.float32)
            x += rng.normal(0.0, 0.25, (batch, 1, 1)).astype(np.float32)
            frames, mels = x.shape[1:]
            f0 = rng.integers(0, mels, batch)
            fw = rng.integers(0, 8, batch)
            t0 = rng.integers(0, frames, batch)
            tw = rng.integers(0, 20, batch)
            mel_idx, frame_idx = np.arange(mels), np.arange(frames)
            fmask = (mel_idx >= f0[:, None]) & (mel_idx < (f0 + fw)[:, None])
            tmask = (frame_idx >= t0[:, None]) & (frame_idx < (t0 + tw)[:, None])
            mask = fmask[:, None, :] | tmask[:, :, None]
            x = np.where(mask, x.mean(axis=(1, 2), keepdims=True), x)
            if soft is None:
                yield x[..., None], labels[idx]
            else:
                yield x[..., None], (labels[idx], soft[idx].astype(np.float32))


def train_model(
    settings: Settings,
    features: npt.NDArray[np.float16],
    labels: Floats,
    soft: npt.NDArray[np.float16] | None = None,
) -> Any:
    """Fit the CNN on standardised features (cosine learning rate); returns the model to ship."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    model, serving = build_model(
        features.shape[1],
        features.shape[2],
        labels.shape[1],
        0 if soft is None else soft.shape[1],
        settings.width,
    )
    steps = max(1, len(features) // settings.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, decay_steps=steps * settings.epochs, alpha=0.02
    )
    label_loss = keras.losses.BinaryCrossentropy(label_smoothing=0.02)
    frames, mels = features.shape[1:]
    target_spec = tf.TensorSpec((settings.batch_size, labels.shape[1]), tf.float32)
    if soft is None:
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=label_loss)
        targets: Any = target_spec
    else:
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=[label_loss, keras.losses.BinaryCrossentropy()],
            loss_weights=[1.0, 0.5],
        )
        targets = (
            target_spec,
            tf.TensorSpec((settings.batch_size, soft.shape[1]), tf.float32),
        )
    data = tf.data.Dataset.from_generator(
        lambda: _batches(features, labels, soft, settings.batch_size, settings.seed),
        output_signature=(
            tf.TensorSpec((settings.batch_size, frames, mels, 1), tf.float32),
            targets,
        ),
    ).prefetch(2)
    model.fit(data, epochs=settings.epochs, steps_per_epoch=steps, verbose=2)
    return serving


def export_tflite(model: Any) -> bytes:
    """Convert to a float32 TFLite flatbuffer (the numpy executor supports its ops)."""
    import tensorflow as tf  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    content: bytes = converter.convert()
    return content


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_model(
    out_dir: Path,
    name: str,
    content: bytes,
    frontend: FrontendConfig,
    thresholds: dict[str, float],
    metrics: dict[str, Any],
) -> Path:
    """Write `<name>.tflite` and `<name>.json` (the metadata contract of DESIGN.md §4)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.tflite").write_bytes(content)
    frames = frontend.frames_for(WINDOW_S)
    metadata = {
        "name": name,
        "version": time.strftime("%Y.%m.%d"),
        "labels": list(LABELS),
        "sample_rate": frontend.sample_rate,
        "window_s": WINDOW_S,
        "frontend": frontend.to_dict(),
        "input": {
            "shape": [1, frames, frontend.n_mels, 1],
            "dtype": "float32",
            "scale": 0.0,
            "zero_point": 0,
        },
        "output": {"activation": "sigmoid"},
        "thresholds": thresholds,
        "metrics": metrics,
        "sha256": _sha256(content),
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return path


def validation_maskers(
    clips: Sequence[Clip], audios: Sequence[Floats]
) -> dict[str, Floats]:
    """Held-out maskers for the 0 dB test: the fold-4 sound-machine recording and fold-4 music."""
    found: dict[str, Floats] = {}
    music = [a for c, a in zip(clips, audios, strict=True) if c.orig_class == "music"]
    noise = [
        a for c, a in zip(clips, audios, strict=True) if c.orig_class == "white_noise"
    ]
    if noise:
        found["white_noise_machine"] = noise[0]
    if music:
        found["music"] = np.concatenate(music)
    rng = np.random.default_rng(0)
    found["synthetic_white_noise"] = rng.standard_normal(16000 * 10).astype(np.float32)
    return found


def export_difference(
    model: Any,
    served: Callable[[Floats], Floats],
    audios: Sequence[Floats],
    frontend: FrontendConfig,
) -> float:
    """Largest gap between the trained and the exported model over every validation window.

    Scored in fixed-size batches: the trained model is slow when called once per clip.
    """
    windows = np.concatenate(
        [clip_windows(audio, frontend, WINDOW_S, SCAN_HOP_S)[1] for audio in audios]
    )
    trained = model.predict(windows[..., None], batch_size=64, verbose=0)
    return float(np.abs(served(windows) - trained).max())


TRAINING_ONLY = ("export_max_abs_diff", "train_seconds", "model_bytes", "settings")
"""Report entries that only the training run can know; re-evaluation keeps them."""


def reevaluate(
    meta_path: Path,
    clips: Sequence[Clip],
    audios: Sequence[Floats],
    card: Path | None,
    data: Path,
) -> dict[str, Any]:
    """Score a trained model on the validation clips again and rewrite its thresholds and card.

    For a change in how thresholds are picked or in what is reported, without an hour of
    training; the model file is untouched, so its checksum still holds.
    """
    meta = load_metadata(meta_path)
    runtime = load_runtime(meta)
    kept = meta.raw["metrics"]
    report = evaluate_model(
        clips,
        audios,
        window_max(runtime.predict_many, meta.frontend, meta.window_s),
        None,
        validation_maskers(clips, audios),
        kept["settings"]["seed"],
    )
    report.pop("scores")
    report["backend"] = runtime.backend
    report.update({key: kept[key] for key in TRAINING_ONLY})
    raw = {**meta.raw, "thresholds": report["thresholds"], "metrics": report}
    meta_path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    if card:
        from .card import write_card  # noqa: PLC0415

        write_card(card, report, meta.frontend, data)
    return report


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: train, export, evaluate, write the model card."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "custom_components/baby_monitor/model"
    )
    parser.add_argument("--name", default="baby_monitor")
    parser.add_argument("--card", type=Path, default=ROOT / "models/MODEL_CARD.md")
    parser.add_argument("--cache", type=Path, default=ROOT / "build/audio_cache")
    parser.add_argument("--examples", type=int, default=Settings.examples)
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--seed", type=int, default=Settings.seed)
    parser.add_argument(
        "--music-pieces",
        type=int,
        default=Settings.music_pieces,
        help="pieces of music to render for training (needs fluidsynth)",
    )
    parser.add_argument(
        "--limit", type=int, help="clips per label and split (quick runs)"
    )
    parser.add_argument(
        "--no-distil",
        action="store_true",
        help="do not learn YAMNet's scores on the side",
    )
    parser.add_argument(
        "--reevaluate",
        action="store_true",
        help="do not train: re-score the model in --out and rewrite its thresholds and card",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        seed=args.seed,
        examples=args.examples,
        epochs=args.epochs,
        limit=args.limit,
        music_pieces=args.music_pieces,
        distil=not args.no_distil and YAMNET.exists(),
    )
    started = time.monotonic()

    clips = read_manifest(args.data)
    train_clips = _select(clips, {1, 2, 3}, settings.limit)
    val_clips = _select(clips, {VALIDATION_FOLD}, settings.limit)
    val_audio = load_audio(val_clips, args.data, args.cache)
    if args.reevaluate:
        meta_path = args.out / f"{args.name}.json"
        return reevaluate(meta_path, val_clips, val_audio, args.card, args.data)
    train_audio = load_audio(train_clips, args.data, args.cache)
    print(f"train {len(train_clips)} clips, validation {len(val_clips)} clips")

    rendered = pieces(settings.music_pieces, 30.0, settings.seed, args.cache)
    pools = build_pools(train_clips, train_audio, rendered, settings.music_share)
    features, labels, soft = synthesize_dataset(
        pools, settings, settings.examples, settings.seed
    )
    mean, std = (
        float(features.mean(dtype=np.float64)),
        float(features.std(dtype=np.float64)),
    )
    features = ((features.astype(np.float32) - mean) / std).astype(np.float16)
    frontend = FrontendConfig(
        **{**settings.frontend.to_dict(), "log": LogScale(offset=mean, scale=1.0 / std)}
    )
    print(f"synthesised {len(features)} windows in {time.monotonic() - started:.0f} s")

    model = train_model(settings, features, labels, soft)
    content = export_tflite(model)
    thresholds = dict.fromkeys(LABELS, 0.5)
    meta_path = write_model(args.out, args.name, content, frontend, thresholds, {})

    runtime = load_runtime(load_metadata(meta_path))
    report = evaluate_model(
        val_clips,
        val_audio,
        window_max(runtime.predict_many, frontend),
        None,
        validation_maskers(val_clips, val_audio),
        settings.seed,
    )
    report.pop("scores")
    report["export_max_abs_diff"] = export_difference(
        model, runtime.predict_many, val_audio, frontend
    )
    report["backend"] = runtime.backend
    report["train_seconds"] = round(time.monotonic() - started)
    report["model_bytes"] = len(content)
    report["settings"] = {
        "seed": settings.seed,
        "examples": settings.examples,
        "epochs": settings.epochs,
        "rendered_music_pieces": settings.music_pieces,
        "rendered_music_share": settings.music_share,
        "distilled_from_yamnet": settings.distil,
        "width": settings.width,
        "blocks": [list(block) for block in BLOCKS],
        "train_clips": len(train_clips),
        "validation_clips": len(val_clips),
    }
    meta_path = write_model(
        args.out, args.name, content, frontend, report["thresholds"], report
    )
    if args.card:
        from .card import write_card  # noqa: PLC0415

        write_card(args.card, report, frontend, args.data)
    print(
        json.dumps(
            {
                k: report[k]
                for k in ("thresholds", "labels", "bandwidth", "masking_0db")
            },
            indent=1,
            default=str,
        )
    )
    return report


def main() -> None:
    """Console entry."""
    run()


if __name__ == "__main__":
    main()
