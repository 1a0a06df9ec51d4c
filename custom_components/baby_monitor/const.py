"""Constants for the Baby Monitor integration."""

from __future__ import annotations

import logging
from typing import Final

from .engine.model import LABELS

DOMAIN: Final = "baby_monitor"
LOGGER = logging.getLogger(__package__)

EVENT_BABY_MONITOR: Final = "baby_monitor_event"
"""Bus event fired for every sound that starts or stops (device_id, type, confidence, duration,
episode)."""
EVENT_CLIP_SAVED: Final = "baby_monitor_clip_saved"
"""Bus event fired after a clip is written (device_id, entry_id, sound, path, media_content_id, url, duration, episode)."""

# Entry data
CONF_SOURCE_TYPE: Final = "source_type"
CONF_CAMERA: Final = "camera"
CONF_URL: Final = "url"
CONF_DEVICE: Final = "device"
SOURCE_CAMERA: Final = "camera"
SOURCE_URL: Final = "url"
SOURCE_MICROPHONE: Final = "microphone"
SOURCE_TYPES: Final = (SOURCE_CAMERA, SOURCE_URL, SOURCE_MICROPHONE)

# Microphone devices are stored as "<driver>:<device>"
DRIVER_PULSE: Final = "pulse"
DRIVER_ALSA: Final = "alsa"
DRIVER_SOUNDDEVICE: Final = "sounddevice"
FFMPEG_MICROPHONES: Final = ("pulse:default", "alsa:default")

# Options
CONF_CRY_THRESHOLD: Final = "cry_threshold"
CONF_LAUGHTER_THRESHOLD: Final = "laughter_threshold"
CONF_CONFIRM_S: Final = "confirm_time"
CONF_HOLD_S: Final = "hold_time"
CONF_SOUNDS: Final = "sounds"
CONF_HOP_S: Final = "hop"
CONF_BACKEND: Final = "backend"
CONF_SAVE_CLIPS: Final = "save_clips"
CONF_CLIP_RETENTION_DAYS: Final = "clip_retention_days"
CONF_CLIP_MAX_SIZE_MB: Final = "clip_max_size_mb"
CONF_KEEP_CLIPS_ON_REMOVE: Final = "keep_clips_on_remove"

LABEL_CRY: Final = "cry"
LABEL_LAUGHTER: Final = "laughter"
SOUNDS: Final = LABELS
"""Sounds the options offer: the shipped model's labels (LABEL_CRY, LABEL_LAUGHTER name them)."""
SOUND_WORDS: Final = {LABEL_CRY: "crying", LABEL_LAUGHTER: "laughter"}
"""How a message names a sound ("heard nothing like crying"), not its raw key."""
THRESHOLD_OPTIONS: Final = {
    LABEL_CRY: CONF_CRY_THRESHOLD,
    LABEL_LAUGHTER: CONF_LAUGHTER_THRESHOLD,
}
BACKEND_AUTO: Final = "auto"

DEFAULT_SAVE_CLIPS: Final = False
DEFAULT_CLIP_RETENTION_DAYS: Final = 7
DEFAULT_CLIP_MAX_SIZE_MB: Final = 500
DEFAULT_KEEP_CLIPS_ON_REMOVE: Final = True
FALLBACK_THRESHOLD: Final = 0.9
"""Threshold offered in the options when the model's metadata cannot be read."""
THRESHOLD_RANGE: Final = (0.05, 0.99)
"""Lowest and highest threshold the options' slider offers."""
V1_THRESHOLDS: Final = {LABEL_CRY: 0.9, LABEL_LAUGHTER: 0.5797354578971864}
"""Calibrated thresholds of the model (2026.12.01) that version-1 entries were set against."""
V1_HOP_S: Final = 0.5
"""Default seconds between windows for that model; the backbone's patches come every second."""

# Issue ids (suffixed with the entry id)
ISSUE_SOURCE_DOWN: Final = "source_down"
ISSUE_MODEL_ERROR: Final = "model_error"
ISSUE_CLIPS_UNWRITABLE: Final = "clips_unwritable"
ISSUE_SCORING_FAILED: Final = "scoring_failed"
ISSUE_THRESHOLDS_MIGRATED: Final = "thresholds_migrated"
ISSUE_LEARNT_RESET: Final = "learnt_reset"

SOUND_ENTITY_KEYS: Final = {
    LABEL_CRY: (
        "crying",
        "cry_probability",
        "cry_episodes_today",
        "crying_time_today",
        "last_cry",
        "not_a_cry",
    ),
    LABEL_LAUGHTER: ("laughing", "laughter_probability", "laughter_episodes_today"),
}
"""Entity keys that exist only while their sound is detected."""
