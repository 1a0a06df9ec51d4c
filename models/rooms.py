"""It learns your home: simulated rooms taught "Not a cry" and "Was a cry" (issue 25's proof).

Each room has its own recurring negative that the shipped model takes for crying, chosen by rule
from the out-of-fold false positives: the recording groups (a manifest `group` and its
`orig_class`) of negatives whose clip variants score over the default cry threshold most often
under the head that never saw their fold. A day is 24 h of that room: the recurring negative
every 20–30 min (1–4 of its clips in a row, each as recorded, band-limited or pitched), household
sounds and cries of the same fold at random times, and noise-masked cries; the silence between
is compressed (only the events a day holds matter). Day 1 plays the first half of the group's
clips and of the cries, day 2 the second half.

The parent answers *Not a cry* to the first five false cry events of day 1, and *Was a cry* to
the first five masked cries it missed that the room still heard (a stretch of windows at
`HEARD_SHARE` of the threshold, as `baby_monitor_engine.room.HeardLog` keeps them); the room
is fit with `fit_room` as the integration fits it, and day 2 is replayed with the shipped head
and with the taught room.

The simulation runs on the backbone's cached patch rows (one per second, `models.patches`):
clips follow each other as rows, so no patch straddles two sounds, and a cry is never heard over
the recurring negative. Windows are six consecutive rows scored as the integration scores them
(per patch, the room's correction, the loudest patch, spread), fed to the detector with the
shipped threshold and default confirm and hold times.

When day 2 plays the same recordings (`same_recordings`), cached rows would give a replayed
clip the very rows it was taught by; live it lands at another phase of the 1-s patch grid and
its embedding moves. That mode therefore goes back to audio (`LiveAudio`): a verdict re-embeds,
as `learning.async_teach` does, the first TAUGHT_AUDIO_S seconds of its stretch's audio every
TAUGHT_HOP_S (`stretch_audio`: the clip-variant audio of the pieces its rows cover, a second of
zeros per silence row) and adds those rows to the stretch's rows before `taught_patches`
chooses; both verdicts do. Day 2's recurring clips are played `phase` seconds after a patch
boundary (`shifted`), a phase drawn per play from `PHASES`, half-way between the taught grid's
phases (the worst case for re-embedding), and embedded at the normal 1-s hop. Day 1, day 2's
household sounds and cries, and the `new_recordings` mode keep their cached rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import functools
import hashlib
import json
from pathlib import Path
import time
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.blas import single_threaded
from baby_monitor_engine.detector import (
    DEFAULT_CONFIRM_S,
    DEFAULT_HOLD_S,
    DetectorConfig,
    SoundDetector,
)
from baby_monitor_engine.model import (
    DEFAULT_MODEL,
    LABELS,
    load_metadata,
    spread_scores,
)
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.room import (
    HEARD_ROWS,
    HEARD_SHARE,
    KERNEL_WIDTH,
    MAX_EXAMPLES,
    PATCHES_PER_EXAMPLE,
    RIDGE,
    TAUGHT_AUDIO_S,
    TAUGHT_HOP_S,
    VERDICTS,
    Example,
    RoomHead,
    Verdict,
    fit_room,
    taught_patches,
)
from baby_monitor_engine.windows import clip_windows

from .backbone import EMBEDDING, FRONTEND, PATCH_HOP_S, PATCH_S, backbone_tflite
from .crossval import DEV_FOLDS
from .dataset import DEFAULT_DATA, Clip, load_audio, read_manifest
from .head import HeadSettings, Member, TrainedHead, fit_on, training_variants
from .patches import AUDIO_CACHE, ClipVariant, Embedder, clip_variant
from .soak import ADULT_DISTRESS, household

__all__ = [
    "DAY_VARIANTS",
    "MASKED",
    "PHASES",
    "Day",
    "DayPiece",
    "LiveAudio",
    "Replay",
    "assemble",
    "false_positive_groups",
    "fold_head",
    "gain",
    "halves",
    "heard_rows",
    "live_audio",
    "nearest",
    "plan_day",
    "replay",
    "room_totals",
    "run_rooms",
    "shifted",
    "start_windows",
    "stream_scores",
    "stretch_audio",
    "taught_distances",
    "teach",
]

type Floats = npt.NDArray[np.float32]
type Ints = npt.NDArray[np.intp]
type PatchProbabilities = Callable[[Floats], Floats]
"""The shipped head per patch row: (rows, features) -> (rows, labels) raw probabilities."""
type Kind = Literal["recurring", "household", "cry", "masked"]
type Embed = Callable[[Floats], Floats]
"""The backbone: patches (n, frames, mels) -> feature rows (n, features)."""
type Replayed = Callable[[int, str], tuple[Floats, float]]
"""A recurring clip played again: (clip, variant) -> its patch rows and the phase it was heard at."""

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "rooms"
ROOMS = 3
"""Rooms reported; the next group in the ranking is the room the constants are tuned on."""
TEACH = 5
"""Verdicts a parent gives on day 1, per kind of verdict."""
DAY_S = 24 * 3600
DAY_VARIANTS = ("clean", "band", "pitch")
"""How the recurring negative, the household sounds and the plain cries are heard."""
MASKED = "noise0"
"""The quiet cries: masked by white, pink or brown noise at 0 dB SNR."""
RECURRING_EVERY_S = (20 * 60, 30 * 60)
STRETCH_CLIPS = (1, 4)
HOUSEHOLD_PER_DAY = 96
"""Household clips a day (one every 15 min on average), drawn from the fold's household sounds."""
GAP_ROWS = (8, 20)
"""Seconds of silence between two sounds: past a window and the hold time, so none touch."""
PATCHES = 6
"""Patch rows per 7-s window (2-s patches every second)."""
SILENCE = "room_silence"
SILENCE_MAX = 0.2
"""Silence is the giulbia room-silence patches every fold head gives a cry probability under
this: one of them holds a sound that the heads take for a cry (0.5-0.9 per patch)."""
PHASES = tuple(TAUGHT_HOP_S / 2 + TAUGHT_HOP_S * k for k in range(4))
"""Seconds after a patch boundary a replayed clip starts on day 2: 0.125, 0.375, 0.625, 0.875,
each half-way between two phases the taught audio was embedded at."""
SWEEP_WIDTHS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
SWEEP_RIDGES = (0.01, 0.1, 1.0)
_MEMBER_FIELDS = (
    "hidden_kernel",
    "hidden_bias",
    "out_kernel",
    "out_bias",
    "prior_kernel",
)


