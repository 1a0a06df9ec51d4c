"""Audio sources: cameras, stream URLs, files and microphones as async 16 kHz mono blocks.

Everything the detector hears comes through one small interface, `AudioSource`:
``start()``, an async iterator of float32 blocks, and ``stop()``. Two implementations
cover every input:

* `FFmpegSource` runs ffmpeg as an asyncio subprocess writing s16le 16 kHz mono to
  stdout. It reads camera streams (RTSP/HTTP/...), files and, with ``-f pulse`` or
  ``-f alsa``, the host microphone: the only microphone path inside the Home Assistant
  OS container, which has ffmpeg and PulseAudio but no PortAudio.
* `SoundDeviceSource` records a PortAudio input device through `sounddevice` where
  PortAudio exists; its callback runs on a PortAudio thread and hands blocks to the loop.

Failures surface as `SourceError` with a one-word ``reason`` (for repair issues and
translations) and a message naming the problem, credentials redacted. Nothing here blocks
the event loop: reads are bounded by timeouts, PortAudio calls run in an executor, and
``stop()`` always reaps the ffmpeg process and closes the PortAudio stream.
"""

from .ffmpeg import FFmpegSource
from .portaudio import (
    InputDevice,
    SoundDeviceSource,
    list_input_devices,
    portaudio_available,
)
from .protocol import REASONS, AudioSource, SourceError, SourceErrorReason, probe
from .urls import redact_url, strip_credentials, validate_url

__all__ = [
    "REASONS",
    "AudioSource",
    "FFmpegSource",
    "InputDevice",
    "SoundDeviceSource",
    "SourceError",
    "SourceErrorReason",
    "list_input_devices",
    "portaudio_available",
    "probe",
    "redact_url",
    "strip_credentials",
    "validate_url",
]
