"""Band-limited rational resampling, whole-signal and streaming, in plain numpy.

Cameras and sound cards deliver 44.1 or 48 kHz; the model hears 16 kHz. The filter is
a Kaiser-windowed sinc (16 zero crossings each side, beta 8: about 80 dB of stopband,
within 0.3 dB up to 90 % of the lower Nyquist frequency). It runs in polyphase form: the
output phases repeat every ``up`` samples, so a period of ``up`` outputs is a few small
matrix products of an input frame (hopping ``down`` samples) with per-rate-pair filter
matrices, done by einsum (single-threaded, no BLAS thread pool beside the event loop),
instead of gathering every output's taps one by one.

`StreamingResampler` runs the same filter on audio that arrives in blocks. It keeps the
input it still needs between calls and emits every output sample as soon as all its input
has arrived, so the output of `process` calls followed by `flush` equals `resample` of the
whole signal (to float rounding) whatever the block sizes. Without `flush`, the output
lags the input by `StreamingResampler.delay` input samples (1 ms at 44.1 kHz → 16 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from .pcm import AudioError

__all__ = ["StreamingResampler", "resample"]

type Floats = npt.NDArray[np.float32]
type _Doubles = npt.NDArray[np.float64]
type _Ints = npt.NDArray[np.int64]

HALF_TAPS: Final = 16
"""Zero crossings of the sinc on each side of the centre tap."""
KAISER_BETA: Final = 8.0
"""Kaiser window shape: about 80 dB stopband attenuation."""
_MAX_MATRIX_VALUES: Final = 1 << 19
"""Largest per-period filter matrix (4 MiB); odd rate pairs above it use the gather path."""
_MAX_GROUPS: Final = 8
"""Phase groups per period: fewer multiplications by zero versus more numpy calls."""
_CHUNK_VALUES: Final = 1 << 18
"""Input values gathered per matrix product, to bound memory on long files."""


def _check_rates(from_rate: int, to_rate: int) -> None:
    """Raise AudioError for rates that are not positive."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(f"invalid sample rates {from_rate} -> {to_rate}")


@cache
def _sinc_filter(up: int, down: int, half_taps: int = HALF_TAPS) -> _Doubles:
    """Kaiser-windowed sinc low-pass for the polyphase resampler (cut at the lower Nyquist)."""
    cutoff = 1.0 / max(up, down)
    n = np.arange(-half_taps * max(up, down), half_taps * max(up, down) + 1)
    taps = cutoff * np.sinc(cutoff * n) * np.kaiser(n.size, KAISER_BETA)
    result: _Doubles = taps * up / taps.sum()
    return result


@dataclass(frozen=True, slots=True)
class _Plan:
    """Polyphase layout of the filter for one rate ratio up/down."""

    up: int
    down: int
    half: int
    n_poly: int
    taps: _Doubles
    """Filter padded with zeros to n_poly * up taps."""
    first: _Ints
    """First input index read by output r (0 <= r < up) of period 0; period m adds m * down."""
    offsets: _Ints
    """Tap index that meets that first input, per phase r."""
    span: int
    """Input samples one period of outputs reads (first[-1] - first[0] + n_poly)."""
    groups: tuple[tuple[int, int, int, _Doubles], ...] | None
    """(phase, input offset, input count, matrix) per group of phases: outputs phase..phase+n
    of a period = frame[offset:offset+count] @ matrix; None when too large (gather instead)."""

    def first_input(self, k: int) -> int:
        """First input index output k reads."""
        period, phase = divmod(k, self.up)
        return int(self.first[phase]) + period * self.down

    def ready(self, available: int) -> int:
        """Count the leading outputs whose whole input lies in the first `available` samples."""
        periods = (available - self.n_poly - self.first) // self.down
        return max(0, int((periods * self.up + np.arange(self.up)).max()) + 1)