# --- heads --------------------------------------------------------------------------------------


def fold_head(
    fold: int,
    variants: Mapping[str, tuple[Ints, Floats]],
    clips: Sequence[Clip],
    settings: HeadSettings,
    cache: Path | None = CACHE,
) -> TrainedHead:
    """Train the head on every clip outside `fold` (cached on disk by recipe and rows)."""
    digest = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True).encode())
    digest.update("\n".join(f"{c.path} {c.fold}" for c in clips).encode())
    for name, (offsets, features) in variants.items():
        digest.update(name.encode() + offsets.tobytes() + features.tobytes())
    path = (
        None
        if cache is None
        else cache / f"head-fold{fold}-{digest.hexdigest()[:16]}.npz"
    )
    if path is not None and path.exists():
        with np.load(path) as stored:
            return TrainedHead(
                tuple(
                    Member(*(stored[f"{i}_{name}"] for name in _MEMBER_FIELDS))
                    for i in range(int(stored["members"]))
                )
            )
    train = np.array([c.fold != fold for c in clips])
    head = fit_on(variants, clips, train, settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            f"{i}_{name}": getattr(member, name)
            for i, member in enumerate(head.members)
            for name in _MEMBER_FIELDS
        }
        np.savez(path, members=len(head.members), **arrays)
    return head


def _patch_probabilities(head: TrainedHead) -> PatchProbabilities:
    """Wrap the head: the raw [cry, laughter] of each patch row on its own."""

    def probabilities(rows: Floats) -> Floats:
        return np.asarray(head.probabilities(rows)[:, 1:], np.float32)

    return probabilities


# --- choosing the rooms -------------------------------------------------------------------------


def false_positive_groups(
    clips: Sequence[Clip], over: npt.ArrayLike
) -> list[dict[str, Any]]:
    """Negative recording groups, most windows over the cry threshold first.

    `over` is (clips, variants): how many windows of each clip variant scored over the
    threshold under the head that never saw its fold. A group is a manifest `group` with one
    `orig_class`, of label other, with at least two clips (its halves are the two days), and not
    adult crying or screaming (a parent would not call those a false alarm). Ties go to the
    group with fewer clips (the larger share over), then by name.
    """
    counts = np.asarray(over)
    members: dict[tuple[str, str], list[int]] = {}
    for index, clip in enumerate(clips):
        if clip.label == "other" and clip.orig_class not in ADULT_DISTRESS:
            members.setdefault((clip.group, clip.orig_class), []).append(index)
    ranked: list[dict[str, Any]] = [
        {
            "group": group,
            "orig_class": orig_class,
            "source": clips[indices[0]].source,
            "fold": clips[indices[0]].fold,
            "clips": len(indices),
            "over": int(counts[indices].sum()),
            "indices": indices,
        }
        for (group, orig_class), indices in members.items()
        if len(indices) >= 2
    ]
    ranked = [g for g in ranked if g["over"] > 0]
    ranked.sort(key=lambda g: (-g["over"], g["clips"], g["group"], g["orig_class"]))
    return ranked


def halves(indices: Sequence[int]) -> tuple[list[int], list[int]]:
    """Day 1's and day 2's clips: the first half (the larger, if odd) and the rest."""
    ordered = list(indices)
    cut = (len(ordered) + 1) // 2
    return ordered[:cut], ordered[cut:]


# --- a day --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayPiece:
    """One sound of a day: which clip, heard how, the rows [start, end) it fills, and its phase."""

    kind: Kind
    clip: int
    variant: str
    start: int
    end: int
    phase: float = 0.0
    """Seconds after a patch boundary the clip started (0: its cached rows)."""


@dataclass(frozen=True, slots=True)
class Day:
    """A day's patch rows (one per second of sound, silences compressed) and its sounds."""

    rows: Floats
    pieces: tuple[DayPiece, ...]


