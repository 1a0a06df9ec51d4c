"""Audio in: decode files to 16 kHz mono float32, resample, convert PCM, and check samples."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt

from .resample import resample

__all__ = [
    "AudioError",
    "decode_file",
    "ffmpeg_path",
    "pcm16_to_float",
    "resample",
    "sanitize",
    "to_mono",
]

type Floats = npt.NDArray[np.float32]

_DECODE_TIMEOUT_S = 300


class AudioError(Exception):
    """Audio could not be read or decoded; the message names the problem."""


def ffmpeg_path() -> str | None:
    """Location of the ffmpeg binary, or None when it is not installed."""
    return shutil.which("ffmpeg")


def pcm16_to_float(data: bytes) -> Floats:
    """Little-endian signed 16-bit PCM to float32 in [-1, 1); a trailing odd byte is ignored."""
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / np.float32(
        32768.0
    )


def to_mono(samples: npt.NDArray[np.floating], channels: int) -> Floats:
    """Average interleaved channels."""
    if channels == 1:
        return samples.astype(np.float32, copy=False)
    frames = samples[: samples.size - samples.size % channels].reshape(-1, channels)
    mono: Floats = frames.mean(axis=1, dtype=np.float32)
    return mono


def sanitize(samples: npt.ArrayLike) -> Floats:
    """Float32 in [-1, 1] with NaN and infinities replaced by silence (a glitch must not poison the model)."""
    audio = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(audio).all():
        audio = np.where(np.isfinite(audio), audio, np.float32(0.0))
    return np.clip(audio, -1.0, 1.0)


def _decode_wav(path: Path, sample_rate: int) -> Floats:
    """Standard-library fallback for PCM WAV when ffmpeg is not installed."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
            )
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise AudioError(
            f"not a PCM WAV file and ffmpeg is not installed ({err})"
        ) from err
    if width == 1:
        samples = (
            np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0
        ) / 128.0
    elif width == 2:
        samples = pcm16_to_float(data)
    elif width == 4:
        samples = np.frombuffer(data, dtype="<i4").astype(np.float32) / np.float32(
            2**31
        )
    else:
        raise AudioError(f"unsupported WAV sample width of {width} bytes")
    return resample(to_mono(samples, channels), rate, sample_rate)


def decode_file(path: str | Path, sample_rate: int = 16000) -> Floats:
    """Decode any file ffmpeg (or, without it, the `wave` module) reads to mono float32."""
    file = Path(path)
    if not file.is_file():
        raise AudioError("no such file" if not file.exists() else "not a regular file")
    if file.stat().st_size == 0:
        raise AudioError("empty file")
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        samples = _decode_wav(file, sample_rate)
    else:
        cmd = [
            ffmpeg,
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-i",
            str(file),
            "-map",
            "0:a:0",
        ]
        cmd += ["-f", "s16le", "-ac", "1", "-ar", str(sample_rate), "-"]
        try:
            result = subprocess.run(
                cmd, capture_output=True, timeout=_DECODE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise AudioError(
                f"decoding took longer than {_DECODE_TIMEOUT_S} s"
            ) from err
        if result.returncode != 0:
            lines = [
                line
                for line in result.stderr.decode(errors="replace").strip().splitlines()
                if "to ignore this"
                not in line.lower()  # ffmpeg's hints are not the reason
            ]
            reason = lines[-1] if lines else f"ffmpeg exited with {result.returncode}"
            if any("matches no streams" in line for line in lines):
                reason = "no audio stream in file"
            raise AudioError(f"cannot decode: {reason}")
        samples = pcm16_to_float(result.stdout)
    if samples.size == 0:
        raise AudioError("no audio samples in file")
    return sanitize(samples)
