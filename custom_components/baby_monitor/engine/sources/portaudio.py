"""`SoundDeviceSource`: a PortAudio input device recorded through sounddevice, where PortAudio exists."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
import importlib
import logging
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..audio import sanitize, to_mono
from ..pcm import SAMPLE_RATE
from ..resample import StreamingResampler
from .protocol import SourceError

__all__ = [
    "InputDevice",
    "SoundDeviceSource",
    "list_input_devices",
    "portaudio_available",
]

_LOGGER = logging.getLogger(__name__)

type Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class InputDevice:
    """A PortAudio input device as `list_input_devices` reports it."""

    index: int
    name: str
    channels: int
    default_samplerate: float
    is_default: bool


def _import_sounddevice() -> Any:
    """Import sounddevice; SourceError("portaudio_missing") where it or PortAudio is absent."""
    try:
        return importlib.import_module("sounddevice")
    except (
        OSError
    ) as err:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise SourceError(
            "portaudio_missing",
            f"PortAudio is not available ({err}); use the ffmpeg ALSA/PulseAudio microphone instead",
        ) from err
    except ImportError as err:
        raise SourceError(
            "portaudio_missing", f"the sounddevice package is not installed ({err})"
        ) from err


def portaudio_available() -> bool:
    """Tell whether sounddevice imports and PortAudio loads (not inside Home Assistant OS)."""
    try:
        _import_sounddevice()
    except SourceError:
        return False
    return True


def list_input_devices() -> list[InputDevice]:
    """PortAudio's input devices; [] where PortAudio is missing. Blocking: run it in an executor."""
    try:
        sd = _import_sounddevice()
    except SourceError:
        return []
    try:
        devices = list(sd.query_devices())
    except sd.PortAudioError as err:
        _LOGGER.debug("Cannot list audio devices: %s", err)
        return []
    try:
        default_index = int(sd.query_devices(kind="input")["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        default_index = -1
    return [
        InputDevice(
            index=int(info.get("index", position)),
            name=str(info["name"]),
            channels=int(info["max_input_channels"]),
            default_samplerate=float(info["default_samplerate"]),
            is_default=int(info.get("index", position)) == default_index,
        )
        for position, info in enumerate(devices)
        if int(info["max_input_channels"]) > 0
    ]


_NON_FATAL_FLAGS: Final = frozenset({"input_overflow"})
_CALLBACK_FLAGS: Final = (
    "input_underflow",
    "input_overflow",
    "output_underflow",
    "output_overflow",
    "priming_output",
)


class SoundDeviceSource:
    """A PortAudio input device recorded through sounddevice (not available on HA OS)."""

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        block_s: float = 0.1,
        max_queue_s: float = 5.0,
    ) -> None:
        """Describe the source (None: the default input); nothing opens until `start`."""
        if sample_rate <= 0 or block_s <= 0 or max_queue_s <= 0:
            raise ValueError("sample_rate, block_s and max_queue_s must be positive")
        self.device: Final = device
        self.sample_rate: Final = sample_rate
        self.block_s: Final = block_s
        self.name = f"sounddevice:{'default' if device is None else device}"
        self.dropped_blocks = 0
        """Blocks thrown away (oldest first) because the consumer fell more than max_queue_s behind."""
        self.stream_rate: int | None = None
        self.stream_channels: int | None = None
        self._queue: deque[Floats] = deque(maxlen=max(1, round(max_queue_s / block_s)))
        self._wakeup = asyncio.Event()
        self._error: SourceError | None = None
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resampler: StreamingResampler | None = None
        self._stopping = False

    async def start(self) -> None:
        """Open and start the input stream (in an executor: PortAudio calls block)."""
        if self._stream is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._error = None
        self._queue.clear()
        opening = self._loop.run_in_executor(None, self._open)
        try:
            # Shielded: if we are cancelled, the stream still opens and must be closed.
            self._stream = await asyncio.shield(opening)
        except asyncio.CancelledError:
            self._stopping = True
            opening.add_done_callback(self._close_abandoned)
            raise
        _LOGGER.debug(
            "Opened %s at %s Hz, %s channel(s)",
            self.name,
            self.stream_rate,
            self.stream_channels,
        )

    def _close_abandoned(self, opening: asyncio.Future[Any]) -> None:
        """Close a stream whose start() was cancelled while it was opening."""
        if opening.cancelled() or opening.exception() is not None or self._loop is None:
            return
        self._loop.run_in_executor(None, _close_stream, opening.result())

    def _open(self) -> Any:
        """Find the device, pick settings it supports and start a stream (executor thread)."""
        sd = _import_sounddevice()
        wanted = "the default input" if self.device is None else repr(self.device)
        try:
            info = sd.query_devices(self.device, kind="input")
        except (ValueError, sd.PortAudioError) as err:
            raise SourceError(
                "device_not_found", f"no audio input device {wanted}: {err}"
            ) from err
        index = info.get("index", self.device)
        rate, channels = self._settings(sd, index, info)
        self.stream_rate, self.stream_channels = rate, channels
        self._resampler = (
            None
            if rate == self.sample_rate
            else StreamingResampler(rate, self.sample_rate)
        )
        try:
            stream = sd.InputStream(
                device=index,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                blocksize=max(1, round(rate * self.block_s)),
                callback=self._callback,
                finished_callback=self._finished,
            )
        except (ValueError, sd.PortAudioError) as err:
            raise SourceError(
                "device_not_found", f"cannot open audio input {wanted}: {err}"
            ) from err
        try:
            stream.start()
        except sd.PortAudioError as err:
            stream.close()
            raise SourceError(
                "device_not_found", f"cannot start audio input {wanted}: {err}"
            ) from err
        return stream

    def _settings(self, sd: Any, index: Any, info: dict[str, Any]) -> tuple[int, int]:
        """16 kHz mono when the device takes it, else its default rate (mono, else its channels)."""
        default_rate = round(float(info["default_samplerate"]))
        max_channels = int(info["max_input_channels"])
        candidates = dict.fromkeys(
            [(self.sample_rate, 1), (default_rate, 1), (default_rate, max_channels)]
        )
        problem: Exception | None = None
        for rate, channels in candidates:
            try:
                sd.check_input_settings(
                    device=index, channels=channels, dtype="float32", samplerate=rate
                )
            except (ValueError, sd.PortAudioError) as err:
                problem = err
                continue
            return rate, channels
        raise SourceError(
            "device_not_found",
            f"{self.name} supports neither 16 kHz mono nor its defaults: {problem}",
        )

    def _callback(
        self, indata: npt.NDArray[np.float32], frames: int, time: Any, status: Any
    ) -> None:
        """PortAudio thread: convert the block and hand it to the event loop."""
        loop = self._loop
        if loop is None or self._stopping:
            return
        try:
            if status:
                flags = {
                    flag for flag in _CALLBACK_FLAGS if getattr(status, flag, False)
                }
                if flags - _NON_FATAL_FLAGS or not flags:
                    error = SourceError(
                        "stream_ended", f"{self.name} reported an error: {status}"
                    )
                    loop.call_soon_threadsafe(self._fail, error)
                    return
            samples: Floats = np.array(indata, dtype=np.float32).reshape(-1)
            samples = to_mono(samples, int(self.stream_channels or 1))
            if self._resampler is not None:
                samples = self._resampler.process(samples)
            if samples.size:
                loop.call_soon_threadsafe(self._put, sanitize(samples))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            return
        except Exception as err:  # noqa: BLE001 - never raise into PortAudio's thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(
                    self._fail,
                    SourceError("stream_ended", f"{self.name} failed: {err!r}"),
                )

    def _finished(self) -> None:
        """PortAudio thread: the stream became inactive; an error unless we stopped it."""
        if self._stopping or self._loop is None:
            return
        error = SourceError("stream_ended", f"{self.name} stopped delivering audio")
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._fail, error)

    def _put(self, samples: Floats) -> None:
        """Loop thread: queue a block, dropping the oldest when the queue is full."""
        if self._stopping or self._error is not None:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped_blocks += 1
            if self.dropped_blocks == 1 or self.dropped_blocks % 100 == 0:
                _LOGGER.debug(
                    "%s: consumer behind, %d blocks dropped",
                    self.name,
                    self.dropped_blocks,
                )
        self._queue.append(samples)
        self._wakeup.set()

    def _fail(self, error: SourceError) -> None:
        """Loop thread: remember the first failure and wake the reader."""
        if not self._stopping and self._error is None:
            _LOGGER.debug("%s", error)
            self._error = error
            self._wakeup.set()

    async def blocks(self) -> AsyncIterator[Floats]:
        """Yield queued blocks in order; raises SourceError once the device fails."""
        if self._stream is None and not self._stopping:
            raise RuntimeError(f"{self.name} is not started")
        while True:
            while self._queue and not self._stopping:
                yield self._queue.popleft()
            if self._error is not None:
                raise self._error
            if self._stopping:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def stop(self) -> None:
        """Stop and close the stream (in an executor); safe to call any time, twice."""
        self._stopping = True
        self._wakeup.set()
        stream, self._stream = self._stream, None
        self._queue.clear()
        if stream is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, _close_stream, stream
            )
            _LOGGER.debug("Closed %s", self.name)


def _close_stream(stream: Any) -> None:
    """Stop and close a sounddevice stream, whatever state it is in (executor thread)."""
    try:
        stream.stop()
    except Exception as err:  # noqa: BLE001 - closing must still happen
        _LOGGER.debug("Stopping the audio stream failed: %s", err)
    finally:
        stream.close()