def plan_day(
    rng: np.random.Generator,
    recurring: Sequence[int],
    households: Sequence[int],
    cries: Sequence[int],
) -> list[tuple[Kind, tuple[tuple[int, str], ...]]]:
    """Plan a day, in order: each sound with the (clip, variant) pairs it plays in a row.

    The recurring negative every 20–30 min, 1–4 of its clips in a row; `HOUSEHOLD_PER_DAY`
    household clips; every cry once in each of `DAY_VARIANTS` and once masked; each at a
    random time of the day.
    """

    def variant() -> str:
        return DAY_VARIANTS[int(rng.integers(len(DAY_VARIANTS)))]

    timed: list[tuple[float, Kind, tuple[tuple[int, str], ...]]] = []
    at = float(rng.uniform(0, RECURRING_EVERY_S[1]))
    while at < DAY_S:
        count = int(rng.integers(STRETCH_CLIPS[0], STRETCH_CLIPS[1] + 1))
        stretch = tuple(
            (recurring[int(rng.integers(len(recurring)))], variant())
            for _ in range(count)
        )
        timed.append((at, "recurring", stretch))
        at += float(rng.uniform(*RECURRING_EVERY_S))
    for _ in range(HOUSEHOLD_PER_DAY if households else 0):
        clip = households[int(rng.integers(len(households)))]
        timed.append((float(rng.uniform(0, DAY_S)), "household", ((clip, variant()),)))
    for clip in cries:
        timed.extend(
            (float(rng.uniform(0, DAY_S)), "cry", ((clip, name),))
            for name in DAY_VARIANTS
        )
        timed.append((float(rng.uniform(0, DAY_S)), "masked", ((clip, MASKED),)))
    timed.sort(key=lambda item: item[0])
    return [(kind, played) for _, kind, played in timed]


def assemble(
    rng: np.random.Generator,
    plan: Sequence[tuple[Kind, tuple[tuple[int, str], ...]]],
    variants: Mapping[str, tuple[Ints, Floats]],
    silence: Floats,
    replayed: Replayed | None = None,
) -> Day:
    """Lay a plan out as patch rows: silence of `GAP_ROWS` before each sound and at the end.

    With `replayed`, the recurring sound's clips are heard through it (at a phase of the patch
    grid) instead of by their cached rows.
    """
    parts: list[Floats] = []
    pieces: list[DayPiece] = []
    at = 0

    def pause() -> None:
        nonlocal at
        n = int(rng.integers(GAP_ROWS[0], GAP_ROWS[1] + 1))
        parts.append(silence[rng.integers(len(silence), size=n)])
        at += n

    for kind, played in plan:
        pause()
        for clip, name in played:
            phase = 0.0
            if replayed is not None and kind == "recurring":
                rows, phase = replayed(clip, name)
            else:
                offsets, features = variants[name]
                rows = features[offsets[clip] : offsets[clip + 1]]
            parts.append(rows)
            pieces.append(DayPiece(kind, clip, name, at, at + len(rows), phase))
            at += len(rows)
    pause()
    return Day(np.concatenate(parts).astype(np.float32), tuple(pieces))


# --- the same recordings, heard as audio --------------------------------------------------------


def shifted(audio: Floats, phase: float) -> Floats:
    """Play a clip `phase` seconds after a patch boundary: quiet (zeros) before it.

    A clip that would still be shorter than a patch gets quiet after it up to one patch, so it
    too starts `phase` into its patch (`clip_windows` would put it at the patch's end).
    """
    lead = np.zeros(round(phase * SAMPLE_RATE), np.float32)
    played = np.concatenate((lead, np.asarray(audio, np.float32)))
    patch = round(PATCH_S * SAMPLE_RATE)
    if played.size < patch:
        played = np.concatenate((played, np.zeros(patch - played.size, np.float32)))
    return played


def stretch_audio(
    day: Day,
    rows: Ints,
    sound: Callable[[DayPiece], Floats],
    limit_s: float = TAUGHT_AUDIO_S,
) -> Floats:
    """Return the audio a heard stretch's rows cover, its first `limit_s` seconds.

    Row k of a piece holds seconds [k, k + 2) of its clip (`sound`), so the stretch's part of a
    piece runs from its first row's second to a second past its last row (to the clip's end if
    that is the piece's last row); each silence row in between is a second of zeros. The audio
    starts with the stretch's first row, a window before its first window's end, as the
    integration's held audio does.
    """
    if rows.size == 0:
        return np.zeros(0, np.float32)
    first, end = int(rows[0]), int(rows[-1]) + 1
    second = SAMPLE_RATE
    parts: list[Floats] = []
    at = first
    for piece in day.pieces:
        if piece.end <= first:
            continue
        if piece.start >= end:
            break
        if piece.start > at:
            parts.append(np.zeros((piece.start - at) * second, np.float32))
        audio = sound(piece)
        skip = max(0, at - piece.start)
        last = min(end, piece.end) - piece.start
        stop = None if last == piece.end - piece.start else (last + 1) * second
        parts.append(np.asarray(audio[skip * second : stop], np.float32))
        at = min(end, piece.end)
    if end > at:
        parts.append(np.zeros((end - at) * second, np.float32))
    return np.concatenate(parts)[: round(limit_s * SAMPLE_RATE)]


