"""Resampling: the polyphase filter is exact, band-limits, and streams block by block."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine.audio import AudioError, resample as audio_resample
from baby_monitor_engine.resample import (
    HALF_TAPS,
    KAISER_BETA,
    StreamingResampler,
    resample,
)

type Floats = npt.NDArray[np.float32]

RATE_PAIRS = [
    (44100, 16000),
    (48000, 16000),
    (22050, 16000),
    (16000, 8000),
    (8000, 16000),
    (44100, 48000),
    (16000, 16001),  # coprime: the per-period matrix is too large, gather path
]


def _reference(x: Floats, from_rate: int, to_rate: int) -> npt.NDArray[np.float64]:
    """Textbook definition: zero-stuff by up, filter, keep every down-th (centred) sample.

    The filter is a Kaiser-windowed sinc cut at the lower Nyquist frequency, HALF_TAPS zero
    crossings each side, normalised to a gain of `up` (the zero-stuffing divides by it).
    """
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    cutoff = 1.0 / max(up, down)
    t = np.arange(-HALF_TAPS * max(up, down), HALF_TAPS * max(up, down) + 1)
    taps = cutoff * np.sinc(cutoff * t) * np.kaiser(t.size, KAISER_BETA)
    taps *= up / taps.sum()
    half = taps.size // 2
    k = np.arange(x.size * up // down)[:, None]
    n = np.arange(x.size)[None, :]
    idx = k * down - n * up + half
    valid = (idx >= 0) & (idx < taps.size)
    weights = np.where(valid, taps[np.clip(idx, 0, taps.size - 1)], 0.0)
    result: npt.NDArray[np.float64] = (weights * x).sum(axis=1)
    return result


def _tone(freq: float, rate: int, seconds: float) -> Floats:
    t = np.arange(round(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _rms_db(x: Floats) -> float:
    return 20 * math.log10(
        float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-20
    )


def test_audio_reexports_resample() -> None:
    """audio.resample is the same function (training code imports it from there)."""
    assert audio_resample is resample


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_matches_textbook_definition(from_rate: int, to_rate: int) -> None:
    """Every output equals the zero-stuff/filter/decimate definition, edges included."""
    x = np.random.default_rng(1).uniform(-1, 1, 700).astype(np.float32)
    got = resample(x, from_rate, to_rate)
    want = _reference(x, from_rate, to_rate)
    assert got.dtype == np.float32
    assert got.shape == (x.size * to_rate // from_rate,)
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "products"),
    [(16000, 16001, {"ij,ij->i"}), (44100, 16000, {"ij,jk->ik"})],
)
def test_gather_path_is_used_for_coprime_rates(
    from_rate: int, to_rate: int, products: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coprime pair in RATE_PAIRS really exercises the fallback path.

    It gathers each output's taps (row-wise dot products) where the common pairs multiply
    frames by per-period filter matrices.
    """
    assert (from_rate, to_rate) in RATE_PAIRS
    seen: set[str] = set()
    einsum = np.einsum

    def spy(subscripts: str, *operands: Any, **kwargs: Any) -> Any:
        seen.add(subscripts)
        return einsum(subscripts, *operands, **kwargs)

    monkeypatch.setattr(np, "einsum", spy)
    resample(np.ones(700, np.float32), from_rate, to_rate)
    assert seen == products


def test_lengths_passthrough_and_bad_rates() -> None:
    """Output length is n*to//from; equal rates and empty input pass through; bad rates fail."""
    x = np.ones(1000, dtype=np.float32)
    assert resample(x, 44100, 16000).size == 1000 * 16000 // 44100
    assert resample(x, 16000, 16000) is x
    assert resample(np.zeros(0, np.float32), 44100, 16000).size == 0
    with pytest.raises(AudioError, match="invalid sample rates"):
        resample(x, 0, 16000)
    with pytest.raises(AudioError):
        StreamingResampler(16000, -1)


