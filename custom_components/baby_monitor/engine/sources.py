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

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
import contextlib
from dataclasses import dataclass
import importlib
import logging
import math
import os
from pathlib import Path
import re
import shutil
from typing import Any, Final, Literal, Protocol, get_args
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from .audio import ffmpeg_path, pcm16_to_float, sanitize, to_mono
from .resample import StreamingResampler

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

_LOGGER = logging.getLogger(__name__)

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

SAMPLE_RATE: Final = 16000
NETWORK_SCHEMES: Final = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt"}
)
"""URL schemes a stream source may use; scheme-less strings and file: URLs are file paths."""
STOP_TIMEOUT_S: Final = 2.0
"""How long ffmpeg gets to exit after SIGTERM (and again after SIGKILL) before we give up."""
STDERR_LINES: Final = 20
"""ffmpeg stderr lines kept to explain a failure."""
STDERR_LINE_CHARS: Final = 500
"""Longest stderr line kept (a line without newline is cut there)."""
ANALYZE_US: Final = 1_000_000
"""How much of an input ffmpeg analyses before it decodes (µs): its default, 5 s, made opening a
live MPEG-TS or MP3 stream take 5-8 s where the flow promises about one."""
PACE_LEAD_S: Final = 10.0
"""How far a paced source may read ahead of the wall clock: a live stream's burst on connect
(Icecast sends a few seconds at once) passes unhindered, while a finite file served over HTTP
is read at real speed after it, not in a blink."""

_SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO_RE: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@"
)
_SECRET_QUERY_RE: Final = re.compile(
    r"(?P<key>[?&;](?:user|username|usr|login|password|passwd|pass|pwd|token|access_token"
    r"|auth|authtoken|key|apikey|api_key|secret|signature|sig)=)[^&;#\s]*",
    re.IGNORECASE,
)
PROTOCOLS: Final[dict[str, str]] = {
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtmp": "rtmp,rtmps,rtmpt,rtmpts,tcp,tls",
    "rtmps": "rtmp,rtmps,rtmpt,rtmpts,tcp,tls",
    "http": "http,https,tcp,tls,crypto,httpproxy",
    "https": "http,https,tcp,tls,crypto,httpproxy",
    "udp": "udp,rtp",
    "tcp": "tcp",
    "srt": "srt",
    "file": "file",
}
"""ffmpeg protocols each kind of input may use (`-protocol_whitelist`): a stream cannot reach
local files or other protocols through a playlist or a redirect, nor a file path name
another protocol (subfile, concat, pipe)."""
_URL_RE: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"<>]*)"
)
_URL_TRAILERS: Final = ".,;:)]'"
_AUTHORITY_RE: Final = re.compile(r"(?:[A-Za-z0-9._~%-]*|\[[0-9A-Fa-f:.]+\])(?::\d*)?")
_LOG_PREFIX_RE: Final = re.compile(r"^\[[^\]]+ @ 0x[0-9a-fA-F]+\]\s*")
_FFMPEG_HINTS: Final = ("to ignore this", "did you mean")
# Lower-case fragments of ffmpeg's error lines, checked in this order.
_STDERR_REASONS: Final[tuple[tuple[SourceErrorReason, tuple[str, ...]], ...]] = (
    ("invalid_url", ("protocol not found", "not on whitelist")),
    ("not_media", ("invalid data found",)),
    (
        "no_audio",
        (
            "does not contain any stream",
            "matches no streams",
            "could not find codec parameters",
        ),
    ),
    (
        "cannot_connect",
        (
            "connection refused",
            "connection timed out",
            "timed out",
            "name or service not known",
            "failed to resolve",
            "temporary failure in name resolution",
            "no route to host",
            "network is unreachable",
            "host is unreachable",
            "connection reset",
            "server returned",
            "http error",
            "unauthorized",
            "forbidden",
            "not found",
            "no such file or directory",
            "no such device",
            "permission denied",
            "cannot open audio device",
            "no such process",
        ),
    ),
    ("cannot_connect", ("end of file", "input/output error")),
)
_DEVICE_MISSING: Final = ("cannot open audio device", "no such device")
# ffmpeg's pulse input without a PulseAudio server: "default: No such process" (or refused).
_SERVER_MISSING: Final = ("no such process", "connection refused")


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


