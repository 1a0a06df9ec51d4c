"""What one room has learnt from its parent: taught patches and the correction they make.

The shipped head stays as it is. A room's verdicts ("not a cry", "was a cry") keep the backbone
rows of the patches they refer to; a small correction is fit on them, a sum of kernels around
the taught patches added to the shipped head's logit of that sound. Far from every taught patch
the kernels vanish, so the room scores everything else exactly as the shipped model does, and a
ridge penalty keeps one verdict from swinging even the sounds close to it very far.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "HEARD_SHARE",
    "KERNEL_WIDTH",
    "MAX_EXAMPLES",
    "PATCHES_PER_EXAMPLE",
    "RIDGE",
    "TAUGHT_AUDIO_S",
    "TAUGHT_HOP_S",
    "TAUGHT_SHARE",
    "VERDICTS",
    "Example",
    "ExampleError",
    "Heard",
    "HeardLog",
    "RoomHead",
    "Verdict",
    "fit_room",
    "newest",
    "taught_patches",
]

type Floats = npt.NDArray[np.float32]
type Verdict = Literal["not_this_sound", "this_sound"]

VERDICTS: Final[tuple[Verdict, ...]] = ("not_this_sound", "this_sound")
MAX_EXAMPLES: Final = 25
"""Examples kept per sound and verdict; the oldest go first.

A refit solves for one weight per kept patch, in cubic time: at this cap it stays well under a
second (bench/REPORT.md)."""
PATCHES_PER_EXAMPLE: Final = 16
"""Patches an example keeps: those the shipped head found most like the sound."""
TAUGHT_HOP_S: Final = 0.25
"""While a taught stretch's audio is still held, its patches are embedded again this often.

The backbone's embedding of a sound moves with the patch grid; the same sound heard again falls
on another grid, so an example holds the sound at several offsets."""
TAUGHT_AUDIO_S: Final = 30.0
"""Seconds of a stretch's audio embedded again (its start)."""
KERNEL_WIDTH: Final = 0.15
"""Cosine distance at which a taught patch's pull has fallen to 1/e (Gaussian in distance).

Wider reaches more of a taught sound's other moments but also more real cries; bench/REPORT.md
("It learns your home") measures both."""
RIDGE: Final = 0.01
"""Ridge penalty on the kernel weights: how much evidence one verdict carries."""
HEARD_SHARE: Final = 0.5
"""A stretch of windows scoring at least this share of the threshold is kept as heard, so a
quiet cry the detector missed can still be taught as one."""
HEARD_HOLD: Final = 3
"""Windows below the level before a heard stretch is over: a breath does not split a cry."""
HEARD_KEPT: Final = 10
"""Heard stretches kept per sound, newest last."""
HEARD_ROWS: Final = 60
"""Patch rows kept per heard stretch (a minute of audio at a 1-s patch hop)."""
_LOGIT_CAP: Final = 12.0
_NEWTON_STEPS: Final = 30


class ExampleError(ValueError):
    """A stored example cannot be read back."""


def _unit(rows: Floats, embedding: int) -> Floats:
    """Scale the rows' embedding columns to unit length (the kernels' space)."""
    part = np.asarray(rows, np.float32)[:, :embedding]
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return np.asarray(part / np.maximum(norms, 1e-12), np.float32)


def _kernel(
    a: npt.ArrayLike, b: npt.ArrayLike, width: float
) -> npt.NDArray[np.float64]:
    """exp(-(d / width)^2) of the cosine distance d between unit rows of `a` and `b`."""
    product = np.asarray(a, np.float64) @ np.asarray(b, np.float64).T
    distance = np.clip(1.0 - product, 0.0, 2.0)
    return np.asarray(np.exp(-((distance / width) ** 2)))


def _logit(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    q = np.clip(np.asarray(p, np.float64), 1e-9, 1.0 - 1e-9)
    return np.asarray(np.clip(np.log(q / (1.0 - q)), -_LOGIT_CAP, _LOGIT_CAP))


def _sigmoid(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, np.float64))))


