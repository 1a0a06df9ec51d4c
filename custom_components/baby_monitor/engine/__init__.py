"""Detection engine: audio in, cry and laughter probabilities and events out (no Home Assistant)."""

from .audio import AudioError, decode_file
from .detector import (
    DetectorConfig,
    Episode,
    SoundDetector,
    SoundEvent,
    detect_episodes,
)
from .frontend import FrontendConfig, StreamingFrontend, log_mel
from .model import DEFAULT_MODEL, LABELS, ModelError, ModelMetadata, load_metadata
from .pipeline import Listener, Scored, Window, WindowStream
from .runtime import BACKENDS, ModelRuntime, available_backends, load_runtime

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "LABELS",
    "AudioError",
    "DetectorConfig",
    "Episode",
    "FrontendConfig",
    "Listener",
    "ModelError",
    "ModelMetadata",
    "ModelRuntime",
    "Scored",
    "SoundDetector",
    "SoundEvent",
    "StreamingFrontend",
    "Window",
    "WindowStream",
    "available_backends",
    "decode_file",
    "detect_episodes",
    "load_metadata",
    "load_runtime",
    "log_mel",
]