@dataclass(frozen=True, slots=True)
class LiveAudio:
    """The room's sounds as audio and the backbone that hears them (rows cached on disk).

    `sound` gives a clip's audio under a variant exactly as its cached rows were made from it;
    `model` names the backbone (a digest of its bytes) in the cache's keys.
    """

    sound: Callable[[int, str], Floats]
    embed: Embed
    model: str
    cache: Path | None = None

    def rows(self, audio: Floats, hop_s: float) -> Floats:
        """Backbone rows of `audio`'s patches every `hop_s`, as a stream at that hop sees them.

        Cached by the backbone, the hop and the audio itself (so by clip, variant and phase).
        """
        samples = np.ascontiguousarray(audio, np.float32)
        digest = hashlib.sha256(f"{self.model} {hop_s:g} ".encode())
        digest.update(samples.tobytes())
        path = (
            None
            if self.cache is None
            else self.cache / "live" / f"{digest.hexdigest()[:24]}.npy"
        )
        if path is not None and path.exists():
            return np.asarray(np.load(path), np.float32)
        _, patches = clip_windows(samples, FRONTEND, PATCH_S, hop_s)
        with single_threaded():
            rows = np.asarray(self.embed(patches), np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, rows)
        return rows

    def played(self, clip: int, variant: str, phase: float) -> Floats:
        """Patch rows of a clip variant played `phase` seconds after a patch boundary (1-s hop)."""
        return self.rows(shifted(self.sound(clip, variant), phase), PATCH_HOP_S)

    def replayer(self, rng: np.random.Generator) -> Replayed:
        """Play clips again, each at a phase drawn from PHASES by `rng`."""

        def replay_clip(clip: int, variant: str) -> tuple[Floats, float]:
            phase = PHASES[int(rng.integers(len(PHASES)))]
            return self.played(clip, variant, phase), phase

        return replay_clip

    def taught(self, day: Day, rows: Ints) -> Floats:
        """Rows of a heard stretch's audio embedded again every TAUGHT_HOP_S, as a verdict does."""
        audio = stretch_audio(day, rows, lambda p: self.sound(p.clip, p.variant))
        if audio.size == 0:
            return np.zeros((0, day.rows.shape[1]), np.float32)
        return self.rows(audio, TAUGHT_HOP_S)


def live_audio(
    clips: Sequence[Clip],
    data_dir: Path = DEFAULT_DATA,
    cache: Path | None = CACHE,
    audio_cache: Path = AUDIO_CACHE,
) -> LiveAudio:
    """Hear `clips` (indexed as in `patch_features`) through the backbone on LiteRT."""
    content = backbone_tflite()
    transforms: dict[str, ClipVariant] = {}

    @functools.cache
    def sound(clip: int, variant: str) -> Floats:
        if variant not in transforms:
            transforms[variant] = clip_variant(variant, audio_cache)
        (audio,) = load_audio([clips[clip]], data_dir, audio_cache)
        return transforms[variant](clips[clip], clip, audio)

    return LiveAudio(
        sound, Embedder(content), hashlib.sha256(content).hexdigest()[:16], cache
    )


# --- scoring a day ------------------------------------------------------------------------------


def stream_scores(
    probabilities: Floats, spread: float, patches: int = PATCHES
) -> Floats:
    """Window scores (windows, labels) of per-patch probabilities: window j is rows j..j+patches-1."""
    loudest = np.lib.stride_tricks.sliding_window_view(
        probabilities, patches, axis=0
    ).max(axis=-1)
    return np.asarray(spread_scores(loudest, spread), np.float32)


def start_windows(scores: npt.ArrayLike, config: DetectorConfig) -> list[int]:
    """First window above threshold of each cry episode the detector starts (a window a second)."""
    detector = SoundDetector("cry", config)
    firsts = []
    for index, score in enumerate(np.asarray(scores, np.float64)):
        event = detector.update(float(index), float(score))
        if event is not None and event.kind == "started":
            firsts.append(round(event.first_window))
    return firsts


def _touching(day: Day, windows: int, patches: int = PATCHES) -> Ints:
    """Per window, the piece whose rows it holds (-1: silence only); gaps keep it to one."""
    owner = np.full(windows, -1, np.intp)
    for index, piece in enumerate(day.pieces):
        owner[max(0, piece.start - patches + 1) : min(windows, piece.end)] = index
    # a stretch of the same sound is one piece per clip: a window spanning two of them is the later's
    return owner


def heard_rows(
    scores: npt.ArrayLike, level: float, window: int, patches: int = PATCHES
) -> Ints:
    """Rows of the heard stretch holding `window`, as HeardLog keeps them (at most HEARD_ROWS).

    The stretch is the run of windows scoring at least `level` around `window`; it keeps the
    rows of its windows in order, from its first window's first row.
    """
    above = np.asarray(scores, np.float64) >= level
    if not above[window]:
        return np.zeros(0, np.intp)
    first = window
    while first > 0 and above[first - 1]:
        first -= 1
    last = window
    while last + 1 < above.size and above[last + 1]:
        last += 1
    end = min(last + patches, first + HEARD_ROWS)
    return np.arange(first, end, dtype=np.intp)


def _sound(day: Day, piece: int) -> list[Any]:
    """[kind, clip, variant] of a piece of the day (silence: ["silence", -1, ""])."""
    if piece < 0:
        return ["silence", -1, ""]
    found = day.pieces[piece]
    return [found.kind, found.clip, found.variant]


