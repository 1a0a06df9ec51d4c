"""`baby-monitor`: scan recordings, listen to a live source, list microphones."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import dataclasses
import json
import math
from pathlib import Path
import sys
import time
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from .audio import BLOCK_SAMPLES, AudioError, decode_blocks
from .backends import BACKENDS, ModelRuntime, load_runtime
from .detector import (
    DEFAULT_CONFIRM_S,
    DEFAULT_HOLD_S,
    DetectorConfig,
    SoundEvent,
    confirm_for,
    detect_episodes,
)
from .model import DEFAULT_MODEL, ModelError, load_metadata
from .pipeline import DEFAULT_HOP_S, SCAN_HOP_S, SoundPipeline, WindowStream
from .windows import clip_windows

__all__ = ["main", "scan_file"]

type Floats = npt.NDArray[np.float32]


def _configs(
    runtime: ModelRuntime, args: argparse.Namespace
) -> dict[str, DetectorConfig]:
    meta = runtime.meta
    return {
        label: DetectorConfig(
            threshold=meta.thresholds[label]
            if (chosen := getattr(args, f"{label}_threshold", None)) is None
            else chosen,
            confirm_s=confirm_for(label, args.confirm),
            hold_s=args.hold,
            window_s=meta.window_s,
        )
        for label in meta.labels
    }


def scan_file(
    path: str,
    runtime: ModelRuntime,
    configs: dict[str, DetectorConfig],
    hop_s: float = SCAN_HOP_S,
    *,
    keep_audio: bool = False,
    block_samples: int = BLOCK_SAMPLES,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scan one file: (the JSON object of the contract, arrays for plotting).

    The file is decoded and fed to a `WindowStream` `block_samples` at a time, so memory does
    not grow with its length; only the scores (two floats a window) and, with `keep_audio`,
    the decoded audio for `--plot` (64 kB a second) are kept. Without it `arrays["audio"]`
    is None.
    """
    meta = runtime.meta
    stream = WindowStream(meta.frontend, meta.window_s, hop_s, from_first_window=True)
    cache = runtime.new_cache()
    times: list[float] = []
    scores: list[Floats] = []
    # Audio before the first window: a clip shorter than a window gets one at its end.
    head: list[Floats] = []
    kept: list[Floats] = []
    samples = 0
    for block in decode_blocks(path, meta.sample_rate, block_samples):
        samples += block.size
        if keep_audio:
            kept.append(block)
        if not times:
            head.append(block)
        if windows := stream.push(block):
            head.clear()
            times += [window.t for window in windows]
            scores += [
                runtime.predict(w.features, end=w.end, cache=cache)[None]
                for w in windows
            ]
    if not times:  # at least one frame of audio, even for a file shorter than a frame
        audio = np.concatenate(head)
        audio = np.pad(audio, (0, max(0, meta.frontend.hop_length - audio.size)))
        ends, stacked = clip_windows(audio, meta.frontend, meta.window_s, hop_s)
        times, scores = [float(t) for t in ends], [runtime.predict_many(stacked)]
    probs = np.concatenate(scores)
    episodes = detect_episodes(times, probs, meta.labels, configs)
    result = {
        "file": path,
        "duration_s": round(samples / meta.sample_rate, 3),
        "backend": runtime.backend,
        "windows": [
            {"t": round(float(t), 3)}
            | {
                label: round(float(p), 4)
                for label, p in zip(meta.labels, row, strict=True)
            }
            for t, row in zip(times, probs, strict=True)
        ],
        "events": [
            {
                "type": e.label,
                "start": round(e.start, 3),
                "end": round(e.end, 3),
                "confidence": round(e.confidence, 4),
            }
            for e in episodes
        ],
    }
    return result, {
        "audio": np.concatenate(kept) if keep_audio else None,
        "times": np.asarray(times),
        "probs": probs,
        "episodes": episodes,
    }


def _plot_path(base: str, file: str, many: bool) -> Path:
    out = Path(base)
    return (
        out.with_name(f"{out.stem}-{Path(file).stem}{out.suffix or '.png'}")
        if many
        else out
    )


def _print_human(result: dict[str, Any], out: TextIO) -> None:
    if "error" in result:
        print(f"{result['file']}: error: {result['error']}", file=out)
        return
    peak = {
        label: max((w[label] for w in result["windows"]), default=0.0)
        for label in ("cry", "laughter")
    }
    print(
        f"{result['file']}: {result['duration_s']:.1f} s, {len(result['windows'])} windows, "
        f"peak cry {peak['cry']:.2f}, laughter {peak['laughter']:.2f}",
        file=out,
    )
    for event in result["events"]:
        print(
            f"  {event['type']:<8} {event['start']:7.1f} s - {event['end']:7.1f} s  "
            f"(confidence {event['confidence']:.2f})",
            file=out,
        )


def _scan(args: argparse.Namespace) -> int:
    runtime = _load(args)
    configs = _configs(runtime, args)
    failed = False
    for file in args.files:
        try:
            result, arrays = scan_file(
                file, runtime, configs, args.hop, keep_audio=bool(args.plot)
            )
        except AudioError as err:
            failed = True
            result = {"file": file, "error": str(err)}
        else:
            if args.plot:
                from .plot import plot_scan  # noqa: PLC0415 - matplotlib only when asked

                plot_scan(
                    _plot_path(args.plot, file, len(args.files) > 1),
                    arrays,
                    runtime.meta,
                    configs,
                    title=Path(file).name,
                )
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            _print_human(result, sys.stdout)
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> ModelRuntime:
    return load_runtime(load_metadata(args.model), args.backend)


