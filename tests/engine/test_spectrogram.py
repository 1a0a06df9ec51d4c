"""The live picture: a spectrogram with probability traces, drawn and encoded with numpy alone."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import numpy.typing as npt
from PIL import Image
import pytest

from baby_monitor_engine.frontend import FrontendConfig, log_mel
from baby_monitor_engine.spectrogram import (
    BACKGROUND,
    COLOURS,
    THRESHOLD_DIM,
    Layout,
    Picture,
    SpectrogramHistory,
    Trace,
    colour_map,
    encode_png,
    levels_for,
    render_png,
    render_spectrogram,
)
from models.backbone import FRONTEND

LAYOUT = Layout()
FRAME_S = 0.025
N_MELS = 64
CRY = np.asarray(COLOURS["cry"], np.uint8)
LAUGHTER = np.asarray(COLOURS["laughter"], np.uint8)


def decode_png(data: bytes) -> tuple[tuple[int, int, int, int], npt.NDArray[np.uint8]]:
    """Read our PNG by the book: check chunk CRCs, inflate IDAT, undo the row filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert [kind for kind, _ in chunks][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")
    width, height, depth, colour_type, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + 3 * width)
    pixels = np.zeros((height, 3 * width), np.uint8)
    previous = np.zeros(3 * width, np.uint8)
    for y in range(height):  # test decoder: clarity over speed
        kind, line = rows[y, 0], rows[y, 1:]
        assert kind in (0, 2), f"unexpected filter {kind}"
        pixels[y] = line if kind == 0 else line + previous
        previous = pixels[y]
    return (width, height, depth, colour_type), pixels.reshape(height, width, 3)


def frames_of(seconds: float, value: float = -90.0) -> npt.NDArray[np.float32]:
    """Frames of a steady level (dB) for `seconds`."""
    return np.full((round(seconds / FRAME_S), N_MELS), value, np.float32)


def picture(
    frames: npt.NDArray[np.float32] | None = None,
    traces: tuple[Trace, ...] = (),
    end: float = 100.0,
) -> Picture:
    """Make a 30-s picture ending at `end` (30 s of quiet frames unless given)."""
    return Picture(
        frames_of(30.0) if frames is None else frames, FRAME_S, end, 30.0, traces
    )


def steady(label: str, p: float, threshold: float | None = None) -> Trace:
    """Make a trace holding `p` over the whole 30 s, one point a second."""
    times = np.arange(70.0, 100.5, 1.0)
    return Trace(label, times, np.full(times.size, p, np.float32), threshold)


def is_colour(
    pixels: npt.NDArray[np.uint8], colour: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Which pixels have exactly this colour."""
    return np.all(pixels == np.asarray(colour, np.uint8), axis=-1)


def test_png_is_valid_and_decodes_to_the_image() -> None:
    """Signature, IHDR (size, 8-bit truecolour), CRCs and pixels all hold, also for Pillow."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    data = encode_png(image)
    header, pixels = decode_png(data)
    assert header == (53, 37, 8, 2)
    np.testing.assert_array_equal(pixels, image)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4), np.uint8), r"\(4, 4\)"),
        (np.zeros((0, 4, 3), np.uint8), "non-empty"),
    ],
)
def test_png_rejects_what_it_cannot_encode(
    image: npt.NDArray[np.generic], problem: str
) -> None:
    """Wrong dtype, shape or an empty image is refused with a message naming it."""
    with pytest.raises(ValueError, match=problem):
        encode_png(image)  # type: ignore[arg-type]


def test_rendered_png_has_the_layout_size() -> None:
    """The picture is 640 x 240 by default: spectrogram, gap, trace panel."""
    header, pixels = decode_png(render_png(picture(traces=(steady("cry", 0.3),))))
    assert header == (640, 240, 8, 2)
    assert pixels.shape == (LAYOUT.height, LAYOUT.width, 3)
    assert LAYOUT.height == LAYOUT.spectrogram_height + LAYOUT.gap + LAYOUT.trace_height


def test_colour_map_runs_from_dark_to_bright() -> None:
    """Brightness rises steadily along the map, so louder always looks brighter."""
    lut = colour_map().astype(np.float64)
    luma = lut @ np.array([0.299, 0.587, 0.114])
    assert lut.shape == (256, 3)
    assert luma[0] < 10 and luma[-1] > 230
    assert np.all(np.diff(luma) > -1.0)


def test_loud_low_band_lights_the_bottom_rows() -> None:
    """Energy in the lowest eighth of the mel bands appears in the bottom eighth of the spectrogram."""
    frames = frames_of(30.0)
    frames[:, :8] = -20.0
    image = render_spectrogram(picture(frames), levels=(-90.0, -10.0))
    luma = image[: LAYOUT.spectrogram_height].astype(np.float64).mean(axis=(1, 2))
    bottom = LAYOUT.spectrogram_height - LAYOUT.spectrogram_height // 8
    assert luma[bottom:].min() > 4 * luma[:bottom].max()
    assert luma[bottom - 2] < luma[bottom + 2]


