"""What every audio source is: the `AudioSource` protocol, its `SourceError` and a probe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import math
from typing import Final, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from ..pcm import SAMPLE_RATE

__all__ = ["REASONS", "AudioSource", "SourceError", "SourceErrorReason", "probe"]

type Floats = npt.NDArray[np.float32]
type SourceErrorReason = Literal[
    "ffmpeg_not_found",
    "invalid_url",
    "path_not_allowed",
    "cannot_connect",
    "no_audio",
    "no_stream",
    "not_media",
    "device_not_found",
    "sound_server_missing",
    "portaudio_missing",
    "stream_ended",
]
REASONS: Final[tuple[SourceErrorReason, ...]] = get_args(SourceErrorReason.__value__)


class SourceError(Exception):
    """An audio source could not start or stopped delivering; `reason` says why in one word."""

    def __init__(self, reason: SourceErrorReason, message: str) -> None:
        """Keep the reason beside the human-readable message."""
        super().__init__(message)
        self.reason: SourceErrorReason = reason


class AudioSource(Protocol):
    """What the runtime consumes: float32 mono 16 kHz blocks from somewhere."""

    name: str
    """Where the audio comes from, for logs; credentials redacted."""

    async def start(self) -> None:
        """Open the source; raises SourceError."""

    def blocks(self) -> AsyncIterator[Floats]:
        """Yield blocks as they arrive; raises SourceError when the source fails or ends."""

    async def stop(self) -> None:
        """Release everything (process, thread, stream); idempotent."""


async def probe(
    source: AudioSource, seconds: float = 1.0, timeout_s: float = 10.0
) -> Floats:
    """Start the source, read about `seconds` of audio and stop it (always).

    Silence is fine (a quiet nursery); no samples at all is SourceError("no_audio"). A source that
    ends after giving some audio (a short file) returns what it gave.
    """
    wanted = max(1, math.ceil(seconds * SAMPLE_RATE))
    chunks: list[Floats] = []
    count = 0
    try:
        async with asyncio.timeout(timeout_s):
            await source.start()
            blocks = source.blocks()
            try:
                async for block in blocks:
                    chunks.append(block)
                    count += block.size
                    if count >= wanted:
                        break
            finally:
                if (aclose := getattr(blocks, "aclose", None)) is not None:
                    await aclose()
    except TimeoutError:
        if not count:
            raise SourceError(
                "no_audio", f"no audio from {source.name} within {timeout_s:g} s"
            ) from None
    except SourceError as err:
        if not count or err.reason != "stream_ended":
            raise
    finally:
        await source.stop()
    if not count:
        raise SourceError("no_audio", f"no audio from {source.name}")
    return np.concatenate(chunks)