def _event_line(event: SoundEvent) -> str:
    """One JSON line per event, named as Home Assistant's event entity names them."""
    return json.dumps(
        {
            "t": round(event.t, 2),
            "event": f"{event.label}_{event.kind}",
            "confidence": round(event.confidence, 3),
            "duration": round(event.duration, 2),
        }
    )


async def _listen(args: argparse.Namespace) -> int:
    from .sources import FFmpegSource, SoundDeviceSource, SourceError  # noqa: PLC0415

    runtime = _load(args)
    listener = SoundPipeline(runtime, _configs(runtime, args), args.hop)
    if args.url:
        source: FFmpegSource | SoundDeviceSource = FFmpegSource(
            args.url, realtime=args.realtime
        )
    elif args.ffmpeg_mic:
        source = FFmpegSource.microphone(args.ffmpeg_mic[1], driver=args.ffmpeg_mic[0])
    else:
        device: int | str | None = args.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        source = SoundDeviceSource(device)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    await source.start()
    print(
        f"listening to {source.name} with the {runtime.backend} backend",
        file=sys.stderr,
    )
    try:
        async for block in source.blocks():
            for scored in await loop.run_in_executor(None, listener.feed, block):
                if args.verbose:
                    print(
                        json.dumps({"t": scored.t, **scored.probabilities}), flush=True
                    )
                for event in scored.events:
                    print(_event_line(event), flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    except SourceError as err:
        if err.reason != "stream_ended":
            raise
        print(f"stream ended: {err}", file=sys.stderr)
    finally:
        await source.stop()
        for detector in listener.detectors.values():
            if (closing := detector.reset(listener.stream.seconds)) is not None:
                print(_event_line(closing), flush=True)
    return 0


def _devices(args: argparse.Namespace) -> int:
    from .sources import list_input_devices, portaudio_available  # noqa: PLC0415

    devices = list_input_devices()
    if args.json:
        print(json.dumps([dataclasses.asdict(device) for device in devices]))
        return 0
    if not portaudio_available():
        print(
            "PortAudio is not available here; use --ffmpeg-mic pulse default (or alsa default)."
        )
    for device in devices:
        mark = "*" if device.is_default else " "
        print(
            f"{mark} {device.index:>3}  {device.name}  ({device.channels} ch, "
            f"{device.default_samplerate:.0f} Hz)"
        )
    if portaudio_available() and not devices:
        print("no input devices found")
    return 0


def _number(text: str) -> float:
    """Parse a finite number; argparse reports a bad one as a usage error naming the option."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """Parse seconds, zero or more."""
    if (value := _number(text)) < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """Parse seconds, more than zero."""
    if (value := _number(text)) <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _probability(text: str) -> float:
    """Parse a threshold strictly between 0 and 1."""
    if not 0 < (value := _number(text)) < 1:
        raise argparse.ArgumentTypeError(
            f"must be a probability between 0 and 1 (both excluded), got {text!r}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baby-monitor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def detection(p: argparse.ArgumentParser, confirm_s: float, hop_s: float) -> None:
        p.add_argument(
            "--model", default=str(DEFAULT_MODEL), help="model metadata JSON"
        )
        p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
        p.add_argument(
            "--hop",
            type=_positive_seconds,
            default=hop_s,
            help=f"seconds between windows (default {hop_s:g})",
        )
        p.add_argument(
            "--confirm",
            type=_seconds,
            default=confirm_s,
            help=f"seconds crying must stay above threshold (default {confirm_s:g}; "
            "laughter counts at once)",
        )
        p.add_argument(
            "--hold",
            type=_seconds,
            default=DEFAULT_HOLD_S,
            help="seconds below before it ends",
        )
        for label in ("cry", "laughter"):
            p.add_argument(
                f"--{label}-threshold",
                type=_probability,
                metavar="P",
                help="probability that counts, 0 < P < 1 (default: the model's)",
            )

    scan = sub.add_parser("scan", help="scan audio files")
    # A recording is scanned for every episode in it, short clips included; a live source
    # waits for the integration's confirm time and hop, as Home Assistant does.
    detection(scan, 0.0, SCAN_HOP_S)
    scan.add_argument(
        "--json", action="store_true", help="one JSON object per file per line"
    )
    scan.add_argument(
        "--plot", metavar="OUT.png", help="waveform, spectrogram, traces, events"
    )
    scan.add_argument("files", nargs="+", metavar="FILE")
    scan.set_defaults(func=_scan)

    listen = sub.add_parser("listen", help="print events from a live source")
    detection(listen, DEFAULT_CONFIRM_S, DEFAULT_HOP_S)
    where = listen.add_mutually_exclusive_group()
    where.add_argument("--device", help="PortAudio input device (index or name)")
    where.add_argument("--url", help="stream URL or file ffmpeg reads")
    where.add_argument(
        "--ffmpeg-mic", nargs=2, metavar=("DRIVER", "DEVICE"), help="e.g. pulse default"
    )
    listen.add_argument(
        "--realtime", action="store_true", help="play --url files at real speed"
    )
    listen.add_argument(
        "--seconds", type=_positive_seconds, help="stop after this long"
    )
    listen.add_argument("--verbose", action="store_true", help="print every window")
    listen.set_defaults(func=lambda a: asyncio.run(_listen(a)))

    devices = sub.add_parser("devices", help="list input devices")
    devices.add_argument("--json", action="store_true")
    devices.set_defaults(func=_devices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit status 1 if any file failed, 2 on a model or source error."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except ModelError as err:
        print(f"baby-monitor: model error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        from .sources import SourceError  # noqa: PLC0415

        if isinstance(err, SourceError):
            print(f"baby-monitor: {err}", file=sys.stderr)
            return 2
        raise
    return status


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