def test_time_runs_left_to_right_ending_now() -> None:
    """A sound in the last 3 s is at the right edge; older columns stay quiet."""
    frames = frames_of(30.0)
    frames[-round(3.0 / FRAME_S) :] = -20.0
    image = render_spectrogram(picture(frames), levels=(-90.0, -10.0))
    luma = image[: LAYOUT.spectrogram_height].astype(np.float64).mean(axis=(0, 2))
    edge = LAYOUT.width - LAYOUT.width // 10  # 3 s of 30
    assert luma[edge + 1 :].min() > 4 * luma[: edge - 1].max()


def test_fixed_levels_are_absolute_and_auto_levels_follow_the_sound() -> None:
    """With fixed levels quiet hiss stays dark; automatic levels stretch a loud sound over the map."""
    quiet = frames_of(30.0, -80.0)
    loud = frames_of(30.0, -80.0)
    loud[:, 20:30] = -15.0
    fixed = render_spectrogram(picture(quiet), levels=(-90.0, -10.0))
    auto = render_spectrogram(picture(loud))
    lut = colour_map()
    assert fixed[0, 0].tolist() == lut[round(255 * 10 / 80)].tolist()
    spectrogram = auto[: LAYOUT.spectrogram_height]
    assert is_colour(spectrogram, lut[-1]).any()  # the loud band reaches the top colour
    assert is_colour(spectrogram, lut[0]).any()  # the hiss the bottom one


@pytest.mark.parametrize(
    "config", [FrontendConfig(), FRONTEND], ids=["htk", "efficientat"]
)
def test_levels_are_decibels_below_a_full_scale_sine(config: FrontendConfig) -> None:
    """A full-scale 1-kHz sine's loudest band is the brightest colour at 0 dB.

    Whatever the frontend's own power scale; the low level is that many dB below it.
    """
    t = np.arange(16000) / 16000
    frames = log_mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32), config)
    low, high = levels_for(config, (-60.0, 0.0))
    assert high == pytest.approx(float(frames.max()), abs=1e-3)
    assert low == pytest.approx(high - 60.0 * config.log.scale)


