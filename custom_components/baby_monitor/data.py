"""What a loaded entry holds: its runtime, its clip recorder and its learning, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .clips import ClipRecorder
from .learning import RoomLearning
from .runtime import BabyMonitorRuntime


@dataclass(slots=True)
class BabyMonitorData:
    """The entry's runtime data: the listening runtime, the recorder fed by its hooks and what
    the room has learnt."""

    runtime: BabyMonitorRuntime
    clips: ClipRecorder
    learning: RoomLearning


type BabyMonitorConfigEntry = ConfigEntry[BabyMonitorData]