@dataclass(frozen=True, slots=True)
class Example:
    """One verdict: the patch rows it refers to, stored as float16 (a few KB, never audio)."""

    sound: str
    verdict: Verdict
    rows: Floats  # (patches, features)
    taught_at: float  # POSIX seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for a store."""
        rows = np.ascontiguousarray(self.rows, np.float16)
        return {
            "sound": self.sound,
            "verdict": self.verdict,
            "taught_at": self.taught_at,
            "shape": list(rows.shape),
            "rows": base64.b64encode(rows.tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], features: int) -> Example:
        """Read `as_dict`'s form back; ExampleError names what is wrong."""
        try:
            verdict = data["verdict"]
            shape = tuple(int(n) for n in data["shape"])
            raw = base64.b64decode(str(data["rows"]), validate=True)
            sound, taught_at = str(data["sound"]), float(data["taught_at"])
        except (KeyError, TypeError, ValueError) as err:
            raise ExampleError(f"malformed example: {err!r}") from err
        if verdict not in VERDICTS:
            raise ExampleError(f"unknown verdict {verdict!r}")
        if len(shape) != 2 or shape[1] != features or not shape[0] > 0:
            raise ExampleError(f"rows of shape {list(shape)}, expected (n, {features})")
        if len(raw) != 2 * shape[0] * shape[1]:
            raise ExampleError(
                f"malformed example: {len(raw)} bytes of rows for shape {list(shape)}"
            )
        rows = np.frombuffer(raw, np.float16).reshape(shape).astype(np.float32)
        if not np.isfinite(rows).all():
            raise ExampleError("rows hold values that are not finite")
        return cls(sound, verdict, rows, taught_at)


@dataclass(frozen=True, slots=True)
class _Correction:
    """One sound's offset to the shipped logit: sum_j weights_j * kernel(x, centres_j)."""

    centres: npt.NDArray[np.float64]  # unit rows, cast once rather than every window
    weights: npt.NDArray[np.float64]

    def offsets(self, unit_rows: Floats, width: float) -> npt.NDArray[np.float64]:
        return np.asarray(_kernel(unit_rows, self.centres, width) @ self.weights)


@dataclass(frozen=True, slots=True)
class RoomHead:
    """A room's corrections to the shipped head's per-patch probabilities, per sound."""

    labels: tuple[str, ...]
    embedding: int
    corrections: Mapping[str, _Correction] = field(default_factory=dict)
    width: float = KERNEL_WIDTH

    @property
    def empty(self) -> bool:
        """Nothing taught: the room scores as the shipped model does."""
        return not self.corrections

    def adjust(self, probabilities: Floats, rows: Floats) -> Floats:
        """Per-patch probabilities (patches, labels) of the shipped head, corrected for the room."""
        if self.empty:
            return probabilities
        out = np.array(probabilities, np.float32)
        unit = _unit(rows, self.embedding)
        for column, label in enumerate(self.labels):
            correction = self.corrections.get(label)
            if correction is None:
                continue
            logits = _logit(out[:, column]) + correction.offsets(unit, self.width)
            out[:, column] = _sigmoid(logits)
        return out


def newest(examples: Iterable[Example], limit: int = MAX_EXAMPLES) -> list[Example]:
    """Keep the newest `limit` examples of each sound and verdict, oldest first."""
    kept: list[Example] = []
    counted: dict[tuple[str, str], int] = {}
    for example in sorted(examples, key=lambda e: e.taught_at, reverse=True):
        key = (example.sound, example.verdict)
        counted[key] = counted.get(key, 0) + 1
        if counted[key] <= limit:
            kept.append(example)
    return kept[::-1]


TAUGHT_SHARE: Final = 0.5
"""An example keeps only patches scoring at least this share of its best patch: the quiet
moments around a sound are the room's background, not the sound."""


def taught_patches(
    rows: Floats, probabilities: npt.ArrayLike, count: int = PATCHES_PER_EXAMPLE
) -> Floats:
    """Pick up to `count` rows the shipped head found most like the sound, most like it first.

    Rows under TAUGHT_SHARE of the best one's probability are left out.
    """
    p = np.asarray(probabilities, np.float64)
    order = np.argsort(-p, kind="stable")[:count]
    order = order[p[order] >= TAUGHT_SHARE * p.max()]
    kept: Floats = np.asarray(rows, np.float32)[order]
    return kept


def fit_room(
    examples: Iterable[Example],
    patch_probabilities: Callable[[Floats], Floats],
    labels: Sequence[str],
    embedding: int,
    *,
    width: float = KERNEL_WIDTH,
    ridge: float = RIDGE,
) -> RoomHead:
    """Fit a room's corrections on its examples; `patch_probabilities` is the shipped head.

    Per sound, minimises the examples' cross-entropy (not_this_sound -> 0, this_sound -> 1)
    plus `ridge` times half the squared kernel weights, by Newton steps; every example weighs
    the same however many patches it keeps.
    """
    by_sound: dict[str, list[Example]] = {}
    for example in examples:
        if example.sound in labels:
            by_sound.setdefault(example.sound, []).append(example)
    corrections: dict[str, _Correction] = {}
    for sound, taught in by_sound.items():
        rows = np.concatenate([e.rows for e in taught]).astype(np.float32)
        target = np.concatenate(
            [
                np.full(len(e.rows), e.verdict == "this_sound", np.float64)
                for e in taught
            ]
        )
        weight = np.concatenate(
            [np.full(len(e.rows), 1.0 / len(e.rows)) for e in taught]
        )
        base = _logit(patch_probabilities(rows)[:, labels.index(sound)])
        centres = _unit(rows, embedding)
        kernel = _kernel(centres, centres, width)
        corrections[sound] = _Correction(
            centres.astype(np.float64), _newton(kernel, base, target, weight, ridge)
        )
    return RoomHead(tuple(labels), embedding, corrections, width)


