"""The engine's audio: 16 kHz mono, 16-bit PCM on the wire, float32 in [-1, 1] inside."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "PCM16_SCALE",
    "SAMPLE_RATE",
    "AudioError",
    "float_to_pcm16",
    "pcm16_to_float",
]

SAMPLE_RATE: Final = 16000
"""Samples per second of every signal the engine handles (sources, files, clips, the model)."""
PCM16_SCALE: Final = 32768.0
"""16-bit sample value of full scale: decoding divides by it and encoding multiplies by it, so a
sample survives the round trip unchanged (+1.0 saturates at 32767)."""


class AudioError(Exception):
    """Audio could not be read or decoded; the message names the problem."""


def pcm16_to_float(data: bytes) -> npt.NDArray[np.float32]:
    """Little-endian signed 16-bit PCM to float32 in [-1, 1); a trailing odd byte is ignored."""
    usable = len(data) - len(data) % 2
    samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32)
    samples *= np.float32(1.0 / PCM16_SCALE)  # a power of two: exact, as dividing is
    return samples


def float_to_pcm16(audio: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Float audio to 16-bit samples, rounded, values beyond [-1, 1] clipped to full scale."""
    values = np.asarray(audio)
    # float32 times a power of two is exact in float32: no float64 copy is needed for it
    if values.dtype != np.float32:
        values = values.astype(np.float64)
    scaled = np.rint(values * PCM16_SCALE)
    np.clip(scaled, -32768, 32767, out=scaled)
    samples: npt.NDArray[np.int16] = scaled.astype(np.int16)
    return samples
