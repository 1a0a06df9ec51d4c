"""The log-mel frontend: what the model sees of the audio."""

import numpy as np
import pytest

from baby_monitor_engine.frontend import (
    FrontendConfig,
    LogScale,
    StreamingFrontend,
    log_mel,
)
from baby_monitor_engine.windows import clip_windows, silence_frame

CONFIG = FrontendConfig()


def tone(freq: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """Make a sine at 16 kHz."""
    t = np.arange(int(seconds * 16000)) / 16000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_one_frame_per_hop_after_context() -> None:
    """Every 400 new samples (25 ms) give one frame of 64 mel bands."""
    context = np.zeros(CONFIG.win_length - CONFIG.hop_length, np.float32)
    frames = log_mel(np.concatenate((context, tone(500, 1.0))), CONFIG)
    assert frames.shape == (40, 64)
    assert frames.dtype == np.float32


def test_tone_lights_up_its_own_band() -> None:
    """A 1 kHz tone peaks in the mel band centred nearest 1 kHz, and a louder one reads higher."""
    quiet = log_mel(tone(1000, amplitude=0.05), CONFIG).mean(axis=0)
    loud = log_mel(tone(1000, amplitude=0.5), CONFIG).mean(axis=0)
    band = int(np.argmax(loud))
    assert band == int(np.argmax(quiet))
    centre = np.fft.rfftfreq(CONFIG.n_fft, 1 / 16000)[
        CONFIG.filterbank[:, band].argmax()
    ]
    assert abs(centre - 1000) < 60
    assert loud[band] - quiet[band] == pytest.approx(20.0, abs=0.5)  # dB


def test_nothing_above_fmax_reaches_the_model() -> None:
    """Energy above 4 kHz (what 8 kHz phone uploads lack) leaves the features unchanged."""
    base = tone(600)
    with_high = base + tone(6000, amplitude=0.5)
    assert np.abs(log_mel(base, CONFIG) - log_mel(with_high, CONFIG)).max() < 0.05


def test_chunking_does_not_change_frames() -> None:
    """Blocks of any size give exactly the frames of the whole signal."""
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    context = np.zeros(CONFIG.win_length - CONFIG.hop_length, np.float32)
    whole = log_mel(np.concatenate((context, audio)), CONFIG)
    stream = StreamingFrontend(CONFIG)
    parts, i = [], 0
    while i < audio.size:
        n = int(rng.integers(1, 5000))
        parts.append(stream.process(audio[i : i + n]))
        i += n
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4)


def test_silence_is_the_floor() -> None:
    """Digital silence maps to the log floor, the value windows start filled with."""
    scale = LogScale(floor=1e-10, offset=-50.0, scale=0.1)
    config = FrontendConfig(log=scale)
    frames = log_mel(np.zeros(4000, np.float32), config)
    np.testing.assert_allclose(frames, (-100 + 50) * 0.1, atol=1e-5)
    np.testing.assert_allclose(silence_frame(config), frames[0], atol=1e-5)


def test_short_clip_gets_one_window_padded_with_silence_before_it() -> None:
    """A 3-s clip is one window ending at 3 s whose first 4 s are silence."""
    times, windows = clip_windows(tone(800, 3.0), CONFIG, 7.0, 1.0)
    assert times.tolist() == [3.0]
    assert windows.shape == (1, 280, 64)
    np.testing.assert_allclose(
        windows[0, :150], silence_frame(CONFIG)[None].repeat(150, 0)
    )


def test_long_clip_gets_a_window_every_hop() -> None:
    """A 10-s clip gives windows ending at 7, 8, 9 and 10 s (half-second hop: every 0.5 s)."""
    audio = tone(800, 10.0)
    assert clip_windows(audio, CONFIG, 7.0, 1.0)[0].tolist() == [7, 8, 9, 10]
    assert clip_windows(audio, CONFIG, 7.0, 0.5)[0].tolist() == [
        7,
        7.5,
        8,
        8.5,
        9,
        9.5,
        10,
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hop_length": 900}, "hop_length"),
        ({"fmax": 9000.0}, "fmax \\(9000.0\\) <= 8000"),
    ],
)
def test_inconsistent_parameters_are_rejected(change: dict, message: str) -> None:
    """A frontend that could not work says which parameter is wrong."""
    with pytest.raises(ValueError, match=message):
        FrontendConfig(**change)