def _newton(
    kernel: npt.NDArray[np.float64],
    base: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    ridge: float,
) -> npt.NDArray[np.float64]:
    """Kernel weights minimising weighted cross-entropy plus ridge / 2 * |weights|^2 (convex)."""

    def loss(alpha: npt.NDArray[np.float64]) -> float:
        z = base + kernel @ alpha
        # log(1 + e^z) - y z, computed without overflow
        nll = np.logaddexp(0.0, z) - target * z
        return float(weight @ nll + 0.5 * ridge * alpha @ alpha)

    alpha = np.zeros(len(base))
    current = loss(alpha)
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(base + kernel @ alpha)
        gradient = kernel @ (weight * (p - target)) + ridge * alpha
        hessian = (kernel * (weight * p * (1.0 - p))) @ kernel + ridge * np.eye(
            len(alpha)
        )
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4 and (trial := loss(alpha - scale * step)) > current:
            scale /= 2.0
        if scale <= 1e-4:
            break
        alpha -= scale * step
        improved, current = current - trial, trial
        if improved < 1e-9:
            break
    return alpha


@dataclass(slots=True)
class Heard:
    """A stretch of windows in which a sound scored at least HEARD_SHARE of its threshold."""

    heard_id: int
    sound: str
    start: float  # stream time of its first window's end
    end: float
    peak: float
    # keyed by the frame its patch ends at
    rows: dict[int, Floats] = field(default_factory=dict)
    # windows in a row under the level, while open
    below: int = 0
    # its times are on the current stream's clock (no reconnect since)
    fresh: bool = True

    def patch_rows(self) -> Floats:
        """Its patch rows, oldest first."""
        return np.stack([self.rows[key] for key in sorted(self.rows)])


class HeardLog:
    """The last few heard stretches of each sound, with the patch rows that made them."""

    def __init__(self, levels: Mapping[str, float]) -> None:
        """Keep stretches of each sound whose windows score at least its level."""
        self.levels = dict(levels)
        self._next_id = 1
        self._open: dict[str, Heard] = {}
        self._kept: dict[str, deque[Heard]] = {
            sound: deque(maxlen=HEARD_KEPT) for sound in levels
        }

    def update(
        self,
        t: float,
        scores: Mapping[str, float],
        rows: Floats,
        ends: Sequence[int],
    ) -> dict[str, int]:
        """Follow one window; returns the id of each sound's open stretch."""
        current: dict[str, int] = {}
        for sound, level in self.levels.items():
            score = scores.get(sound, 0.0)
            heard = self._open.get(sound)
            if score < level:
                if heard is not None:
                    heard.below += 1
                    if heard.below >= HEARD_HOLD:
                        del self._open[sound]
                continue
            if heard is None:
                heard = Heard(self._next_id, sound, t, t, score)
                self._next_id += 1
                self._open[sound] = heard
                self._kept[sound].append(heard)
            heard.end, heard.peak, heard.below = t, max(heard.peak, score), 0
            for key, row in zip(ends, rows, strict=True):
                if len(heard.rows) >= HEARD_ROWS:
                    break
                heard.rows.setdefault(key, row)
            current[sound] = heard.heard_id
        return current

    def close(self) -> None:
        """End every open stretch: the stream restarts, its clock from 0."""
        self._open.clear()
        for kept in self._kept.values():
            for heard in kept:
                heard.fresh = False

    def find(
        self, sound: str, heard_id: int | None = None, *, peak: float = 0.0
    ) -> Heard | None:
        """Find the stretch with `heard_id`, or the latest that scored `peak` or more.

        None when no such stretch is kept.
        """
        kept = self._kept.get(sound, deque())
        if heard_id is None:
            return next((h for h in reversed(kept) if h.peak >= peak), None)
        return next((h for h in kept if h.heard_id == heard_id), None)
