"""The audio both sources play: real negatives, then a real cry, then silence, with its expectations.

Clips come from fold 4 of ``../shared/data`` (the fold the shipped model was validated on, never
trained on). They are chosen by running the shipped engine on them — the same frontend, runtime
backend and detector settings Home Assistant uses — so the proof does not rest on a lucky clip:

* each negative (read speech, music, household noise) must keep both probabilities well below
  their thresholds on its own;
* the whole programme is then scanned at ten hop phases (a live stream starts at any point of the
  integration's 1-s analysis grid), and a cry clip is taken only if, at every phase, the detector
  produces exactly one cry episode that starts after the onset within the design's p95 latency
  and no laughter at all.

The scan at every phase gives the window, in programme time, in which Home Assistant must turn
``crying`` on and off; the live checks add only the transport's latency to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
import json
from pathlib import Path
import wave

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.audio import decode_file
from baby_monitor_engine.backends import ModelRuntime, load_runtime
from baby_monitor_engine.detector import (
    DEFAULT_HOLD_S,
    OFFSET_FILL,
    DetectorConfig,
    confirm_for,
)
from baby_monitor_engine.model import DEFAULT_MODEL, ModelMetadata, load_metadata
from baby_monitor_engine.pcm import SAMPLE_RATE, float_to_pcm16, pcm16_to_float
from baby_monitor_engine.pipeline import DEFAULT_HOP_S, SoundPipeline
from models.dataset import DEFAULT_DATA, Clip, read_manifest

type Floats = npt.NDArray[np.float32]

CHUNK_S = 0.1
"""Granularity of the live stream; segment boundaries are aligned to it."""
FOLD = 4
LEVEL_DBFS = -26.0
"""Every clip is scaled to this RMS level (peaks kept below -1 dBFS)."""
PEAK_DBFS = -1.0
MARGIN = 0.2
"""Negatives must keep each probability this far below its threshold at every hop phase (and
laughter everywhere), so that the live run, bit-exact but at an unscanned phase, cannot fire."""
MAX_SWAPS = 20
"""Negative clips replaced, at most, while looking for a quiet combination."""
ONSET_LATENCY_MAX_S = 4.0
"""The design's p95 onset-to-on target (confirm time excluded); a cry clip must be heard within
it at every phase."""
MIN_WINDOWS_ABOVE = 3
"""Windows above threshold a chosen cry must give at every phase (not a marginal detection)."""
PHASES = tuple(i / 10 for i in range(10))
LEAD_S = 8.0
"""Silence heard before the programme in the scan (Home Assistant has filled its first window)."""
TAIL_S = 15.0
"""Silence after the cry in the programme."""
SCAN_TAIL_S = 25.0
"""Silence scanned after the programme, so that the cry ends in the scan at every phase."""
MUSIC_EXCERPT = (10.0, 17.0)
"""Seconds of a (long) music track used."""

NEGATIVE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("speech", ("read_speech_neutral_voice", "read_speech_positive_voice")),
    ("music", ("music",)),
    ("household", ("vacuum_cleaner", "keyboard_typing", "door_wood_knock")),
    ("household", ("brushing_teeth", "pouring_water", "footsteps", "toilet_flush")),
)
"""Negative segments in order: (label, classes to draw the clip from)."""
CRY_SOURCES = ("esc50", "giulbia_babycry", "donateacry")
"""Cry clips are tried from these sources in this order (full-band ESC-50 first)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of the programme."""

    label: str
    start_s: float
    end_s: float
    clip: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "label": self.label,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "clip": self.clip,
        }


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """A detector event of the offline scan, in programme time."""

    label: str
    kind: str
    t: float


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the scan at every hop phase says Home Assistant must do, in programme seconds."""

    on_s: tuple[float, float]
    off_s: tuple[float, float]
    negatives_max_cry: float
    negatives_max_laughter: float
    max_laughter: float
    peak_cry: float

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "on_s": list(self.on_s),
            "off_s": list(self.off_s),
            "negatives_max_cry": self.negatives_max_cry,
            "negatives_max_laughter": self.negatives_max_laughter,
            "max_laughter": self.max_laughter,
            "peak_cry": self.peak_cry,
        }