def strip_credentials(url: str) -> str:
    """Replace a URL's user name, password and well-known secret query values by ***.

    Only for identifying a source (entries' unique ids keep this form); whatever is shown to a
    person goes through `redact_url`, which keeps far less.
    """

    def _userinfo(match: re.Match[str]) -> str:
        hidden = "***:***" if ":" in match["userinfo"] else "***"
        return f"{match['scheme']}{hidden}@"

    url = _USERINFO_RE.sub(_userinfo, url)
    return _SECRET_QUERY_RE.sub(lambda match: f"{match['key']}***", url)


def _origin(scheme: str, rest: str) -> str:
    """`scheme://host:port` of a URL's part after `://`; *** when no host can be told."""
    authority = re.split(r"[?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    authority = authority.split("/", 1)[0]
    if authority and not _AUTHORITY_RE.fullmatch(authority):
        authority = "***"
    return f"{scheme.lower()}://{authority}"


def redact_url(url: str) -> str:
    """Show a stream URL as `scheme://host:port` only; a file path as it is.

    User names, passwords, paths, queries and fragments can all carry secrets (SRT
    passphrases, path tokens of NVRs and UniFi Protect, signed URLs), so none is shown.
    """
    match = _URL_RE.match(url)
    if match is None or match["scheme"].lower() == "file":
        return url
    return _origin(match["scheme"], match["rest"])


def _redact_text(text: str) -> str:
    """Reduce every URL in `text` (an ffmpeg message, say) to `scheme://host:port`."""

    def _shown(match: re.Match[str]) -> str:
        if match["scheme"].lower() == "file":
            return match[0]
        rest = match["rest"]
        kept = rest.rstrip(_URL_TRAILERS)
        return _origin(match["scheme"], kept) + rest[len(kept) :]

    return _URL_RE.sub(_shown, text)


def _invalid(message: str) -> SourceError:
    return SourceError("invalid_url", message)


def validate_url(url: str) -> None:
    """Raise SourceError("invalid_url") unless url is a stream URL ffmpeg may open, or a file path."""
    if not isinstance(url, str) or not url.strip():
        raise _invalid("no URL given")
    shown = redact_url(url)
    if url != url.strip():
        raise _invalid(f"URL has leading or trailing spaces: {shown!r}")
    if _CONTROL_RE.search(url):
        raise _invalid(f"URL contains control characters: {shown!r}")
    if url.startswith("-"):
        raise _invalid(f"not a URL or file path: {shown!r}")
    match = _SCHEME_RE.match(url)
    if match is None:
        return  # a file path
    scheme = match.group(1).lower()
    if scheme == "file":
        if not url[len("file:") :].lstrip("/"):
            raise _invalid(f"no file path in {shown!r}")
        return
    if scheme not in NETWORK_SCHEMES:
        allowed = ", ".join(sorted(NETWORK_SCHEMES))
        raise _invalid(
            f"unsupported URL scheme {scheme!r} in {shown!r} (use {allowed} or a file path)"
        )
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError as err:
        raise _invalid(f"malformed URL {shown!r}: {err}") from err
    if not url[len(match.group(0)) :].startswith("//"):
        raise _invalid(f"no host in URL {shown!r}")
    if not host and not (
        scheme == "udp" and _port
    ):  # udp://@:1234 listens on all interfaces
        raise _invalid(f"no host in URL {shown!r}")
    if " " in parts.netloc:
        raise _invalid(f"spaces in the host part of {shown!r}")


def _validate_device(device: str) -> None:
    """Raise SourceError("device_not_found") for an ALSA/PulseAudio device name ffmpeg cannot take."""
    if not device.strip() or _CONTROL_RE.search(device) or device.startswith("-"):
        raise SourceError("device_not_found", f"invalid audio device name {device!r}")


def _drop_prefixes(line: str, *prefixes: str) -> str:
    """Strip the "[tcp @ 0x...]" and "<url>: " prefixes from an ffmpeg stderr line."""
    line = _LOG_PREFIX_RE.sub("", line)
    for prefix in prefixes:
        if prefix and line.startswith(f"{prefix}: ") and len(line) > len(prefix) + 2:
            return line[len(prefix) + 2 :]
    return line


class FFmpegSource:
    """Audio of a camera stream, URL, file or ALSA/PulseAudio device, decoded by ffmpeg."""

    def __init__(
        self,
        url: str,
        *,
        input_args: Sequence[str] = (),
        sample_rate: int = SAMPLE_RATE,
        block_s: float = 0.1,
        read_timeout_s: float = 10.0,
        ffmpeg: str | None = None,
        realtime: bool = False,
        pace_lead_s: float | None = None,
    ) -> None:
        """Describe the source; nothing runs until `start`.

        `realtime` has ffmpeg play a local file at real speed; `pace_lead_s` holds any input to
        real speed once it is that many seconds ahead of the wall clock (None: as fast as it
        comes), so that a finite file behind a stream URL is heard as it would be played.
        """
        if sample_rate <= 0 or block_s <= 0 or read_timeout_s <= 0:
            raise ValueError("sample_rate, block_s and read_timeout_s must be positive")
        if pace_lead_s is not None and pace_lead_s < 0:
            raise ValueError("pace_lead_s must not be negative")
        self.url: Final = url
        self.input_args: Final = tuple(input_args)
        self.sample_rate: Final = sample_rate
        self.block_s: Final = block_s
        self.read_timeout_s: Final = read_timeout_s
        self.realtime: Final = realtime
        self.pace_lead_s: Final = pace_lead_s
        self.name = redact_url(url)
        self._ffmpeg = ffmpeg
        self._device: str | None = None
        self._block_bytes = 2 * max(1, round(sample_rate * block_s))
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._bytes_read = 0
        self._stopping = False
        self._read_idle = asyncio.Event()
        self._read_idle.set()
        self._terminate_lock = asyncio.Lock()

    @classmethod
    def microphone(
        cls,
        device: str = "default",
        driver: Literal["pulse", "alsa"] = "pulse",
        **kw: Any,
    ) -> FFmpegSource:
        """Read the host's PulseAudio or ALSA input through ffmpeg (the Home Assistant OS path)."""
        if driver not in ("pulse", "alsa"):
            raise ValueError(f"driver must be 'pulse' or 'alsa', not {driver!r}")
        input_args = ("-f", driver, *kw.pop("input_args", ()))
        source = cls(device, input_args=input_args, **kw)
        source.name = f"{driver}:{device}"
        source._device = device  # noqa: SLF001 - same class
        return source

    @property
    def pid(self) -> int | None:
        """Process id of the running ffmpeg, if any."""
        return (
            self._proc.pid
            if self._proc is not None and self._proc.returncode is None
            else None
        )

    def command(self, ffmpeg: str = "ffmpeg") -> list[str]:
        """Build the ffmpeg argument list (it holds the URL unredacted: do not log it)."""
        args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
        scheme = _SCHEME_RE.match(self.url)
        if (
            self._device is None
            and scheme is not None
            and scheme.group(1).lower() in ("rtsp", "rtsps")
            and "-rtsp_transport" not in self.input_args
        ):
            args += ["-rtsp_transport", "tcp"]
        if self.realtime:
            args.append("-re")
        if self._device is None and "-analyzeduration" not in self.input_args:
            args += ["-analyzeduration", str(ANALYZE_US)]
        if self._device is None and "-protocol_whitelist" not in self.input_args:
            kind = scheme.group(1).lower() if scheme is not None else "file"
            args += ["-protocol_whitelist", PROTOCOLS.get(kind, "file")]
        args += [*self.input_args, "-i", self.url]
        # one write per block, however the input is packetised: each write wakes the event loop
        block = self._block_bytes // 2
        args += ["-af", f"aresample={self.sample_rate},asetnsamples=n={block}:p=0"]
        args += ["-flush_packets", "1", "-vn", "-map", "0:a:0"]
        args += ["-f", "s16le", "-ac", "1", "-ar", str(self.sample_rate), "-"]
        return args

    def _find_ffmpeg(self) -> str:
        """Path of the ffmpeg to run; SourceError("ffmpeg_not_found") when there is none."""
        if self._ffmpeg is None:
            found, looked = ffmpeg_path(), "'ffmpeg' on PATH"
        elif os.sep in self._ffmpeg:
            path = Path(self._ffmpeg)
            found = (
                self._ffmpeg if path.is_file() and os.access(path, os.X_OK) else None
            )
            looked = repr(self._ffmpeg)
        else:
            found, looked = shutil.which(self._ffmpeg), f"{self._ffmpeg!r} on PATH"
        if found is None:
            raise SourceError(
                "ffmpeg_not_found", f"ffmpeg is not installed (looked for {looked})"
            )
        return found

    async def start(self) -> None:
        """Validate the URL and launch ffmpeg; connection problems surface in `blocks`."""
        if self._proc is not None and self._proc.returncode is None:
            raise RuntimeError(f"{self.name} is already started")
        if self._device is None:
            validate_url(self.url)
        else:
            _validate_device(self.url)
        ffmpeg = self._find_ffmpeg()
        await self._terminate()  # reap what a previous run may have left
        self._stopping = False
        self._bytes_read = 0
        self._stderr.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(ffmpeg),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=max(1 << 16, 4 * self._block_bytes),
            )
        except OSError as err:
            raise SourceError(
                "ffmpeg_not_found", f"cannot run ffmpeg ({ffmpeg!r}): {err}"
            ) from err
        self._proc = proc
        assert proc.stderr is not None
        self._stderr_task = asyncio.get_running_loop().create_task(
            self._read_stderr(proc.stderr),
            name=f"baby_monitor ffmpeg stderr {self.name}",
        )
        _LOGGER.debug("Started ffmpeg (pid %s) for %s", proc.pid, self.name)

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        """Keep the last lines ffmpeg writes to stderr (bounded), to explain failures."""
        pending = b""
        try:
            while chunk := await stream.read(4096):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._keep_stderr(line)
                if len(pending) > STDERR_LINE_CHARS:
                    self._keep_stderr(pending)
                    pending = b""
        except Exception as err:  # noqa: BLE001 - diagnostics only, never fail stop()
            _LOGGER.debug("Reading ffmpeg stderr for %s failed: %r", self.name, err)
        self._keep_stderr(pending)

    def _keep_stderr(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").replace("\r", "").strip()
        if self._device is None and self.url:
            text = text.replace(self.url, self.name)
        text = _redact_text(text)[:STDERR_LINE_CHARS]
        if text:
            self._stderr.append(text)
            _LOGGER.debug("ffmpeg %s: %s", self.name, text)

    async def blocks(self) -> AsyncIterator[Floats]:
        """Yield blocks of `block_s` (the last one may be shorter); raises SourceError at the end."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise RuntimeError(f"{self.name} is not started")
        stdout = proc.stdout
        pace = _Pace(self.pace_lead_s) if self.pace_lead_s is not None else None
        while not self._is_stopping():
            at_eof = False
            self._read_idle.clear()
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    data = await stdout.readexactly(self._block_bytes)
            except asyncio.IncompleteReadError as err:
                data, at_eof = err.partial, True
            except TimeoutError:
                if self._is_stopping():
                    return
                raise await self._stalled() from None
            except asyncio.CancelledError:
                self._kill()
                raise
            finally:
                self._read_idle.set()
            if self._is_stopping():
                return
            if len(data) >= 2:
                self._bytes_read += len(data)
                yield sanitize(pcm16_to_float(data))
                if pace is not None:
                    await pace.wait(self._bytes_read / 2 / self.sample_rate)
            if at_eof:
                if self._is_stopping():
                    return
                raise await self._ended()

    def _is_stopping(self) -> bool:
        """Whether stop() was called (a method, so type checkers re-read it after awaits)."""
        return self._stopping

    def _kill(self) -> None:
        """SIGKILL ffmpeg now (the loop's child watcher reaps it); `stop` finishes the cleanup."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def _stalled(self) -> SourceError:
        """Stop ffmpeg after read_timeout_s without audio and explain."""
        await self._terminate()
        timeout = f"{self.read_timeout_s:g} s"
        if self._bytes_read:
            return SourceError(
                "stream_ended", f"{self.name} stalled: no audio for {timeout}"
            )
        reason, detail = self._diagnose()
        if reason is None or reason == "stream_ended":
            reason = "cannot_connect"
        detail = f"{detail}; " if detail else ""
        return self._error(reason, f"{detail}no audio within {timeout}")

    async def _ended(self) -> SourceError:
        """Wait for ffmpeg to exit after it closed its output, and explain."""
        assert self._proc is not None
        await self._wait_exit(self._proc, STOP_TIMEOUT_S)
        await self._terminate()
        code = self._proc.returncode
        reason, detail = self._diagnose()
        if self._bytes_read:
            seconds = self._bytes_read / 2 / self.sample_rate
            suffix = f": {detail}" if detail else ""
            return SourceError(
                "stream_ended",
                f"{self.name} ended after {seconds:.1f} s of audio{suffix}",
            )
        if reason is None:
            if code == 0:
                return self._error("no_audio", "ffmpeg produced no samples")
            reason = "cannot_connect"
        return self._error(reason, detail or f"ffmpeg exited with code {code}")

    def _diagnose(self) -> tuple[SourceErrorReason | None, str]:
        """Reason and most telling stderr line (prefixes dropped), from what ffmpeg printed."""
        lines = [
            line for line in self._stderr if not line.lower().startswith(_FFMPEG_HINTS)
        ]
        groups: tuple[tuple[SourceErrorReason, tuple[str, ...]], ...] = _STDERR_REASONS
        if self.name.startswith("pulse:"):
            groups = (("sound_server_missing", _SERVER_MISSING), *groups)
        if self._device is not None:
            groups = (("device_not_found", _DEVICE_MISSING), *groups)
        for reason, patterns in groups:
            for line in reversed(lines):
                if any(pattern in line.lower() for pattern in patterns):
                    return reason, _drop_prefixes(line, self.name, self.url)
        return None, _drop_prefixes(lines[-1], self.name, self.url) if lines else ""

    def _error(self, reason: SourceErrorReason, detail: str) -> SourceError:
        """Build a SourceError whose message starts with what failed for this source."""
        lead = {
            "invalid_url": "ffmpeg cannot open",
            "no_audio": "no audio in",
            "not_media": "no audio or video in",
            "device_not_found": "cannot open audio device",
        }.get(reason, "cannot open")
        if reason == "sound_server_missing":
            detail = f"{detail} (no PulseAudio server is running or reachable)"
        if detail.lower().startswith(lead):
            return SourceError(reason, f"{self.name}: {detail}")
        return SourceError(reason, f"{lead} {self.name}: {detail}")

    async def _wait_exit(
        self, proc: asyncio.subprocess.Process, timeout: float
    ) -> bool:
        """Wait for exit, discarding unread output so the pipes close; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                if proc.stdout is not None:
                    while await proc.stdout.read(1 << 16):
                        pass
                await proc.wait()
        except TimeoutError:
            return False
        return True

    async def _terminate(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reap ffmpeg and finish its stderr reader."""
        async with self._terminate_lock:
            proc = self._proc
            if proc is None:
                return
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            if not await self._wait_exit(proc, STOP_TIMEOUT_S):
                _LOGGER.debug(
                    "ffmpeg (pid %s) for %s ignored SIGTERM, killing it",
                    proc.pid,
                    self.name,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                if not await self._wait_exit(proc, STOP_TIMEOUT_S):
                    _LOGGER.warning(
                        "ffmpeg (pid %s) for %s did not exit", proc.pid, self.name
                    )
            if (task := self._stderr_task) is not None:
                self._stderr_task = None
                _done, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
                if pending:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def stop(self) -> None:
        """Stop ffmpeg (SIGTERM, SIGKILL after 2 s) and reap it; safe to call any time, twice."""
        self._stopping = True
        if self._proc is None:
            return
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
        # A reader waiting in blocks() wakes on EOF; let it leave the pipe before we drain it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self._read_idle.wait()
        await self._terminate()
        _LOGGER.debug(
            "Stopped ffmpeg for %s (exit code %s)", self.name, self._proc.returncode
        )


class _Pace:
    """Holds a reader to real speed once it is `lead_s` ahead of the wall clock."""

    def __init__(self, lead_s: float) -> None:
        self.lead_s = lead_s
        self._clock = asyncio.get_running_loop().time
        self._start: float | None = None

    async def wait(self, heard_s: float) -> None:
        """Sleep until `heard_s` seconds of audio are at most `lead_s` ahead of real time."""
        now = self._clock()
        if self._start is None:
            self._start = now
        ahead = heard_s - (now - self._start) - self.lead_s
        if ahead > 0:
            await asyncio.sleep(ahead)


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
        self.overflows = 0
        """Callbacks where PortAudio reported lost input (input overflow)."""
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
                if flags & _NON_FATAL_FLAGS:
                    self.overflows += 1
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
