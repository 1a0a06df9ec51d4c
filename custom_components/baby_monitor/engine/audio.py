"""Audio in: decode files to 16 kHz mono float32, resample, convert PCM, and check samples."""

from __future__ import annotations

from collections.abc import Generator
import contextlib
from pathlib import Path
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from typing import IO, Final
import wave

import numpy as np
import numpy.typing as npt

from .pcm import SAMPLE_RATE, AudioError, pcm16_to_float
from .resample import StreamingResampler, resample

__all__ = [
    "BLOCK_SAMPLES",
    "STALL_TIMEOUT_S",
    "AudioError",
    "decode_blocks",
    "decode_file",
    "ffmpeg_path",
    "pcm16_to_float",
    "resample",
    "sanitize",
    "to_mono",
]

type Floats = npt.NDArray[np.float32]

BLOCK_SAMPLES: Final = 10 * SAMPLE_RATE
"""Samples per block `decode_blocks` yields by default (10 s, 640 kB as float32)."""
STALL_TIMEOUT_S: Final = 300
"""Seconds the decoder may go without producing audio before it is stopped (default)."""
_STDERR_TAIL_BYTES: Final = 16_384
"""Bytes at the end of ffmpeg's error output searched for the reason it failed."""


def ffmpeg_path() -> str | None:
    """Location of the ffmpeg binary, or None when it is not installed."""
    return shutil.which("ffmpeg")


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


def _pcm_to_float(data: bytes, width: int) -> Floats:
    """Interleaved 8-bit unsigned, 16- or 32-bit signed little-endian PCM to float32."""
    if width == 1:
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return pcm16_to_float(data)
    return np.frombuffer(data, dtype="<i4").astype(np.float32) / np.float32(2**31)


def _wav_blocks(path: Path, sample_rate: int, block_samples: int) -> Generator[Floats]:
    """Standard-library fallback for PCM WAV when ffmpeg is not installed, read block by block."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
            )
            if width not in (1, 2, 4):
                raise AudioError(f"unsupported WAV sample width of {width} bytes")
            resampler = StreamingResampler(rate, sample_rate)
            frames = max(1, block_samples * rate // sample_rate)
            while data := wav.readframes(frames):
                yield resampler.process(to_mono(_pcm_to_float(data, width), channels))
            yield resampler.flush()
    except (wave.Error, EOFError) as err:
        raise AudioError(
            f"not a PCM WAV file and ffmpeg is not installed ({err})"
        ) from err


def _ffmpeg_reason(stderr: IO[bytes], returncode: int) -> str:
    """Why ffmpeg failed, from the end of its error output."""
    stderr.seek(0, 2)
    stderr.seek(max(0, stderr.tell() - _STDERR_TAIL_BYTES))
    lines = [
        line
        for line in stderr.read().decode(errors="replace").strip().splitlines()
        if "to ignore this" not in line.lower()  # ffmpeg's hints are not the reason
    ]
    if any("matches no streams" in line for line in lines):
        return "no audio stream in file"
    return lines[-1] if lines else f"ffmpeg exited with {returncode}"


def _ffmpeg_blocks(
    ffmpeg: str,
    path: Path,
    sample_rate: int,
    block_samples: int,
    stall_timeout_s: float,
) -> Generator[Floats]:
    """Decode with ffmpeg to s16le on a pipe, `block_samples` at a time.

    A thread reads the pipe into a queue of two blocks, so memory does not grow with the file
    and a decoder that produces nothing for `stall_timeout_s` seconds is stopped.
    """
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path)]
    cmd += ["-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", str(sample_rate), "-"]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        pipe = process.stdout
        assert pipe is not None  # stdout=PIPE
        chunks: queue.Queue[bytes] = queue.Queue(maxsize=2)

        def read() -> None:
            with pipe:
                while chunk := pipe.read(2 * block_samples):
                    chunks.put(chunk)
            chunks.put(b"")

        reader = threading.Thread(target=read, name="ffmpeg-decode", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=stall_timeout_s)
                except queue.Empty as err:
                    raise AudioError(
                        f"decoding stalled: no audio for {stall_timeout_s} s"
                    ) from err
                if not chunk:
                    break
                yield pcm16_to_float(chunk)
            if (returncode := process.wait()) != 0:
                raise AudioError(f"cannot decode: {_ffmpeg_reason(stderr, returncode)}")
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            # Make room for a reader blocked on the full queue, so it reaches the pipe's end.
            deadline = time.monotonic() + 1.0
            while reader.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.05)


def decode_blocks(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    block_samples: int = BLOCK_SAMPLES,
    stall_timeout_s: float = STALL_TIMEOUT_S,
) -> Generator[Floats]:
    """Decode any file ffmpeg (or, without it, the `wave` module) reads, block by block.

    Yields mono float32 blocks at `sample_rate` of about `block_samples` samples (the last
    shorter), so memory stays flat however long the file. Raises AudioError on the first
    `next()` for a missing or empty file, when ffmpeg produces nothing for `stall_timeout_s`
    seconds, and after the last block when the decoder failed or the file held no audio;
    closing the iterator early stops the decoder.
    """
    file = Path(path)
    if not file.is_file():
        raise AudioError("no such file" if not file.exists() else "not a regular file")
    if file.stat().st_size == 0:
        raise AudioError("empty file")
    if block_samples <= 0:
        raise ValueError(f"block_samples must be positive, got {block_samples}")
    ffmpeg = ffmpeg_path()
    blocks = (
        _wav_blocks(file, sample_rate, block_samples)
        if ffmpeg is None
        else _ffmpeg_blocks(ffmpeg, file, sample_rate, block_samples, stall_timeout_s)
    )
    total = 0
    with contextlib.closing(blocks):
        for block in blocks:
            if block.size:
                total += block.size
                yield sanitize(block)
    if total == 0:
        raise AudioError("no audio samples in file")


def decode_file(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    stall_timeout_s: float = STALL_TIMEOUT_S,
) -> Floats:
    """Decode a whole file to one mono float32 array (`decode_blocks` for long recordings)."""
    return np.concatenate(
        list(decode_blocks(path, sample_rate, stall_timeout_s=stall_timeout_s))
    )