@dataclass(slots=True)
class Program:
    """The programme's samples (int16, 16 kHz mono), its parts and what must happen."""

    samples: npt.NDArray[np.int16]
    segments: list[Segment]
    cry_onset_s: float
    cry_end_s: float
    expectation: Expectation
    model: str
    model_sha256: str
    thresholds: dict[str, float]
    confirm_s: float  # crying's; laughter counts at once
    hold_s: float
    hop_s: float
    smear_s: float  # from a sound's estimated end to the end of its last window above threshold
    rejected: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Length of the programme in seconds."""
        return self.samples.size / SAMPLE_RATE

    def pcm(self) -> bytes:
        """Return the samples as little-endian 16-bit PCM."""
        return self.samples.astype("<i2").tobytes()

    def write_wav(self, path: Path) -> Path:
        """Write the programme as a 16 kHz mono 16-bit WAV file."""
        with wave.open(str(path), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(SAMPLE_RATE)
            handle.writeframes(self.pcm())
        return path

    def as_dict(self) -> dict[str, object]:
        """JSON form (without the samples)."""
        return {
            "duration_s": self.duration_s,
            "cry_onset_s": self.cry_onset_s,
            "cry_end_s": self.cry_end_s,
            "segments": [segment.as_dict() for segment in self.segments],
            "expectation": self.expectation.as_dict(),
            "model": self.model,
            "model_sha256": self.model_sha256,
            "thresholds": self.thresholds,
            "confirm_s": self.confirm_s,
            "hold_s": self.hold_s,
            "hop_s": self.hop_s,
            "smear_s": self.smear_s,
            "rejected": self.rejected,
        }

    def write_json(self, path: Path) -> Path:
        """Write the programme's description."""
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _normalise(audio: Floats) -> Floats:
    """Scale to LEVEL_DBFS RMS, peaks kept below PEAK_DBFS."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 1e-6:
        return audio
    gain = 10 ** (LEVEL_DBFS / 20) / rms
    peak = float(np.max(np.abs(audio))) * gain
    limit = 10 ** (PEAK_DBFS / 20)
    if peak > limit:
        gain *= limit / peak
    return (audio * np.float32(gain)).astype(np.float32)


def _chunk_aligned(audio: Floats) -> Floats:
    """Pad with silence to a whole number of stream chunks."""
    chunk = round(CHUNK_S * SAMPLE_RATE)
    pad = -audio.size % chunk
    return np.concatenate((audio, np.zeros(pad, np.float32))) if pad else audio


def _dequantised(audio: Floats) -> Floats:
    """Return the audio as the engine hears it once served as 16-bit PCM."""
    return pcm16_to_float(float_to_pcm16(audio).tobytes())


def _fade(audio: Floats, seconds: float = 0.02) -> Floats:
    """Short fade in and out, so that joins do not click."""
    n = min(round(seconds * SAMPLE_RATE), audio.size // 2)
    if n <= 0:
        return audio
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = audio.copy()
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


class Scanner:
    """Runs the shipped engine over audio the way Home Assistant's runtime does."""

    def __init__(self, meta: ModelMetadata, runtime: ModelRuntime) -> None:
        """Use the model's thresholds and the integration's default hold time and hop."""
        self.meta = meta
        self.runtime = runtime
        self.thresholds = dict(meta.thresholds)
        self.hop_s = DEFAULT_HOP_S
        self.hold_s = DEFAULT_HOLD_S

    def scan(
        self, audio: Floats, lead_s: float
    ) -> tuple[list[ScanEvent], list[tuple[float, dict[str, float]]]]:
        """Events and per-window probabilities, times relative to the end of `lead_s` silence."""
        listener = SoundPipeline(
            self.runtime,
            {
                label: DetectorConfig(
                    self.thresholds[label],
                    confirm_for(label),
                    self.hold_s,
                    self.meta.window_s,
                )
                for label in self.meta.labels
            },
            self.hop_s,
        )
        lead = np.zeros(round(lead_s * SAMPLE_RATE), np.float32)
        stream = np.concatenate((lead, audio))
        events: list[ScanEvent] = []
        windows: list[tuple[float, dict[str, float]]] = []
        block = round(CHUNK_S * SAMPLE_RATE)
        for start in range(0, stream.size, block):
            for scored in listener.feed(stream[start : start + block]):
                t = scored.t - lead_s
                windows.append((t, scored.probabilities))
                events.extend(
                    ScanEvent(event.label, event.kind, t) for event in scored.events
                )
        return events, windows


def _limits(scanner: Scanner) -> dict[str, float]:
    """Highest probability per label a negative may reach."""
    return {label: thr - MARGIN for label, thr in scanner.thresholds.items()}


