"""`FFmpegSource`: a camera stream, URL, file or ALSA/PulseAudio device decoded by an ffmpeg process."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
import contextlib
import logging
import os
from pathlib import Path
import re
import shutil
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ..audio import ffmpeg_path
from ..pcm import SAMPLE_RATE, pcm16_to_float
from .protocol import SourceError, SourceErrorReason
from .urls import CONTROL_RE, SCHEME_RE, redact_text, redact_url, validate_url

__all__ = ["PROTOCOLS", "FFmpegSource"]

_LOGGER = logging.getLogger(__name__)

type Floats = npt.NDArray[np.float32]

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


def _validate_device(device: str) -> None:
    """Raise SourceError("device_not_found") for an ALSA/PulseAudio device name ffmpeg cannot take."""
    if not device.strip() or CONTROL_RE.search(device) or device.startswith("-"):
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
        scheme = SCHEME_RE.match(self.url)
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
        text = redact_text(text)[:STDERR_LINE_CHARS]
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
                yield pcm16_to_float(data)  # finite and within [-1, 1) already
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