@dataclass(frozen=True, slots=True)
class Replay:
    """What a day gave: per piece whether a start event fell on it, and the false events."""

    firsts: tuple[int, ...]
    """First window above threshold of every start event."""
    heard: tuple[bool, ...]
    """Per piece of the day: whether an event's first window holds it."""
    false: tuple[int, ...]
    """Index of the piece each false event fell on (-1: silence), in order."""

    def summary(self, day: Day) -> dict[str, Any]:
        """Count for the report: false events by kind, plain and masked cries heard."""
        kinds = [p.kind for p in day.pieces]
        out: dict[str, Any] = {
            "false_events": len(self.false),
            "false_recurring": sum(
                kinds[i] == "recurring" for i in self.false if i >= 0
            ),
            "false_household": sum(
                kinds[i] == "household" for i in self.false if i >= 0
            ),
            "false_sounds": [_sound(day, i) for i in self.false],
        }
        for kind in ("cry", "masked"):
            hits = [h for h, k in zip(self.heard, kinds, strict=True) if k == kind]
            out[f"{kind}_plays"] = len(hits)
            out[f"{kind}_heard"] = sum(hits)
        return out


def replay(day: Day, scores: npt.ArrayLike, config: DetectorConfig) -> Replay:
    """Run the detector over a day's window scores (cry column) and attribute its events."""
    cry = np.asarray(scores, np.float32)
    firsts = start_windows(cry, config)
    owner = _touching(day, cry.size)
    heard = [False] * len(day.pieces)
    false = []
    for first in firsts:
        piece = int(owner[first])
        if piece >= 0 and day.pieces[piece].kind in ("cry", "masked"):
            heard[piece] = True
        else:
            false.append(piece)
    return Replay(tuple(firsts), tuple(heard), tuple(false))


def teach(
    day: Day,
    played: Replay,
    probabilities: Floats,
    scores: npt.ArrayLike,
    threshold: float,
    count: int = TEACH,
    again: Callable[[Ints], tuple[Floats, Floats]] | None = None,
) -> dict[Verdict, list[Example]]:
    """Give the parent's verdicts on day 1: the first `count` false events and missed masked cries.

    A false event is taught by the heard stretch its first window lies in; a missed masked
    cry by the stretch around its loudest window, if it scored at least HEARD_SHARE of the
    threshold anywhere (else the room never heard it and nothing can be taught). `again` gives
    more candidate rows of a stretch (its audio embedded again) and their probabilities.
    """
    cry = np.asarray(scores, np.float64)
    level = HEARD_SHARE * threshold
    owner = _touching(day, cry.size)
    examples: dict[Verdict, list[Example]] = {"not_this_sound": [], "this_sound": []}

    def example(window: int, verdict: Verdict) -> Example:
        rows = heard_rows(cry, level, window)
        candidates, chances = day.rows[rows], probabilities[rows, 0]
        if again is not None:
            more, likely = again(rows)
            candidates = np.concatenate((candidates, more))
            chances = np.concatenate((chances, likely))
        return Example(
            "cry", verdict, taught_patches(candidates, chances), float(window)
        )

    firsts = [
        f
        for f in played.firsts
        if owner[f] < 0 or day.pieces[owner[f]].kind not in ("cry", "masked")
    ]
    for first in firsts[:count]:
        examples["not_this_sound"].append(example(first, "not_this_sound"))
    for index, piece in enumerate(day.pieces):
        if len(examples["this_sound"]) >= count:
            break
        if piece.kind != "masked" or played.heard[index]:
            continue
        span = np.flatnonzero(owner == index)
        loudest = int(span[np.argmax(cry[span])])
        if cry[loudest] >= level:
            examples["this_sound"].append(example(loudest, "this_sound"))
    return examples


# --- a room -------------------------------------------------------------------------------------

MODES = ("new_recordings", "same_recordings")
"""Day 2's recurring negative: the group's other clips, or the same clips in new stretches."""
TAUGHT = ("shipped", "not_a_cry", "was_a_cry", "both")
"""Day 2 heard by: the shipped head, the room taught Not a cry, taught Was a cry, taught both."""


@dataclass(frozen=True, slots=True)
class SimulatedRoom:
    """A simulated room: its recurring negative (day 1's and day 2's clips) and its fold."""

    name: str
    fold: int
    recurring: tuple[list[int], list[int]]
    households: list[int]
    cries: tuple[list[int], list[int]]


def make_room(
    group: Mapping[str, Any], clips: Sequence[Clip], mode: str = "new_recordings"
) -> SimulatedRoom:
    """Build the room around a ranked group: its fold's household sounds and cries, in halves.

    In `new_recordings` day 2 plays the other half of the group's clips, in
    `same_recordings` both days play all of them (a noise machine, a recorded cartoon);
    cries are new on day 2 in both. Household sounds leave out the group's whole recording
    session (`group`), so that a room's only recurring sound is the one it is taught.
    """
    fold = int(group["fold"])
    households = [
        i
        for i, c in enumerate(clips)
        if c.fold == fold and household(c) and c.group != group["group"]
    ]
    cries = [i for i, c in enumerate(clips) if c.fold == fold and c.label == "cry"]
    indices = list(group["indices"])
    return SimulatedRoom(
        f"{group['orig_class']} ({group['source']} {group['group']})",
        fold,
        halves(indices) if mode == "new_recordings" else (indices, indices),
        households,
        halves(cries),
    )