def _loudest(
    windows: list[tuple[float, dict[str, float]]], limits: dict[str, float]
) -> tuple[float, str, float] | None:
    """Find the window (end time, label, probability) furthest over its limit, if any."""
    worst: tuple[float, str, float] | None = None
    excess = 0.0
    for t, probs in windows:
        for label, p in probs.items():
            if p - limits[label] > excess:
                excess, worst = p - limits[label], (t, label, p)
    return worst


class _Pool:
    """Fold-4 clips of one negative kind, decoded and screened on demand."""

    def __init__(
        self,
        label: str,
        clips: list[Clip],
        data_dir: Path,
        scanner: Scanner,
        rejected: list[str],
    ) -> None:
        self.label = label
        self._clips = iter(clips)
        self._data_dir = data_dir
        self._scanner = scanner
        self._rejected = rejected

    def next(self) -> tuple[str, Floats]:
        """Decode the next clip the model leaves alone on its own; LookupError when none is left."""
        limits = _limits(self._scanner)
        for clip in self._clips:
            audio = decode_file(self._data_dir / clip.path)
            if clip.orig_class == "music":
                start, end = MUSIC_EXCERPT
                audio = audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
            audio = _fade(_normalise(audio))
            _events, windows = self._scanner.scan(
                np.concatenate((audio, np.zeros(8 * SAMPLE_RATE, np.float32))), 8.0
            )
            if (worst := _loudest(windows, limits)) is not None:
                self._rejected.append(f"{clip.path}: {worst[1]} {worst[2]:.2f} alone")
                continue
            return clip.path, audio
        raise LookupError(f"no fold-{FOLD} {self.label} clip the model leaves alone")


def _join(parts: Sequence[tuple[str, str, Floats]]) -> tuple[Floats, list[Segment]]:
    """Concatenate (label, clip, audio) parts on chunk boundaries."""
    audio: list[Floats] = []
    segments: list[Segment] = []
    t = 0.0
    for label, path, samples in parts:
        aligned = _chunk_aligned(samples)
        segments.append(Segment(label, t, t + samples.size / SAMPLE_RATE, path))
        audio.append(aligned)
        t += aligned.size / SAMPLE_RATE
    return _dequantised(np.concatenate(audio)), segments


def _negatives(
    clips: Sequence[Clip], data_dir: Path, scanner: Scanner, rejected: list[str]
) -> tuple[Floats, list[Segment]]:
    """Negatives, one clip per kind, that stay quiet together at every hop phase.

    Each clip must be quiet on its own; if the sequence is not (the 7-s window spans several
    clips), the clip under the window that comes closest to firing is swapped for the next
    one of its kind.
    """
    used: set[str] = set()
    pools: list[_Pool] = []
    for label, classes in NEGATIVE_KINDS:
        kind = [
            clip
            for clip in clips
            if clip.label == "other" and clip.orig_class in classes
        ]
        pools.append(_Pool(label, kind, data_dir, scanner, rejected))
    parts: list[tuple[str, str, Floats]] = []
    for pool in pools:
        path, audio = pool.next()
        while path in used:
            path, audio = pool.next()
        used.add(path)
        parts.append((pool.label, path, audio))
    limits = _limits(scanner)
    for _swap in range(MAX_SWAPS + 1):
        audio, segments = _join(parts)
        tail = np.zeros(round(SCAN_TAIL_S * SAMPLE_RATE), np.float32)
        worst: tuple[float, str, float] | None = None
        for phase in PHASES:
            _events, windows = scanner.scan(
                np.concatenate((audio, tail)), LEAD_S + phase
            )
            if (worst := _loudest(windows, limits)) is not None:
                break
        if worst is None:
            return audio, segments
        t, label, p = worst
        index = next(
            (i for i, seg in enumerate(segments) if seg.start_s < t <= seg.end_s + 0.5),
            len(segments) - 1,
        )
        rejected.append(
            f"{segments[index].clip}: {label} {p:.2f} after {', '.join(str(s.clip) for s in segments[:index])}"
        )
        path, clip_audio = pools[index].next()
        while path in used:
            path, clip_audio = pools[index].next()
        used.add(path)
        parts[index] = (pools[index].label, path, clip_audio)
    raise LookupError(f"no quiet combination of negatives in {MAX_SWAPS} swaps")