def test_trace_at_one_sits_on_the_top_row_of_the_trace_panel() -> None:
    """P = 1 is drawn from the panel's first row down, never in the gap above it."""
    image = render_spectrogram(picture(traces=(steady("cry", 1.0),)))
    middle = slice(LAYOUT.width // 4, 3 * LAYOUT.width // 4)
    assert is_colour(image[LAYOUT.trace_top, middle], CRY).all()
    assert not is_colour(image[LAYOUT.trace_top - 1], CRY).any()


def test_trace_at_zero_sits_on_the_bottom_row() -> None:
    """P = 0 is drawn on the last row of the picture."""
    image = render_spectrogram(picture(traces=(steady("laughter", 0.0),)))
    assert is_colour(image[-1, 100:500], LAUGHTER).all()
    assert not is_colour(image[: LAYOUT.height - 2], LAUGHTER).any()


def test_trace_follows_its_points_and_sounds_have_their_own_colours() -> None:
    """A rise from 0 to 1 within a second: low on the left, high on the right, joined up."""
    times = np.array([70.0, 85.0, 86.0, 100.0])
    cry = Trace("cry", times, np.array([0.0, 0.0, 1.0, 1.0], np.float32))
    laughter = steady("laughter", 0.5)
    image = render_spectrogram(picture(traces=(cry, laughter)))
    panel = image[LAYOUT.trace_top :]
    cry_rows = [np.flatnonzero(is_colour(panel[:, x], CRY)) for x in range(640)]
    assert cry_rows[50].min() >= LAYOUT.trace_height - 2  # at 0 on the left
    assert cry_rows[600].max() <= 1  # at 1 on the right
    laughter_rows = set(np.flatnonzero(is_colour(panel[:, 100], LAUGHTER)).tolist())
    assert laughter_rows == {LAYOUT.trace_height // 2, LAYOUT.trace_height // 2 + 1}
    rise = set().union(*(rows.tolist() for rows in cry_rows[300:380]))
    assert (
        set(range(LAYOUT.trace_height)) - rise <= laughter_rows
    )  # no gap but the crossing


def test_threshold_is_a_dashed_line_at_its_probability() -> None:
    """The threshold row (0.5 half way up the panel) alternates the dimmed colour and background."""
    image = render_spectrogram(picture(traces=(steady("cry", 0.0, threshold=0.5),)))
    row = LAYOUT.trace_top + round(0.5 * (LAYOUT.trace_height - 1))
    dim = np.rint(CRY * THRESHOLD_DIM).astype(np.uint8)
    dashed = is_colour(image[row], dim)
    assert 0.3 < dashed.mean() < 0.7
    assert is_colour(image[row, ~dashed], BACKGROUND).mean() > 0.9
    others = np.delete(image[LAYOUT.trace_top :], row - LAYOUT.trace_top, axis=0)
    assert not is_colour(others, dim).any()


def test_empty_history_renders_a_blank_picture() -> None:
    """Nothing heard yet: a valid PNG of background, no failure."""
    image = render_spectrogram(Picture.empty(N_MELS, FRAME_S))
    assert image.shape == (240, 640, 3)
    assert is_colour(image[: LAYOUT.spectrogram_height], BACKGROUND).all()
    header, _ = decode_png(render_png(Picture.empty(N_MELS, FRAME_S)))
    assert header[:2] == (640, 240)


def test_short_history_is_drawn_at_the_right_with_blank_before() -> None:
    """Seven seconds heard: the right 7/30 of the spectrogram is drawn, the rest is background."""
    image = render_spectrogram(picture(frames_of(7.0, -50.0)), levels=(-90.0, -10.0))
    blank = is_colour(image[: LAYOUT.spectrogram_height], BACKGROUND).all(axis=0)
    drawn_from = LAYOUT.width - round(LAYOUT.width * 7 / 30)
    assert blank[: drawn_from - 1].all()
    assert not blank[drawn_from + 1 :].any()


def test_nan_and_infinite_input_does_not_break_the_picture() -> None:
    """NaN frames, NaN probabilities and a NaN threshold are skipped, the rest is drawn."""
    frames = frames_of(30.0, -50.0)
    frames[100:200] = np.nan
    frames[300:310, 5] = np.inf
    values = np.full(31, 0.5, np.float32)
    values[10:15] = np.nan
    traces = (
        Trace("cry", np.arange(70.0, 101.0), values, threshold=float("nan")),
        Trace("laughter", np.arange(70.0, 101.0), np.full(31, np.nan, np.float32)),
    )
    for levels in (None, (-90.0, -10.0)):
        image = render_spectrogram(picture(frames, traces), levels=levels)
        assert image.dtype == np.uint8
        assert is_colour(image[LAYOUT.trace_top :], CRY).any()
        assert not is_colour(image, LAUGHTER).any()
    all_nan = render_spectrogram(picture(np.full((1200, N_MELS), np.nan, np.float32)))
    assert all_nan.shape == (240, 640, 3)


def test_history_keeps_only_new_frames_of_each_window() -> None:
    """Overlapping 7-s windows every second add 1 s each; 30 s of frames at most, in order."""
    history = SpectrogramHistory(N_MELS, FRAME_S, 30.0)
    stream = np.arange(2000, dtype=np.float32)[:, None].repeat(N_MELS, axis=1)
    window = round(7.0 / FRAME_S)
    hop = round(1.0 / FRAME_S)
    for end in range(window, 2000 + 1, hop):
        history.push(end * FRAME_S, stream[end - window : end], {"cry": end / 2000})
    shown = history.picture({"cry": 0.9})
    assert len(history) == 1200
    np.testing.assert_array_equal(shown.frames[:, 0], np.arange(800, 2000))
    assert shown.end == pytest.approx(50.0)
    (trace,) = shown.traces
    assert trace.times[0] >= 20.0 and trace.times[-1] == pytest.approx(50.0)
    assert trace.threshold == 0.9


def test_first_window_fills_the_history_with_its_seven_seconds() -> None:
    """The first window after a start is all new: 7 s are there at once."""
    history = SpectrogramHistory(N_MELS, FRAME_S, 30.0)
    history.push(7.0, frames_of(7.0), {"cry": 0.1, "laughter": 0.2})
    assert len(history) == 280
    assert [trace.label for trace in history.picture().traces] == ["cry", "laughter"]


def test_stream_time_going_back_starts_a_new_history() -> None:
    """A reconnect restarts stream time at 0: the old frames and scores are forgotten."""
    history = SpectrogramHistory(N_MELS, FRAME_S, 30.0)
    for t in range(7, 20):
        history.push(float(t), frames_of(7.0, -80.0), {"cry": 0.9})
    history.push(7.0, frames_of(7.0, -20.0), {"cry": 0.1})
    shown = history.picture({"cry": 0.5})
    assert len(history) == 280
    assert np.all(shown.frames == -20.0)
    assert shown.traces[0].values.tolist() == [pytest.approx(0.1)]


def test_reset_empties_the_history() -> None:
    """After reset the picture is blank again."""
    history = SpectrogramHistory(N_MELS, FRAME_S, 30.0)
    history.push(7.0, frames_of(7.0), {"cry": 0.1})
    history.reset()
    assert len(history) == 0
    assert history.end is None
    assert history.picture({"cry": 0.5}).frames.shape == (0, N_MELS)


def test_history_rejects_features_of_the_wrong_shape() -> None:
    """Features with another number of mel bands are refused, naming the shape."""
    history = SpectrogramHistory(N_MELS, FRAME_S, 30.0)
    with pytest.raises(ValueError, match=r"\(280, 32\)"):
        history.push(7.0, np.zeros((280, 32), np.float32), {})