def room_days(
    room: SimulatedRoom,
    variants: Mapping[str, tuple[Ints, Floats]],
    silence: Floats,
    seed: int,
    live: LiveAudio | None = None,
) -> tuple[Day, Day]:
    """Day 1 and day 2 of a room (seeded by `seed` and the room's clips).

    With `live`, day 2's recurring clips are played at phases of the patch grid (drawn by a
    generator of their own, so the day is laid out as without).
    """
    key = int.from_bytes(hashlib.sha1(room.name.encode()).digest()[:4])
    days = []
    for day in (0, 1):
        rng = np.random.default_rng([seed, key, day])
        plan = plan_day(rng, room.recurring[day], room.households, room.cries[day])
        replayed = (
            None
            if live is None or day == 0
            else live.replayer(np.random.default_rng([seed, key, day, 1]))
        )
        days.append(assemble(rng, plan, variants, silence, replayed))
    return days[0], days[1]


def learn(
    day: Day,
    probabilities: PatchProbabilities,
    spread: float,
    config: DetectorConfig,
    width: float = KERNEL_WIDTH,
    ridge: float = RIDGE,
    live: LiveAudio | None = None,
) -> tuple[dict[str, Any], dict[str, RoomHead]]:
    """Day 1 with the shipped head, then the parent's verdicts: its summary and the rooms fit.

    With `live`, each verdict also holds its stretch's audio embedded again (`LiveAudio.taught`).
    """
    patch = probabilities(day.rows)
    scores = stream_scores(patch, spread)[:, 0]
    played = replay(day, scores, config)

    def again(rows: Ints) -> tuple[Floats, Floats]:
        assert live is not None
        more = live.taught(day, rows)
        return more, probabilities(more)[:, 0]

    examples = teach(
        day,
        played,
        patch,
        scores,
        config.threshold,
        again=None if live is None else again,
    )
    taught = {
        "not_a_cry": examples["not_this_sound"],
        "was_a_cry": examples["this_sound"],
        "both": examples["not_this_sound"] + examples["this_sound"],
    }
    rooms = {
        name: fit_room(
            chosen, probabilities, LABELS, EMBEDDING, width=width, ridge=ridge
        )
        for name, chosen in taught.items()
    }
    answered = played.false[: len(examples["not_this_sound"])]
    summary = played.summary(day) | {
        "taught_not_a_cry": [_sound(day, i) for i in answered],
        "taught_was_a_cry": len(examples["this_sound"]),
    }
    return summary, rooms


def hear(
    day: Day,
    probabilities: PatchProbabilities,
    rooms: Mapping[str, RoomHead],
    spread: float,
    config: DetectorConfig,
) -> dict[str, dict[str, Any]]:
    """Day 2 heard by the shipped head and by each taught room: their summaries."""
    patch = probabilities(day.rows)
    heads = {"shipped": RoomHead(LABELS, EMBEDDING)} | dict(rooms)
    out = {}
    for name, room in heads.items():
        adjusted = room.adjust(patch, day.rows)
        scores = stream_scores(adjusted, spread)[:, 0]
        out[name] = replay(day, scores, config).summary(day)
    return out