def _assess(
    scanner: Scanner, audio: Floats, onset_s: float
) -> tuple[Expectation | None, str]:
    """Scan the programme at every hop phase; an Expectation if the cry behaves, else why not."""
    cry_thr = scanner.thresholds["cry"]
    on: list[float] = []
    off: list[float] = []
    neg_cry = neg_laughter = max_laughter = peak_cry = 0.0
    scan_audio = np.concatenate(
        (audio, np.zeros(round(SCAN_TAIL_S * SAMPLE_RATE), np.float32))
    )
    for phase in PHASES:
        events, windows = scanner.scan(scan_audio, LEAD_S + phase)
        kinds = [(e.label, e.kind) for e in events]
        if kinds != [("cry", "started"), ("cry", "stopped")]:
            return None, f"phase {phase:.1f}: events {kinds}"
        started, stopped = events
        heard = started.t - confirm_for("cry")  # the design's latency excludes it
        if not onset_s < heard <= onset_s + ONSET_LATENCY_MAX_S:
            return (
                None,
                f"phase {phase:.1f}: heard {heard - onset_s:+.1f} s from onset",
            )
        above = sum(1 for _t, p in windows if p["cry"] >= cry_thr)
        if above < MIN_WINDOWS_ABOVE:
            return None, f"phase {phase:.1f}: only {above} windows above threshold"
        on.append(started.t)
        off.append(stopped.t)
        for t, p in windows:
            if t <= onset_s:
                neg_cry = max(neg_cry, p["cry"])
                neg_laughter = max(neg_laughter, p["laughter"])
            max_laughter = max(max_laughter, p["laughter"])
            peak_cry = max(peak_cry, p["cry"])
    limits = _limits(scanner)
    if neg_cry > limits["cry"] or max_laughter > limits["laughter"]:
        return None, (
            f"negatives reach cry {neg_cry:.2f}, laughter anywhere {max_laughter:.2f}"
        )
    return (
        Expectation(
            on_s=(min(on), max(on)),
            off_s=(min(off), max(off)),
            negatives_max_cry=neg_cry,
            negatives_max_laughter=neg_laughter,
            max_laughter=max_laughter,
            peak_cry=peak_cry,
        ),
        "",
    )


def _cry_candidates(clips: Iterable[Clip]) -> list[Clip]:
    """Fold-4 cry clips, full-band sources first, one per recording group."""
    seen: set[str] = set()
    ordered: list[Clip] = []
    for source in CRY_SOURCES:
        for clip in clips:
            if clip.label == "cry" and clip.source == source and clip.group not in seen:
                seen.add(clip.group)
                ordered.append(clip)
    return ordered


def build_program(
    data_dir: Path = DEFAULT_DATA, model: Path = DEFAULT_MODEL
) -> Program:
    """Choose the clips, assemble the programme and scan it; LookupError if nothing qualifies."""
    meta = load_metadata(model)
    runtime = load_runtime(meta, "auto")
    scanner = Scanner(meta, runtime)
    clips = [clip for clip in read_manifest(data_dir) if clip.fold == FOLD]
    rejected: list[str] = []
    negative_audio, segments = _negatives(clips, data_dir, scanner, rejected)
    onset_s = negative_audio.size / SAMPLE_RATE
    for clip in _cry_candidates(clips):
        cry = _fade(_normalise(decode_file(data_dir / clip.path)))
        cry_end_s = onset_s + cry.size / SAMPLE_RATE
        tail = np.zeros(round(TAIL_S * SAMPLE_RATE), np.float32)
        audio = np.concatenate((negative_audio, _chunk_aligned(cry), tail))
        samples = float_to_pcm16(audio)
        expectation, why = _assess(scanner, _dequantised(audio), onset_s)
        if expectation is None:
            rejected.append(f"{clip.path}: {why}")
            continue
        return Program(
            samples=samples,
            segments=[
                *segments,
                Segment("cry", onset_s, cry_end_s, clip.path),
                Segment("silence", cry_end_s, audio.size / SAMPLE_RATE),
            ],
            cry_onset_s=onset_s,
            cry_end_s=cry_end_s,
            expectation=expectation,
            model=f"{meta.name} {meta.version} ({runtime.backend})",
            model_sha256=meta.sha256,
            thresholds=dict(meta.thresholds),
            confirm_s=confirm_for("cry"),
            hold_s=scanner.hold_s,
            hop_s=scanner.hop_s,
            smear_s=(1.0 - OFFSET_FILL) * meta.window_s,
            rejected=rejected,
        )
    raise LookupError(
        "no fold-4 cry clip is detected cleanly after these negatives: "
        + "; ".join(rejected)
    )
