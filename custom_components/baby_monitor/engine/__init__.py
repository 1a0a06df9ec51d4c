"""Detection engine: audio in, cry and laughter probabilities and events out (no Home Assistant).

One folder, two names. HACS installs only `custom_components/baby_monitor/`, so the engine's files
live here and the integration imports them relatively (`from .engine import ...`); the project's
editable install (`package-dir` in pyproject.toml) also makes this folder the top-level package
`baby_monitor_engine`, which the `baby-monitor` command, `models/` and `e2e/` import without loading
Home Assistant. Inside the engine every import is relative, so either name works without a shim
and without a second copy. Within one process use one name: the same class under both names is
two classes (an exception raised under one is not caught under the other).
"""

from .audio import AudioError, decode_file
from .backends import BACKENDS, ModelRuntime, available_backends, load_runtime
from .detector import (
    DetectorConfig,
    Episode,
    SoundDetector,
    SoundEvent,
    detect_episodes,
)
from .frontend import FrontendConfig, StreamingFrontend, log_mel
from .model import DEFAULT_MODEL, LABELS, ModelError, ModelMetadata, load_metadata
from .pipeline import Scored, SoundPipeline, Window, WindowStream

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "LABELS",
    "AudioError",
    "DetectorConfig",
    "Episode",
    "FrontendConfig",
    "SoundPipeline",
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