def test_1khz_tone_is_accurate_44k_to_16k() -> None:
    """A 1 kHz tone comes out as the same tone sampled at 16 kHz (edges aside)."""
    out = resample(_tone(1000, 44100, 1.0), 44100, 16000)
    want = _tone(1000, 16000, 1.0)
    assert out.size == want.size
    np.testing.assert_allclose(out[200:-200], want[200:-200], atol=1e-3)


@pytest.mark.parametrize("freq", [9600.0, 10000.0, 15000.0, 21000.0])
def test_above_nyquist_is_attenuated_60db(freq: float) -> None:
    """Tones the 16 kHz output cannot carry are suppressed by at least 60 dB, not aliased."""
    out = resample(_tone(freq, 44100, 1.0), 44100, 16000)
    reference = _rms_db(_tone(1000, 16000, 1.0))
    assert _rms_db(out[200:-200]) - reference <= -60.0


def test_whole_signal_is_fast() -> None:
    """10 s of 44.1 kHz resamples to 16 kHz well under half a second (was ~1.2 s)."""
    x = np.random.default_rng(0).uniform(-1, 1, 441000).astype(np.float32)
    resample(x[:1000], 44100, 16000)
    start = time.perf_counter()
    resample(x, 44100, 16000)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_streaming_equals_whole_for_random_blocks(from_rate: int, to_rate: int) -> None:
    """Blocks of any size (0, 1, odd, large) give exactly the whole-signal output."""
    rng = np.random.default_rng(from_rate + to_rate)
    x = rng.uniform(-1, 1, 3 * from_rate // 10).astype(np.float32)
    whole = resample(x, from_rate, to_rate)
    stream = StreamingResampler(from_rate, to_rate)
    pieces, pos = [], 0
    while pos < x.size:
        size = int(rng.choice([0, 1, 2, 7, 160, 441, 1000, 4410]))
        out = stream.process(x[pos : pos + size])
        pos = min(pos + size, x.size)
        pieces.append(out)
        emitted = sum(piece.size for piece in pieces)
        # Output so far is a prefix of the whole, lagging at most `delay` input samples.
        np.testing.assert_allclose(np.concatenate(pieces), whole[:emitted], atol=1e-6)
        assert emitted >= math.floor((pos - stream.delay) * to_rate / from_rate)
    pieces.append(stream.flush())
    result = np.concatenate(pieces)
    assert result.dtype == np.float32
    assert result.size == whole.size
    np.testing.assert_allclose(result, whole, atol=1e-6)


def test_streaming_delay_is_about_a_millisecond() -> None:
    """44.1 kHz -> 16 kHz streams with about 1 ms of lag."""
    assert 0 < StreamingResampler(44100, 16000).delay <= 50


def test_streaming_reset_and_flush_start_afresh() -> None:
    """After flush() or reset() the resampler behaves like a new one."""
    x = _tone(440, 48000, 0.2)
    stream = StreamingResampler(48000, 16000)
    first = np.concatenate([stream.process(x), stream.flush()])
    second = np.concatenate([stream.process(x), stream.flush()])
    np.testing.assert_array_equal(first, second)
    stream.process(np.ones(999, np.float32))
    stream.reset()
    third = np.concatenate([stream.process(x), stream.flush()])
    np.testing.assert_array_equal(first, third)


def test_streaming_passthrough_when_rates_equal() -> None:
    """Equal rates: blocks come back unchanged, with no delay and nothing to flush."""
    stream = StreamingResampler(16000, 16000)
    block = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(stream.process(block), block)
    assert stream.delay == 0
    assert stream.flush().size == 0


def test_streaming_rejects_multichannel_blocks() -> None:
    """Blocks must be 1-D (mix channels down first)."""
    with pytest.raises(ValueError, match="1-D"):
        StreamingResampler(44100, 16000).process(np.zeros((10, 2), np.float32))
