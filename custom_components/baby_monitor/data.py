"""What a loaded entry holds: its runtime and its clip recorder, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .clips import ClipRecorder
from .runtime import BabyMonitorRuntime


@dataclass(slots=True)
class BabyMonitorData:
    """The entry's runtime data: the listening runtime and the recorder fed by its hooks."""

    runtime: BabyMonitorRuntime
    clips: ClipRecorder


type BabyMonitorConfigEntry = ConfigEntry[BabyMonitorData]
