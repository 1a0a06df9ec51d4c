"""Decoding in bounded blocks, without ffmpeg too, and the BLAS limit without threadpoolctl."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import subprocess
import sys
from typing import Any
import wave

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine import audio
from baby_monitor_engine.audio import AudioError, decode_blocks, decode_file, sanitize


def write(path: Path, data: bytes, width: int, rate: int, channels: int = 1) -> Path:
    """Write raw PCM frames as a WAV file."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(data)
    return path


@pytest.fixture
def no_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend ffmpeg is not installed."""
    monkeypatch.setattr(audio, "ffmpeg_path", lambda: None)


@pytest.mark.usefixtures("no_ffmpeg")
@pytest.mark.parametrize(
    ("width", "dtype", "scale"),
    [(1, np.uint8, 127), (2, "<i2", 16384), (4, "<i4", 2**30)],
)
def test_pcm_wav_decodes_without_ffmpeg(
    tmp_path: Path, width: int, dtype: str, scale: int
) -> None:
    """8-, 16- and 32-bit PCM WAV at 8 kHz stereo become 16 kHz mono at the right level."""
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 500 * t) * 0.5
    ints = np.round(tone * scale) + (128 if width == 1 else 0)
    frames = np.repeat(ints[:, None], 2, axis=1).astype(dtype).tobytes()
    samples = decode_file(write(tmp_path / "x.wav", frames, width, 8000, 2))
    assert samples.size == 16000
    rms = np.sqrt(np.mean(samples[1000:-1000] ** 2))
    assert rms == pytest.approx(
        0.5 * scale / {1: 128, 2: 32768, 4: 2**31}[width] / np.sqrt(2), rel=0.02
    )


@pytest.mark.usefixtures("no_ffmpeg")
def test_non_wav_without_ffmpeg_names_the_problem(tmp_path: Path) -> None:
    """Anything but PCM WAV needs ffmpeg, and the error says so."""
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3" + bytes(500))
    with pytest.raises(
        AudioError, match="not a PCM WAV file and ffmpeg is not installed"
    ):
        decode_file(path)


@pytest.mark.usefixtures("no_ffmpeg")
def test_unsupported_sample_width(tmp_path: Path) -> None:
    """24-bit WAV without ffmpeg is refused with the width named."""
    path = write(tmp_path / "x.wav", bytes(300), 3, 16000)
    with pytest.raises(AudioError, match="sample width of 3 bytes"):
        decode_file(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A folder given as a file is named as such."""
    with pytest.raises(AudioError, match="not a regular file"):
        decode_file(tmp_path)


def test_sanitize_replaces_nan_and_clips() -> None:
    """NaN and infinities become silence; everything is clipped to [-1, 1]."""
    out = sanitize([np.nan, np.inf, -np.inf, 2.0, -0.5])
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, -0.5]


def test_single_threaded_without_threadpoolctl() -> None:
    """Without threadpoolctl the block still runs, unchanged, and no limit is claimed.

    The limit is set once per process, so this runs in a fresh interpreter where
    threadpoolctl cannot be imported.
    """
    script = (
        "import sys; sys.modules['threadpoolctl'] = None\n"
        "import numpy as np\n"
        "from baby_monitor_engine import blas\n"
        "with blas.single_threaded():\n"
        "    product = np.ones((4, 4)) @ np.ones((4, 4))\n"
        "print(product[0, 0], blas.limit_threads())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == ["4.0", "False"]


def test_video_without_sound_says_there_is_no_audio_stream(tmp_path: Path) -> None:
    """A camera recording without an audio track is named as such."""
    video = tmp_path / "silent_camera.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=16x16:d=1",
            str(video),
        ],
        check=True,
    )
    with pytest.raises(AudioError, match="no audio stream in file"):
        decode_file(video)


def test_wav_with_no_frames_has_no_samples(tmp_path: Path) -> None:
    """A valid WAV header with no frames is reported as holding no audio."""
    with pytest.raises(AudioError, match="no audio samples"):
        decode_file(write(tmp_path / "empty.wav", b"", 2, 16000))


def whole_file_ffmpeg(path: Path) -> npt.NDArray[np.float32]:
    """Decode the file in one ffmpeg run, as `decode_file` did before it streamed."""
    done = subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0"),
            *("-f", "s16le", "-ac", "1", "-ar", "16000", "-"),
        ],
        capture_output=True,
        check=True,
    )
    return audio.pcm16_to_float(done.stdout)


def test_ffmpeg_blocks_are_bounded_and_join_to_the_whole_file(
    validation_clip: Callable[[str, str], Path],
) -> None:
    """Blocks never exceed `block_samples` and together are exactly the one-run decode."""
    path = validation_clip("other", "librosa_data")
    whole = whole_file_ffmpeg(path)
    for size in (4000, 16001, 10**7):
        blocks = list(decode_blocks(path, 16000, size))
        assert max(block.size for block in blocks) <= size
        np.testing.assert_array_equal(np.concatenate(blocks), whole)


@pytest.mark.usefixtures("no_ffmpeg")
@pytest.mark.parametrize("rate", [16000, 44100])
def test_wav_fallback_reads_in_blocks(tmp_path: Path, rate: int) -> None:
    """Without ffmpeg a WAV is read a block at a time, with the same samples as all at once."""
    t = np.arange(rate * 5) / rate
    tone = np.round(np.sin(2 * np.pi * 440 * t) * 16000).astype("<i2")
    path = write(tmp_path / "x.wav", np.repeat(tone, 2).tobytes(), 2, rate, 2)
    whole = audio.resample(tone.astype(np.float32) / 32768, rate, 16000)
    for size in (1000, 16000, 10**6):
        blocks = list(decode_blocks(path, 16000, size))
        assert max(block.size for block in blocks) <= size + 16
        np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)


def test_closing_the_blocks_early_stops_ffmpeg(
    monkeypatch: pytest.MonkeyPatch, validation_clip: Callable[[str, str], Path]
) -> None:
    """A caller that stops after one block leaves no decoder running."""
    started: list[subprocess.Popen[bytes]] = []

    class Recorded(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    blocks = decode_blocks(validation_clip("other", "librosa_data"), 16000, 1600)
    assert next(blocks).size == 1600
    blocks.close()
    assert started and started[0].poll() is not None


def test_a_decoder_that_stalls_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder that produces nothing for the timeout is killed and the file reported."""
    hang = tmp_path / "ffmpeg"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setattr(audio, "ffmpeg_path", lambda: str(hang))
    clip = write(tmp_path / "x.wav", bytes(3200), 2, 16000)
    with pytest.raises(AudioError, match=r"decoding stalled: no audio for 0.5 s"):
        decode_file(clip, stall_timeout_s=0.5)
