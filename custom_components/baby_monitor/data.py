"""What a loaded entry holds: its runtime, its clip recorder and its learning, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .clips import ClipRecorder
from .learning import RoomLearning
from .runtime import BabyMonitorRuntime


@dataclass(slots=True)
class BabyMonitorData:
    """The entry's runtime data: runtime, clip recorder and learning.

    The recorder is fed by the runtime's hooks; the learning swaps the room's head into it.
    """

    runtime: BabyMonitorRuntime
    clips: ClipRecorder
    learning: RoomLearning


type BabyMonitorConfigEntry = ConfigEntry[BabyMonitorData]