@lru_cache(maxsize=32)
def _plan(up: int, down: int) -> _Plan:
    """Precompute the polyphase layout for a reduced ratio up/down."""
    taps = _sinc_filter(up, down)
    half = taps.size // 2
    n_poly = taps.size // up + 1
    padded = np.zeros(n_poly * up, dtype=np.float64)
    padded[: taps.size] = taps
    # Output k sits at position k*down on the upsampled grid; only every `up`-th tap meets a
    # real input sample, so each output is a dot product of n_poly inputs with one tap phase.
    position = np.arange(up, dtype=np.int64) * down - half
    phase = position % up
    offsets = (up - phase) % up
    first = (position + offsets) // up
    span = int(first[-1] - first[0]) + n_poly
    groups: tuple[tuple[int, int, int, _Doubles], ...] | None = None
    if span * up <= _MAX_MATRIX_VALUES:
        # The period matrix is mostly zeros (each phase reads n_poly of span inputs): split
        # the phases into a few groups, each reading only its own stretch of the frame.
        size = min(up, max(-(-up // _MAX_GROUPS), -(-up * n_poly // (2 * down))))
        parts = []
        for r0 in range(0, up, size):
            r = np.arange(r0, min(r0 + size, up))
            lo = int(first[r0] - first[0])
            count = int(first[r[-1]] - first[0]) + n_poly - lo
            matrix = np.zeros((count, r.size), dtype=np.float64)
            rows = (first[r] - first[0] - lo)[None, :] + np.arange(n_poly)[:, None]
            matrix[rows, np.arange(r.size)[None, :]] = padded[
                offsets[r][None, :] + up * np.arange(n_poly)[:, None]
            ]
            parts.append((r0, lo, count, matrix))
        groups = tuple(parts)
    return _Plan(up, down, half, n_poly, padded, first, offsets, span, groups)


def _window(
    samples: npt.NDArray[np.floating], start: int, lo: int, hi: int
) -> _Doubles:
    """Copy absolute indices lo..hi to float64; `samples` starts at `start`, zeros elsewhere."""
    out = np.zeros(hi - lo, dtype=np.float64)
    a, b = max(lo, start), min(hi, start + samples.size)
    if a < b:
        out[a - lo : b - lo] = samples[a - start : b - start]
    return out


def _render(
    plan: _Plan, samples: npt.NDArray[np.floating], start: int, k0: int, k1: int
) -> Floats:
    """Compute outputs k0..k1 over `samples` (absolute index `start` on, zeros elsewhere)."""
    if k1 <= k0:
        return np.zeros(0, dtype=np.float32)
    up, down = plan.up, plan.down
    if plan.groups is not None:
        m0, m1 = k0 // up, -(-k1 // up)
        out = np.empty((m1 - m0, up), dtype=np.float32)
        step = max(1, _CHUNK_VALUES // plan.span)
        for m in range(m0, m1, step):
            n = min(step, m1 - m)
            lo = int(plan.first[0]) + m * down
            seg = _window(samples, start, lo, lo + (n - 1) * down + plan.span)
            frames = np.lib.stride_tricks.sliding_window_view(seg, plan.span)[::down]
            for r0, offset, count, matrix in plan.groups:
                # einsum, not BLAS: single-threaded and predictable beside an event loop.
                out[m - m0 : m - m0 + n, r0 : r0 + matrix.shape[1]] = np.einsum(
                    "ij,jk->ik",
                    frames[:, offset : offset + count],
                    matrix,
                    optimize=False,
                )
        return out.reshape(-1)[k0 - m0 * up : k1 - m0 * up]
    # Gather path for rate pairs whose period matrix would be huge (e.g. 44100 -> 16001).
    result = np.empty(k1 - k0, dtype=np.float32)
    step = max(1, _CHUNK_VALUES // plan.n_poly)
    reach = np.arange(plan.n_poly, dtype=np.int64)
    for k in range(k0, k1, step):
        ks = np.arange(k, min(k + step, k1), dtype=np.int64)
        position = ks * down - plan.half
        offsets = (up - position % up) % up
        first = (position + offsets) // up
        lo = int(first[0])
        seg = _window(samples, start, lo, int(first[-1]) + plan.n_poly)
        values = seg[(first - lo)[:, None] + reach[None, :]]
        taps = plan.taps[offsets[:, None] + up * reach[None, :]]
        result[k - k0 : k - k0 + ks.size] = np.einsum("ij,ij->i", values, taps)
    return result


def resample(samples: Floats, from_rate: int, to_rate: int) -> Floats:
    """Band-limited rational resampling (polyphase FIR) of a whole signal; len = n * to // from."""
    _check_rates(from_rate, to_rate)
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    g = math.gcd(from_rate, to_rate)
    plan = _plan(to_rate // g, from_rate // g)
    return _render(plan, samples, 0, 0, samples.size * plan.up // plan.down)


class StreamingResampler:
    """Resample audio arriving in blocks of any size, exactly as `resample` would the whole."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Prepare the filter for from_rate -> to_rate (a pass-through when they are equal)."""
        _check_rates(from_rate, to_rate)
        self.from_rate: Final = from_rate
        self.to_rate: Final = to_rate
        g = math.gcd(from_rate, to_rate)
        self._plan = (
            None if from_rate == to_rate else _plan(to_rate // g, from_rate // g)
        )
        self._buffer: Floats = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._consumed = 0
        self._emitted = 0

    @property
    def delay(self) -> int:
        """Input samples the output lags behind the input between `flush` calls (0 for pass-through)."""
        plan = self._plan
        if plan is None:
            return 0
        lag = plan.first + plan.n_poly - np.arange(plan.up) * plan.down / plan.up
        return math.ceil(float(lag.max()))

    def reset(self) -> None:
        """Forget all history, as if newly created."""
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._consumed = 0
        self._emitted = 0

    def process(self, block: npt.ArrayLike) -> Floats:
        """Feed a 1-D block; returns every output sample whose input is now complete."""
        samples = np.asarray(block, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected a 1-D block, got shape {samples.shape}")
        plan = self._plan
        if plan is None:
            return samples
        self._buffer = np.concatenate((self._buffer, samples))
        self._consumed += samples.size
        end = min(plan.ready(self._consumed), self._consumed * plan.up // plan.down)
        out = _render(plan, self._buffer, self._buffer_start, self._emitted, end)
        self._emitted = max(self._emitted, end)
        keep_from = min(plan.first_input(self._emitted), self._consumed)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return out

    def flush(self) -> Floats:
        """End of signal: return the remaining outputs (input padded with silence) and reset."""
        plan = self._plan
        if plan is None:
            return np.zeros(0, dtype=np.float32)
        end = self._consumed * plan.up // plan.down
        out = _render(plan, self._buffer, self._buffer_start, self._emitted, end)
        self.reset()
        return out
