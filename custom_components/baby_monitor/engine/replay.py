"""Tells a finite recording that a reconnect plays again from its start from new audio.

A file behind a stream URL ends, the source reconnects, and the file starts over: without a
check every pass would be heard as new cries. A live stream never opens twice with the same
samples, while a decoded file does, bit for bit; so each connection's first `OPENING_S` of
sound is held back until its digest can be compared with the previous connection's. Digital
silence cannot start a sound and says nothing (a muted camera opens alike every time): it
passes at once, and only its length before the first sound goes into the digest.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt

from .pcm import SAMPLE_RATE

__all__ = ["OPENING_S", "SILENT_CLEAR_S", "OpeningCheck"]

type Floats = npt.NDArray[np.float32]

OPENING_S: Final = 0.5
"""Seconds of sound at the start of a connection that identify what it plays."""
SILENT_CLEAR_S: Final = 2.0
"""Digital silence this long clears a connection without a decision: a muted camera or a
quiet room that came back is live, whatever played before."""
SILENT_PEAK: Final = 1e-4
"""Samples quieter than this are digital silence."""


class OpeningCheck:
    """Holds back one connection's opening, then says whether it replays the previous one."""

    def __init__(
        self,
        previous: bytes | None,
        *,
        seconds: float = OPENING_S,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        """Compare against `previous`, the digest of the last connection's opening (or None)."""
        self.previous: Final = previous
        self.digest: bytes | None = None
        """This connection's opening digest, once decided (None if it ended before any sound)."""
        self.decided = False
        self.replayed = False
        """Whether the opening equals the previous connection's: the same recording again."""
        self._wanted = max(1, round(seconds * sample_rate))
        self._clear_after = max(1, round(SILENT_CLEAR_S * sample_rate))
        self._held: list[Floats] = []
        self._count = 0
        self._sound_at: int | None = None

    @property
    def cleared(self) -> bool:
        """Whether the connection counts as live: new sound, or long digital silence so far."""
        if self.decided:
            return not self.replayed
        return self._sound_at is None and self._count >= self._clear_after

    def push(self, block: Floats) -> list[Floats]:
        """Take a block; return the blocks that may go on to detection (none while holding)."""
        if self.decided:
            return [] if self.replayed else [block]
        self._count += block.size
        if self._sound_at is None:
            loud = np.flatnonzero(np.abs(block) >= SILENT_PEAK)
            if not loud.size:
                return [block]
            self._sound_at = self._count - block.size + int(loud[0])
        self._held.append(block)
        return self.flush() if self._count >= self._sound_at + self._wanted else []

    def flush(self) -> list[Floats]:
        """Decide on what is held (the source ended early) and release it, unless replayed."""
        if self.decided:
            return []
        self.decided = True
        held, self._held = self._held, []
        if self._sound_at is not None:
            sound = np.concatenate(held)
            sound = sound[sound.size - (self._count - self._sound_at) :][: self._wanted]
            digest = hashlib.blake2b(sound.tobytes(), digest_size=16)
            digest.update(self._sound_at.to_bytes(8, "little"))
            self.digest = digest.digest()
            self.replayed = self.digest == self.previous
        return [] if self.replayed else held