def nearest(rows: Floats, centres: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Cosine distance (embedding columns) from each row to its nearest centre (unit rows)."""
    part = np.asarray(rows, np.float64)[:, :EMBEDDING]
    unit = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    similarity = (unit @ np.asarray(centres, np.float64).T).max(axis=1)
    return np.asarray(np.clip(1.0 - similarity, 0.0, 2.0))


def taught_distances(
    day: Day,
    probabilities: PatchProbabilities,
    room: RoomHead,
    spread: float,
    config: DetectorConfig,
) -> dict[str, list[float]]:
    """How far day 2's sounds lie from the taught patches, as the kernel sees them.

    Per false event of the shipped head and per plain cry, its PATCHES_PER_EXAMPLE patches most
    like a cry (those a verdict would keep); the 10th, 50th and 90th percentile of their
    distances to the nearest taught patch. Empty when nothing was taught or heard.
    """
    correction = room.corrections.get("cry")
    if correction is None:
        return {"false_alarms": [], "cries": []}
    patch = probabilities(day.rows)
    scores = stream_scores(patch, spread)[:, 0]
    played = replay(day, scores, config)
    level = HEARD_SHARE * config.threshold
    owner = _touching(day, scores.size)
    false = [
        heard_rows(scores, level, first)
        for first in played.firsts
        if owner[first] < 0 or day.pieces[owner[first]].kind not in ("cry", "masked")
    ]
    cries = [np.arange(p.start, p.end) for p in day.pieces if p.kind == "cry"]

    def spread_of(spans: Sequence[Ints]) -> list[float]:
        if not spans:
            return []
        top = np.concatenate(
            [taught_patches(day.rows[rows], patch[rows, 0]) for rows in spans]
        )
        found = nearest(top, correction.centres)
        return [float(np.percentile(found, q)) for q in (10, 50, 90)]

    return {"false_alarms": spread_of(false), "cries": spread_of(cries)}


def run_room(
    room: SimulatedRoom,
    variants: Mapping[str, tuple[Ints, Floats]],
    silence: Floats,
    probabilities: PatchProbabilities,
    spread: float,
    config: DetectorConfig,
    seed: int = 0,
    width: float = KERNEL_WIDTH,
    ridge: float = RIDGE,
    live: LiveAudio | None = None,
) -> dict[str, Any]:
    """Both days of a room: day 1 with the shipped head, day 2 with it and with each taught room.

    With `live`, verdicts re-embed their audio and day 2 replays the recurring clips as audio at
    shifted phases (the `same_recordings` mode); `rows_only` is then that day 2 heard by a room
    taught *Not a cry* by the stretches' rows alone, for comparison.
    """
    first, second = room_days(room, variants, silence, seed, live)
    day1, rooms = learn(first, probabilities, spread, config, width, ridge, live)
    phases = [p.phase for p in second.pieces if p.kind == "recurring"]
    result: dict[str, Any] = {
        "name": room.name,
        "fold": room.fold,
        "recurring_clips": [len(h) for h in room.recurring],
        "household_clips": len(room.households),
        "cry_clips": [len(h) for h in room.cries],
        "day_rows": [len(first.rows), len(second.rows)],
        "day2_phases": {f"{p:g}": phases.count(p) for p in sorted(set(phases))},
        "day1": day1,
        "day2": hear(second, probabilities, rooms, spread, config),
        "distances": taught_distances(
            second, probabilities, rooms["not_a_cry"], spread, config
        ),
    }
    if live is not None:
        _, plain = learn(first, probabilities, spread, config, width, ridge)
        heard = hear(
            second, probabilities, {"not_a_cry": plain["not_a_cry"]}, spread, config
        )
        result["rows_only"] = heard["not_a_cry"]
        del result["rows_only"]["false_sounds"]  # the counts are the comparison's point
    return result


# --- the section --------------------------------------------------------------------------------


def clip_windows_over(
    patch: npt.ArrayLike, offsets: Ints, spread: float, threshold: float
) -> Ints:
    """Per clip (rows offsets[i]:offsets[i+1]), its windows of PATCHES rows over `threshold`.

    A clip shorter than a window is one window.
    """
    cry = np.asarray(patch, np.float64)
    counts = np.zeros(len(offsets) - 1, np.intp)
    for index, (start, end) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        rows = cry[start:end]
        loudest = (
            np.lib.stride_tricks.sliding_window_view(rows, PATCHES).max(axis=-1)
            if rows.size >= PATCHES
            else rows.max(keepdims=True)
        )
        counts[index] = int((spread_scores(loudest, spread) >= threshold).sum())
    return counts


def _over(
    clips: Sequence[Clip],
    variants: Mapping[str, tuple[Ints, Floats]],
    heads: Mapping[int, TrainedHead],
    spread: float,
    threshold: float,
) -> Ints:
    """(clips, DAY_VARIANTS): each clip variant's windows over the cry threshold, out of fold."""
    over = np.zeros((len(clips), len(DAY_VARIANTS)), np.intp)
    folds = np.array([c.fold for c in clips])
    for column, name in enumerate(DAY_VARIANTS):
        offsets, features = variants[name]
        owner = np.repeat(folds, np.diff(offsets))
        patch = np.zeros(len(features), np.float32)
        for fold, head in heads.items():
            patch[owner == fold] = head.probabilities(features[owner == fold])[:, 1]
        over[:, column] = clip_windows_over(patch, offsets, spread, threshold)
    return over


def gain(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Change from the shipped head to a taught room: false events and recall (points)."""

    def recall(r: Mapping[str, Any], kind: str) -> float:
        return 100.0 * float(r[f"{kind}_heard"]) / max(1, int(r[f"{kind}_plays"]))

    cut = before["false_events"] - after["false_events"]
    return {
        "false_cut": cut / before["false_events"] if before["false_events"] else None,
        "recall_change_points": recall(after, "cry") - recall(before, "cry"),
        "masked_change_points": recall(after, "masked") - recall(before, "masked"),
    }


def _name_clips(room: dict[str, Any], clips: Sequence[Clip]) -> None:
    """Replace clip indices by manifest paths in a room's lists of sounds."""
    lists = [room["day1"]["taught_not_a_cry"]] + [
        heard["false_sounds"] for heard in room["day2"].values()
    ]
    for sounds in lists:
        for sound in sounds:
            if sound[1] >= 0:
                sound[1] = clips[sound[1]].path


def room_totals(rooms: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Day 2 summed over the reported rooms, per head."""
    return {
        name: {
            key: sum(r["day2"][name][key] for r in rooms)
            for key, value in rooms[0]["day2"][name].items()
            if isinstance(value, int)
        }
        for name in TAUGHT
    }


def tuning_sweep(
    room: SimulatedRoom,
    variants: Mapping[str, tuple[Ints, Floats]],
    silence: Floats,
    probabilities: PatchProbabilities,
    spread: float,
    config: DetectorConfig,
    seed: int,
    live: LiveAudio | None = None,
) -> list[dict[str, Any]]:
    """Hear the tuning room's day 2 at every kernel width and ridge of the sweep."""
    first, second = room_days(room, variants, silence, seed, live)
    rows = []
    for width in SWEEP_WIDTHS:
        for ridge in SWEEP_RIDGES:
            _, rooms = learn(first, probabilities, spread, config, width, ridge, live)
            heard = hear(second, probabilities, rooms, spread, config)
            for summary in heard.values():
                del summary["false_sounds"]  # the counts are the sweep's point
            rows.append(
                {
                    "width": width,
                    "ridge": ridge,
                    "shipped": heard["shipped"],
                    "not_a_cry": heard["not_a_cry"]
                    | gain(heard["shipped"], heard["not_a_cry"]),
                    "was_a_cry": heard["was_a_cry"]
                    | gain(heard["shipped"], heard["was_a_cry"]),
                }
            )
    return rows


def run_rooms(
    clips: Sequence[Clip],
    variants: Mapping[str, tuple[Ints, Floats]] | None = None,
    settings: HeadSettings | None = None,
    threshold: float | None = None,
    seed: int = 0,
    cache: Path | None = CACHE,
    live: LiveAudio | None = None,
) -> dict[str, Any]:
    """Run the whole section: rank the groups, sweep the fourth, replay the three rooms.

    The same recordings are heard as audio through `live` (by default the dev clips' audio
    through the backbone on LiteRT).
    """
    started = time.monotonic()
    settings = settings or HeadSettings()
    variants = variants or training_variants(clips, settings)
    if threshold is None:
        threshold = load_metadata(DEFAULT_MODEL).thresholds["cry"]
    config = DetectorConfig(threshold, DEFAULT_CONFIRM_S, DEFAULT_HOLD_S)
    folds = sorted({c.fold for c in clips})
    heads = {fold: fold_head(fold, variants, clips, settings, cache) for fold in folds}
    fitted = time.monotonic()
    ranked = false_positive_groups(
        clips, _over(clips, variants, heads, settings.spread, threshold)
    )
    offsets, features = variants["clean"]
    quiet = np.concatenate(
        [
            features[offsets[i] : offsets[i + 1]]
            for i, c in enumerate(clips)
            if c.orig_class == SILENCE
        ]
    )
    loudest = np.max([h.probabilities(quiet)[:, 1] for h in heads.values()], axis=0)
    silence = quiet[loudest < SILENCE_MAX]
    spread = settings.spread
    modes: dict[str, Any] = {}
    if live is None:
        live = live_audio(clips, cache=cache)
    for mode in MODES:
        heard = live if mode == "same_recordings" else None
        chosen = [make_room(g, clips, mode) for g in ranked[: ROOMS + 1]]
        tuning = chosen[ROOMS]
        sweep = tuning_sweep(
            tuning,
            variants,
            silence,
            _patch_probabilities(heads[tuning.fold]),
            spread,
            config,
            seed,
            heard,
        )
        rooms = [
            run_room(
                room,
                variants,
                silence,
                _patch_probabilities(heads[room.fold]),
                spread,
                config,
                seed,
                live=heard,
            )
            for room in chosen[:ROOMS]
        ]
        for room in rooms:
            _name_clips(room, clips)
        total = room_totals(rooms)
        for name in TAUGHT[1:]:
            total[name] |= gain(total["shipped"], total[name])
            for room in rooms:
                room["day2"][name] |= gain(room["day2"]["shipped"], room["day2"][name])
        if heard is not None:
            plain = {
                key: sum(r["rows_only"][key] for r in rooms)
                for key in rooms[0]["rows_only"]
            }
            total["rows_only"] = plain | gain(total["shipped"], plain)
            for room in rooms:
                room["rows_only"] |= gain(room["day2"]["shipped"], room["rows_only"])
        modes[mode] = {
            "rooms": rooms,
            "total": total,
            "tuning": {"name": tuning.name, "fold": tuning.fold, "sweep": sweep},
        }
    return {
        "threshold": threshold,
        "confirm_s": config.confirm_s,
        "hold_s": config.hold_s,
        "width": KERNEL_WIDTH,
        "ridge": RIDGE,
        "patches_per_example": PATCHES_PER_EXAMPLE,
        "taught_hop_s": TAUGHT_HOP_S,
        "taught_audio_s": TAUGHT_AUDIO_S,
        "phases": list(PHASES),
        "seed": seed,
        "silence_rows": len(silence),
        "ranking": [
            {k: v for k, v in g.items() if k != "indices"} for g in ranked[: ROOMS + 3]
        ],
        "modes": modes,
        "seconds": {"heads": fitted - started, "rooms": time.monotonic() - fitted},
        "max_examples": MAX_EXAMPLES,
        "fit_seconds_at_cap": fit_seconds(
            features, _patch_probabilities(heads[folds[0]])
        ),
    }


def fit_seconds(
    rows: Floats,
    patch_probabilities: Callable[[Floats], Floats],
    seed: int = 0,
    repeats: int = 3,
) -> float:
    """CPU seconds one refit takes with a sound's examples at the cap (median of `repeats`).

    Every verdict holds MAX_EXAMPLES examples of PATCHES_PER_EXAMPLE rows drawn from `rows`.
    """
    rng = np.random.default_rng(seed)
    examples = [
        Example(
            "cry",
            verdict,
            rows[rng.choice(len(rows), PATCHES_PER_EXAMPLE, replace=False)],
            float(index),
        )
        for verdict in VERDICTS
        for index in range(MAX_EXAMPLES)
    ]
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fit_room(examples, patch_probabilities, LABELS, EMBEDDING)
        times.append(time.process_time() - started)
    return float(np.median(times))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: run the section alone and put it into `--out`'s report.

    The rooms go into `results.json` beside the rest of the last full benchmark (if there is
    one) and REPORT.md is rendered again; the section is printed either way.
    """
    from .report import render, rooms_section  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dev = [c for c in read_manifest(args.data) if c.fold in DEV_FOLDS]
    result = run_rooms(dev, seed=args.seed)
    path = args.out / "results.json"
    if path.is_file():
        results = json.loads(path.read_text(encoding="utf-8"))
        results["rooms"] = result
        results.setdefault("seconds", {})["rooms"] = sum(result["seconds"].values())
        path.write_text(json.dumps(results, indent=1, default=float) + "\n")
        render(args.out)
    print("\n".join(rooms_section(result)))
    return result


if __name__ == "__main__":
    main()
