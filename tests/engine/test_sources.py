"""Audio sources: ffmpeg subprocesses and PortAudio devices, their errors and their cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
from functools import partial
import http.server
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
from pathlib import Path
import socket
import stat
import sys
import threading
import time
import types
from typing import Any
import wave

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine import sources
from baby_monitor_engine.resample import resample
from baby_monitor_engine.sources import (
    AudioSource,
    FFmpegSource,
    InputDevice,
    SoundDeviceSource,
    SourceError,
    list_input_devices,
    portaudio_available,
    probe,
    redact_url,
    validate_url,
)

type Floats = npt.NDArray[np.float32]

RATE = 16000


# --------------------------------------------------------------------------- helpers


def _write_wav(
    path: Path,
    seconds: float,
    rate: int = 48000,
    channels: int = 2,
    freq: float = 440.0,
) -> Path:
    """Write a 16-bit PCM tone (amplitude 0.5, all channels alike); freq 0 writes silence."""
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t) if freq else np.zeros_like(t)
    frames = np.repeat((mono * 32767).astype("<i2")[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return path


def _peak_hz(samples: Floats, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


async def _collect(source: AudioSource) -> tuple[list[Floats], SourceError]:
    """Read blocks until the source raises; return them with the error."""
    blocks: list[Floats] = []
    iterator = source.blocks()
    while True:
        try:
            blocks.append(await anext(iterator))
        except SourceError as err:
            return blocks, err
        except StopAsyncIteration:
            pytest.fail("blocks() ended without raising SourceError")


_spawned: list[asyncio.subprocess.Process] = []
"""Every process the running test started through asyncio, oldest first."""


@pytest.fixture(autouse=True)
def _record_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record the processes each test starts, so that they can be checked from outside."""
    spawn = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await spawn(*args, **kwargs)
        _spawned.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    _spawned.clear()
    yield
    _spawned.clear()


def _assert_reaped(source: FFmpegSource) -> None:
    """Check every ffmpeg child has exited and been reaped, and its stderr reader is gone."""
    assert _spawned, "the test started no process"
    for proc in _spawned:
        assert proc.returncode is not None
        with pytest.raises(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)
        assert not Path(f"/proc/{proc.pid}").exists()
    readers = [
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith("baby_monitor ffmpeg stderr ")
    ]
    assert readers == []
    assert source.pid is None


def _fake_ffmpeg(tmp_path: Path, body: str) -> str:
    """Write an executable shell script that stands in for ffmpeg."""
    script = tmp_path / "fake-ffmpeg"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Keep test output clean."""


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    """2 s of 440 Hz at 48 kHz stereo."""
    return _write_wav(tmp_path / "tone.wav", 2.0)


@pytest.fixture
def http_root(tmp_path: Path, socket_enabled: None) -> Iterator[str]:
    """Serve tmp_path over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path))
    )
    thread = threading.Thread(
        target=partial(server.serve_forever, poll_interval=0.05), daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def silent_server(socket_enabled: None) -> Iterator[int]:
    """Run a TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


# --------------------------------------------------------------------------- URLs


SECRET_URLS = [  # (URL, how it is shown, what must not be)
    ("rtsp://admin:hunter2@cam.local:554/live", "rtsp://cam.local:554", "hunter2"),
    ("http://bob@10.0.0.2/audio.mp3", "http://10.0.0.2", "bob"),
    ("rtsp://admin:p@ssw0rd@cam/x", "rtsp://cam", "ssw0rd"),
    ("http://cam/snap?user=admin&password=hunter2&ch=1", "http://cam", "hunter2"),
    # an SRT passphrase, and a key nobody listed
    ("srt://cam:9000?passphrase=s3cr3tPass&mode=caller", "srt://cam:9000", "s3cr3t"),
    ("rtsp://cam:554/live?session=9f8e7d6c", "rtsp://cam:554", "9f8e7d6c"),
    # Blue Iris and UniFi Protect put the secret in the path
    (
        "http://bi.local:81/h264/cam1/temp.ts?user=u&pw=pw99",
        "http://bi.local:81",
        "pw99",
    ),
    (
        "rtsps://192.168.1.1:7441/Xk2lQ9aZtOkEn?enableSrtp",
        "rtsps://192.168.1.1:7441",
        "Xk2lQ9",
    ),
    # a signed URL
    (
        "https://b.s3.amazonaws.com/n.mp3?X-Amz-Credential=AKIA&X-Amz-Signature=ab12cd",
        "https://b.s3.amazonaws.com",
        "ab12cd",
    ),
    ("RTSP://[fe80::1]:554/stream9#frag", "rtsp://[fe80::1]:554", "stream9"),
]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        *[(url, shown) for url, shown, _secret in SECRET_URLS],
        ("rtsp://admin:pa/ss@cam/x", "rtsp://cam"),
        ("rtsp://cam.local/live", "rtsp://cam.local"),
        ("/media/clip.wav", "/media/clip.wav"),
        ("file:///media/clip.wav", "file:///media/clip.wav"),
    ],
)
def test_a_stream_is_shown_as_scheme_host_and_port(url: str, expected: str) -> None:
    """Credentials, paths, queries and fragments may all be secret: none is shown."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(("url", "expected", "secret"), SECRET_URLS)
async def test_ffmpeg_messages_that_echo_the_url_are_redacted(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    url: str,
    expected: str,
    secret: str,
) -> None:
    """The URL in ffmpeg's own lines, also spelt otherwise, is shown as its origin only."""
    caplog.set_level(logging.DEBUG, logger=sources.__name__)
    other = url.replace("://", "://www.", 1) if "@" not in url else url
    fake = _fake_ffmpeg(
        tmp_path,
        f"echo '[tcp @ 0x5] Connection to {url} failed' >&2; "
        f"echo \"[hls @ 0x6] Opening '{other}' for reading\" >&2; "
        f"echo '{url}: Connection refused' >&2; exit 1",
    )
    source = FFmpegSource(url, ffmpeg=fake)
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert str(caught.value) == f"cannot open {expected}: Connection refused"
    assert source.name == expected
    assert secret not in caplog.text
    assert f"Connection to {expected} failed" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://cam.local:554/live",
        "rtsps://user:pw@cam/live",
        "rtmp://host/app/stream",
        "http://127.0.0.1:8000/x.wav",
        "https://radio.example/stream.mp3",
        "udp://239.0.0.1:1234",
        "udp://@:1234",
        "tcp://10.0.0.5:9000",
        "srt://host:4200",
        "/media/clip.wav",
        "clips/night one.wav",
        "file:///media/clip.wav",
    ],
)
def test_validate_url_accepts_streams_and_paths(url: str) -> None:
    """Supported schemes and file paths pass."""
    validate_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        " rtsp://cam/live",
        "ftp://host/file.wav",
        "javascript:alert(1)",
        "concat:a.wav|b.wav",
        "pipe:0",
        "rtsp://",
        "http:///path",
        "http://exa mple.com/x",
        "http://cam:99999/x",
        "rtsp://cam/live\n-f null",
        "-i",
        "file:",
    ],
)
def test_validate_url_rejects_junk(url: str) -> None:
    """Empty, blank, unsupported or malformed input is invalid_url."""
    with pytest.raises(SourceError) as caught:
        validate_url(url)
    assert caught.value.reason == "invalid_url"


async def test_invalid_url_fails_at_start_with_redacted_message() -> None:
    """start() validates; the message does not leak the password."""
    source = FFmpegSource("ftp://bob:hunter2@host/x.wav")
    with pytest.raises(SourceError) as caught:
        await source.start()
    assert caught.value.reason == "invalid_url"
    assert "hunter2" not in str(caught.value)
    assert "ftp://host" in str(caught.value)
    await source.stop()


def test_command_line() -> None:
    """RTSP goes over TCP, -re only when asked, the microphone reads -f pulse/alsa."""
    rtsp = FFmpegSource("rtsp://cam/live").command("ffmpeg")
    assert rtsp[:5] == ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    assert rtsp[rtsp.index("-rtsp_transport") + 1] == "tcp"
    assert rtsp.index("-rtsp_transport") < rtsp.index("-i")
    assert rtsp[-10:] == [
        "-vn",
        "-map",
        "0:a:0",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        "16000",
        "-",
    ]
    # ffmpeg writes whole blocks at the output rate (one event-loop wake-up per block)
    assert rtsp[rtsp.index("-af") + 1] == "aresample=16000,asetnsamples=n=1600:p=0"
    assert rtsp[rtsp.index("-flush_packets") + 1] == "1"
    half = FFmpegSource("rtsp://cam/live", block_s=0.5).command()
    assert half[half.index("-af") + 1].endswith("asetnsamples=n=8000:p=0")
    assert "-re" not in FFmpegSource("/a.wav").command()
    # ffmpeg analyses 1 s of a stream, not 5, before decoding: opening takes about a second
    assert rtsp[rtsp.index("-analyzeduration") + 1] == "1000000"
    assert rtsp.index("-analyzeduration") < rtsp.index("-i")
    own = FFmpegSource("udp://@:5000", input_args=["-analyzeduration", "9"]).command()
    assert own.count("-analyzeduration") == 1
    played = FFmpegSource("/a.wav", realtime=True, input_args=["-ss", "3"]).command()
    assert played.index("-re") < played.index("-ss") < played.index("-i")
    custom = FFmpegSource(
        "rtsp://cam/live", input_args=["-rtsp_transport", "udp"]
    ).command()
    assert custom.count("-rtsp_transport") == 1
    mic = FFmpegSource.microphone("hw:1,0", "alsa")
    assert mic.name == "alsa:hw:1,0"
    args = mic.command()
    assert args[args.index("-i") - 2 : args.index("-i") + 2] == [
        "-f",
        "alsa",
        "-i",
        "hw:1,0",
    ]
    mic = FFmpegSource.microphone().command()
    assert mic[mic.index("-i") + 1] == "default"
    assert "-analyzeduration" not in args


# --------------------------------------------------------------------------- FFmpegSource


async def test_reads_wav_as_16k_mono_blocks(tone_wav: Path) -> None:
    """48 kHz stereo comes out as 16 kHz mono float32 blocks of block_s, then stream_ended."""
    source = FFmpegSource(str(tone_wav), block_s=0.1)
    await source.start()
    blocks, error = await _collect(source)
    await source.stop()
    assert error.reason == "stream_ended"
    assert "tone.wav" in str(error)
    assert all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    assert {block.size for block in blocks[:-1]} == {1600}
    audio = np.concatenate(blocks)
    assert audio.size == 2 * RATE
    assert abs(_peak_hz(audio) - 440) < 2
    assert 0.45 < np.abs(audio).max() <= 0.51
    _assert_reaped(source)


async def test_reads_wav_over_http(tone_wav: Path, http_root: str) -> None:
    """The same file served over HTTP decodes identically."""
    source = FFmpegSource(f"{http_root}/{tone_wav.name}")
    await source.start()
    blocks, error = await _collect(source)
    await source.stop()
    assert error.reason == "stream_ended"
    audio = np.concatenate(blocks)
    assert audio.size == 2 * RATE
    assert abs(_peak_hz(audio) - 440) < 2
    _assert_reaped(source)


async def test_closed_port_is_cannot_connect_with_redacted_url(
    socket_enabled: None,
) -> None:
    """Connection refused -> cannot_connect; ffmpeg's own message is redacted too."""
    url = f"http://bob:hunter2@127.0.0.1:{_closed_port()}/x.wav"
    source = FFmpegSource(url)
    with pytest.raises(SourceError) as caught:
        await probe(source)
    message = str(caught.value)
    assert caught.value.reason == "cannot_connect"
    assert "hunter2" not in message
    assert "bob" not in message
    assert f"cannot open {redact_url(url)}" in message
    assert "Connection refused" in message
    _assert_reaped(source)


async def test_http_404_is_cannot_connect(http_root: str) -> None:
    """A missing file on the server -> cannot_connect naming the HTTP error."""
    source = FFmpegSource(f"{http_root}/missing.wav")
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "cannot_connect"
    assert "404" in str(caught.value)
    _assert_reaped(source)


async def test_text_file_is_no_audio(tmp_path: Path) -> None:
    """A plain text file (ffmpeg reads it as ANSI art: a picture, no sound) -> no_audio."""
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 100)
    source = FFmpegSource(str(text))
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "no_audio"
    assert "notes.txt" in str(caught.value)
    _assert_reaped(source)


async def test_web_page_is_not_media(tmp_path: Path, http_root: str) -> None:
    """A URL that serves an HTML page -> not_media, naming the address."""
    (tmp_path / "index.html").write_text("<html><body>camera login</body></html>\n")
    url = f"{http_root}/index.html"
    with pytest.raises(SourceError) as caught:
        await probe(FFmpegSource(url))
    assert caught.value.reason == "not_media"
    assert str(caught.value).startswith(f"no audio or video in {redact_url(url)}: ")


async def _read_all(source: FFmpegSource) -> tuple[float, float]:
    """Read a source to its end; return (seconds of audio, seconds it took)."""
    began = time.monotonic()
    await source.start()
    blocks, error = await _collect(source)
    await source.stop()
    assert error.reason == "stream_ended"
    return sum(block.size for block in blocks) / RATE, time.monotonic() - began


async def test_paced_file_over_http_is_read_at_real_speed(
    tmp_path: Path, http_root: str
) -> None:
    """A finite file served over HTTP: read ahead by the lead, then at real speed."""
    wav = _write_wav(tmp_path / "program.wav", 3.0, rate=16000, channels=1)
    url = f"{http_root}/{wav.name}"
    heard, took = await _read_all(FFmpegSource(url, pace_lead_s=0.5))
    assert heard == pytest.approx(3.0)
    assert 2.4 <= took < 4.0
    heard, took = await _read_all(FFmpegSource(url))  # unpaced: as fast as it decodes
    assert heard == pytest.approx(3.0)
    assert took < 2.0


async def test_pacing_does_not_delay_a_live_stream(tmp_path: Path) -> None:
    """Audio that arrives at real speed is never held back further."""
    wav = _write_wav(tmp_path / "live.wav", 2.0, rate=16000, channels=1)
    heard, took = await _read_all(
        FFmpegSource(str(wav), realtime=True, pace_lead_s=0.0)
    )
    assert heard == pytest.approx(2.0)
    assert took < 2.8


def test_pace_lead_must_not_be_negative() -> None:
    """A negative lead is a programming error, said at once."""
    with pytest.raises(ValueError, match="pace_lead_s"):
        FFmpegSource("/a.wav", pace_lead_s=-1.0)


async def test_video_without_audio_is_no_audio(tmp_path: Path) -> None:
    """A video stream with no audio track -> no_audio."""
    video = tmp_path / "silent.mkv"
    result = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=0.2:s=64x64",
        str(video),
    )  # fmt: skip
    assert await result.wait() == 0
    source = FFmpegSource(str(video))
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "no_audio"


async def test_missing_file_is_cannot_connect(tmp_path: Path) -> None:
    """A path that does not exist -> cannot_connect saying so."""
    source = FFmpegSource(str(tmp_path / "nope.wav"))
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "cannot_connect"
    assert "No such file or directory" in str(caught.value)


async def test_ffmpeg_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ffmpeg (explicit path or on PATH) -> ffmpeg_not_found at start()."""
    source = FFmpegSource("/a.wav", ffmpeg=str(tmp_path / "no-ffmpeg"))
    with pytest.raises(SourceError) as caught:
        await source.start()
    assert caught.value.reason == "ffmpeg_not_found"
    assert "no-ffmpeg" in str(caught.value)
    await source.stop()

    monkeypatch.setattr("shutil.which", lambda *_args, **_kw: None)
    source = FFmpegSource("/a.wav")
    with pytest.raises(SourceError) as caught:
        await source.start()
    assert caught.value.reason == "ffmpeg_not_found"
    assert str(caught.value) == "ffmpeg is not installed (looked for 'ffmpeg' on PATH)"
    await source.stop()


async def test_server_that_never_answers_times_out(silent_server: int) -> None:
    """A camera that accepts and never sends -> cannot_connect within read_timeout_s."""
    source = FFmpegSource(f"http://127.0.0.1:{silent_server}/live", read_timeout_s=1.0)
    await source.start()
    started = time.monotonic()
    _blocks, error = await _collect(source)
    elapsed = time.monotonic() - started
    await source.stop()
    assert error.reason == "cannot_connect"
    assert "no audio within 1 s" in str(error)
    assert 0.9 < elapsed < 1.0 + sources.ffmpeg.STOP_TIMEOUT_S + 1.0
    _assert_reaped(source)


async def test_stall_after_audio_is_stream_ended(tmp_path: Path) -> None:
    """An ffmpeg that writes 0.2 s of audio then hangs -> stream_ended after the timeout."""
    ffmpeg = _fake_ffmpeg(tmp_path, "head -c 6400 /dev/zero\nexec sleep 60")
    source = FFmpegSource("/a.wav", ffmpeg=ffmpeg, read_timeout_s=0.5)
    await source.start()
    started = time.monotonic()
    blocks, error = await _collect(source)
    elapsed = time.monotonic() - started
    assert error.reason == "stream_ended"
    assert "stalled" in str(error)
    assert sum(block.size for block in blocks) == 3200
    assert elapsed < 0.5 + sources.ffmpeg.STOP_TIMEOUT_S + 1.0
    _assert_reaped(source)  # an error alone already cleans up
    await source.stop()


async def test_ffmpeg_ignoring_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() escalates to SIGKILL when SIGTERM is ignored, and still reaps."""
    monkeypatch.setattr(sources.ffmpeg, "STOP_TIMEOUT_S", 0.5)
    ffmpeg = _fake_ffmpeg(tmp_path, "trap '' TERM\nwhile :; do sleep 0.05; done")
    source = FFmpegSource("/a.wav", ffmpeg=ffmpeg)
    await source.start()
    await asyncio.sleep(0.2)  # let the shell install its trap
    started = time.monotonic()
    await source.stop()
    assert time.monotonic() - started < 2 * sources.ffmpeg.STOP_TIMEOUT_S + 1
    assert [proc.returncode for proc in _spawned] == [-9]  # SIGKILL
    _assert_reaped(source)


async def test_cancelling_the_reader_leaves_no_process(tmp_path: Path) -> None:
    """Cancelling a task blocked in blocks() kills ffmpeg; stop() then reaps everything."""
    source = FFmpegSource("/a.wav", ffmpeg=_fake_ffmpeg(tmp_path, "exec sleep 60"))
    await source.start()

    async def read() -> None:
        async for _block in source.blocks():
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await source.stop()
    _assert_reaped(source)


async def test_stop_while_reading_ends_iteration(tone_wav: Path) -> None:
    """stop() from another task ends a running blocks() quietly; stop() is idempotent."""
    source = FFmpegSource(str(tone_wav), realtime=True)
    await source.start()
    got: list[Floats] = []

    async def read() -> None:
        async for block in source.blocks():
            got.append(block)  # noqa: PERF401 - watched while the loop runs

    task = asyncio.create_task(read())
    started = time.monotonic()
    while not got:
        await asyncio.sleep(0.02)
    await source.stop()
    await source.stop()
    await asyncio.wait_for(task, 1)  # returned, no SourceError
    # -re plays in real time: far less than the 2 s file had been read.
    assert time.monotonic() - started < 1.5
    assert sum(block.size for block in got) < 2 * RATE
    _assert_reaped(source)


async def test_ffmpeg_exiting_without_output_is_no_audio(tmp_path: Path) -> None:
    """An ffmpeg that exits 0 having produced nothing -> no_audio (zero bytes is an error)."""
    source = FFmpegSource("/a.wav", ffmpeg=_fake_ffmpeg(tmp_path, "exit 0"))
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "no_audio"
    _assert_reaped(source)


async def test_ffmpeg_failing_silently_is_cannot_connect(tmp_path: Path) -> None:
    """A failure ffmpeg does not explain still names the exit code."""
    source = FFmpegSource("/a.wav", ffmpeg=_fake_ffmpeg(tmp_path, "exit 3"))
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "cannot_connect"
    assert "exited with code 3" in str(caught.value)


async def test_missing_alsa_device_is_device_not_found() -> None:
    """Reading `-f alsa` from a card that does not exist -> device_not_found."""
    source = FFmpegSource.microphone("hw:97,0", "alsa", read_timeout_s=5.0)
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "device_not_found"
    assert str(caught.value).startswith(
        "alsa:hw:97,0: cannot open audio device hw:97,0"
    )
    _assert_reaped(source)


@pytest.mark.parametrize(
    ("url", "protocols"),
    [
        ("rtsp://cam/live", "rtsp,rtsps,rtp,srtp,udp,tcp,tls"),
        ("https://cam/a.m3u8", "http,https,tcp,tls,crypto,httpproxy"),
        ("srt://cam:9000", "srt"),
        ("/media/a.wav", "file"),
        ("subfile,,start,0,end,0,,:/etc/hostname", "file"),
    ],
)
def test_ffmpeg_may_only_use_the_protocols_of_the_chosen_kind(
    url: str, protocols: str
) -> None:
    """-protocol_whitelist follows the scheme: a stream cannot open files, a path no protocol."""
    args = FFmpegSource(url).command()
    assert args[args.index("-protocol_whitelist") + 1] == protocols
    assert args.index("-protocol_whitelist") < args.index("-i")
    assert "-protocol_whitelist" not in FFmpegSource.microphone().command()


async def test_a_path_naming_another_protocol_is_refused(tone_wav: Path) -> None:
    """A "file path" naming ffmpeg's subfile protocol is not followed."""
    source = FFmpegSource(f"subfile,,start,0,end,0,,:{tone_wav}")
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "invalid_url"
    assert "not on whitelist" in str(caught.value)


async def test_a_playlist_cannot_lead_a_stream_to_local_files(
    tmp_path: Path, http_root: str, tone_wav: Path
) -> None:
    """An HLS playlist served over HTTP that lists a local file is refused."""
    (tmp_path / "evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n"
        f"file://{tone_wav}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(SourceError) as caught:
        await probe(FFmpegSource(f"{http_root}/evil.m3u8"))
    assert caught.value.reason == "invalid_url"
    assert "Protocol 'file' not on whitelist" in str(caught.value)


async def test_pulse_without_a_server_is_sound_server_missing(tmp_path: Path) -> None:
    """Reading pulse with no PulseAudio server -> sound_server_missing, saying so."""
    fake = _fake_ffmpeg(tmp_path, 'echo "default: No such process" >&2; exit 1')
    source = FFmpegSource.microphone("default", "pulse", ffmpeg=fake)
    with pytest.raises(SourceError) as caught:
        await probe(source)
    assert caught.value.reason == "sound_server_missing"
    assert str(caught.value) == (
        "cannot open pulse:default: No such process "
        "(no PulseAudio server is running or reachable)"
    )


async def test_probe_reads_about_one_second(tone_wav: Path) -> None:
    """probe() returns at least the requested audio and always stops the source."""
    source = FFmpegSource(str(tone_wav))
    audio = await probe(source, seconds=1.0)
    assert RATE <= audio.size < RATE + 1600
    assert abs(_peak_hz(audio) - 440) < 2
    _assert_reaped(source)


async def test_probe_accepts_digital_silence_and_short_files(tmp_path: Path) -> None:
    """A quiet nursery is not an error; a file shorter than asked returns what it has."""
    silent = _write_wav(tmp_path / "silence.wav", 0.5, rate=16000, channels=1, freq=0)
    audio = await probe(FFmpegSource(str(silent)), seconds=1.0)
    assert audio.size == RATE // 2
    assert not audio.any()


async def test_probe_times_out_as_no_audio(tmp_path: Path) -> None:
    """A source that gives nothing within probe's timeout -> no_audio, process reaped."""
    source = FFmpegSource("/a.wav", ffmpeg=_fake_ffmpeg(tmp_path, "exec sleep 60"))
    with pytest.raises(SourceError) as caught:
        await probe(source, timeout_s=0.3)
    assert caught.value.reason == "no_audio"
    _assert_reaped(source)


# --------------------------------------------------------------------------- SoundDeviceSource


class _Status:
    """Stand-in for sounddevice.CallbackFlags."""

    def __init__(self, **flags: bool) -> None:
        self.flags = flags

    def __getattr__(self, name: str) -> bool:
        return self.flags.get(name, False)

    def __bool__(self) -> bool:
        return any(self.flags.values())

    def __str__(self) -> str:
        return ", ".join(
            name.replace("_", " ") for name, on in self.flags.items() if on
        )


class _PortAudioError(Exception):
    """Stand-in for sounddevice.PortAudioError."""


_DEVICES: list[dict[str, Any]] = [
    {
        "index": 0,
        "name": "USB mic",
        "max_input_channels": 1,
        "default_samplerate": 16000.0,
    },
    {
        "index": 1,
        "name": "HDMI out",
        "max_input_channels": 0,
        "default_samplerate": 48000.0,
    },
    {
        "index": 2,
        "name": "Stereo line in",
        "max_input_channels": 2,
        "default_samplerate": 44100.0,
    },
]
_SUPPORTED: dict[int, set[tuple[int, int]]] = {
    0: {(16000, 1), (48000, 1)},
    2: {(44100, 2)},
}


class _FakeSoundDevice(types.ModuleType):
    """A sounddevice module whose InputStream calls back from a real thread."""

    PortAudioError = _PortAudioError

    def __init__(self) -> None:
        super().__init__("sounddevice")
        self.streams: list[_FakeInputStream] = []
        self.script: list[tuple[Floats, _Status | None]] = []
        self.fake = self

    def query_devices(
        self, device: int | str | None = None, kind: str | None = None
    ) -> Any:
        if device is None and kind is None:
            return [dict(info) for info in _DEVICES]
        if device is None:
            device = 0
        if isinstance(device, str):
            matches = [
                info for info in _DEVICES if device.lower() in info["name"].lower()
            ]
            if not matches:
                raise ValueError(f"No input device matching {device!r}")
            info = matches[0]
        elif 0 <= device < len(_DEVICES):
            info = _DEVICES[device]
        else:
            raise _PortAudioError(f"Error querying device {device}")
        if kind == "input" and info["max_input_channels"] < 1:
            raise ValueError(f"Not an input device: {info['name']!r}")
        return dict(info)

    def check_input_settings(
        self, device: int, channels: int, dtype: str, samplerate: float
    ) -> None:
        if (round(samplerate), channels) not in _SUPPORTED.get(device, set()):
            raise _PortAudioError("Invalid sample rate / number of channels")

    def InputStream(self, **kwargs: Any) -> _FakeInputStream:  # noqa: N802 - sounddevice's name
        stream = _FakeInputStream(self.script, **kwargs)
        self.streams.append(stream)
        return stream


class _FakeInputStream:
    """Plays a script of (block, status) through the callback on its own thread."""

    def __init__(
        self, script: list[tuple[Floats, _Status | None]], **kwargs: Any
    ) -> None:
        self.kwargs = kwargs
        self.script = list(script)
        self.done = threading.Event()
        self.closed = False
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-portaudio")

    def _run(self) -> None:
        for block, status in self.script:
            if self._halt.is_set():
                break
            self.kwargs["callback"](block, len(block), None, status or _Status())
        self.done.set()

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Simulate PortAudio ending the stream by itself (device unplugged)."""
        self._thread.join()
        self.kwargs["finished_callback"]()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join()
        self.kwargs["finished_callback"]()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> _FakeSoundDevice:
    """Install the fake sounddevice module."""
    module = _FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def _blocks(
    count: int, frames: int, channels: int = 1
) -> list[tuple[Floats, _Status | None]]:
    """Blocks whose samples all equal their index / 100, shaped like PortAudio's indata."""
    return [
        (np.full((frames, channels), i / 100, dtype=np.float32), None)
        for i in range(count)
    ]


async def _next(iterator: AsyncIterator[Floats]) -> Floats:
    return await asyncio.wait_for(anext(iterator), 2)


async def test_sounddevice_blocks_arrive_in_order(fake_sd: _FakeSoundDevice) -> None:
    """A 16 kHz mono device is opened as is; blocks reach the loop in order, unchanged."""
    fake_sd.script = _blocks(5, 1600)
    source = SoundDeviceSource(0)
    await source.start()
    stream = fake_sd.streams[0]
    assert (stream.kwargs["samplerate"], stream.kwargs["channels"]) == (16000, 1)
    assert stream.kwargs["blocksize"] == 1600
    assert stream.kwargs["dtype"] == "float32"
    iterator = source.blocks()
    got = [await _next(iterator) for _ in range(5)]
    assert [float(block[0]) for block in got] == pytest.approx(
        [0, 0.01, 0.02, 0.03, 0.04]
    )
    assert all(block.shape == (1600,) and block.dtype == np.float32 for block in got)
    assert source.dropped_blocks == 0
    await source.stop()
    assert stream.closed
    assert await anext(iterator, None) is None  # iteration ends after stop()


async def test_sounddevice_overflow_drops_oldest(fake_sd: _FakeSoundDevice) -> None:
    """A consumer that falls behind loses the oldest blocks, counted in dropped_blocks."""
    fake_sd.script = _blocks(10, 1600)
    source = SoundDeviceSource(0, max_queue_s=0.3)
    await source.start()
    await asyncio.to_thread(fake_sd.streams[0].done.wait, 2)
    await asyncio.sleep(0)
    assert source.dropped_blocks == 7
    iterator = source.blocks()
    got = [await _next(iterator) for _ in range(3)]
    assert [float(block[0]) for block in got] == pytest.approx([0.07, 0.08, 0.09])
    await source.stop()


async def test_sounddevice_converts_44k_stereo(fake_sd: _FakeSoundDevice) -> None:
    """A 44.1 kHz stereo-only device is opened natively and converted to 16 kHz mono."""
    rate, frames = 44100, 4410
    t = np.arange(rate) / rate
    left = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # right channel silent
    fake_sd.script = [(stereo[i : i + frames], None) for i in range(0, rate, frames)]
    source = SoundDeviceSource("stereo")
    await source.start()
    stream = fake_sd.streams[0]
    assert (stream.kwargs["samplerate"], stream.kwargs["channels"]) == (44100, 2)
    assert (source.stream_rate, source.stream_channels) == (44100, 2)
    await asyncio.to_thread(stream.done.wait, 2)
    stream.finish()  # the device ends: blocks() yields what is queued, then raises
    blocks, error = await _collect(source)
    assert error.reason == "stream_ended"
    audio = np.concatenate(blocks)
    await source.stop()
    whole = resample((left / 2).astype(np.float32), rate, RATE)
    assert whole.size - 30 <= audio.size <= whole.size
    np.testing.assert_allclose(audio, whole[: audio.size], atol=1e-6)
    assert abs(_peak_hz(audio) - 1000) < 2


async def test_sounddevice_unknown_device(fake_sd: _FakeSoundDevice) -> None:
    """Unknown names, bad indexes and output-only devices -> device_not_found."""
    for device in ("nonexistent", 99, 1):
        source = SoundDeviceSource(device)
        with pytest.raises(SourceError) as caught:
            await source.start()
        assert caught.value.reason == "device_not_found"
        await source.stop()
    assert not fake_sd.streams


class _FailingFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import sounddevice` fail the way it does without libportaudio."""

    def find_spec(
        self, name: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        return (
            importlib.util.spec_from_loader(name, self)
            if name == "sounddevice"
            else None
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        raise OSError("PortAudio library not found")


async def test_sounddevice_without_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """OSError on import -> portaudio_missing; no devices; portaudio_available() is False."""
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_FailingFinder(), *sys.meta_path])
    assert portaudio_available() is False
    assert list_input_devices() == []
    source = SoundDeviceSource()
    with pytest.raises(SourceError) as caught:
        await source.start()
    assert caught.value.reason == "portaudio_missing"
    assert "PortAudio library not found" in str(caught.value)
    await source.stop()


async def test_sounddevice_error_status_raises_after_queued_blocks(
    fake_sd: _FakeSoundDevice,
) -> None:
    """An overflow flag is not fatal; any other PortAudio status ends blocks() with SourceError."""
    ok = np.zeros((1600, 1), np.float32)
    fake_sd.script = [
        (ok, None),
        (ok, _Status(input_overflow=True)),
        (ok, _Status(input_underflow=True)),
        (ok, None),
    ]
    source = SoundDeviceSource(0)
    await source.start()
    got, error = await _collect(source)
    assert error.reason == "stream_ended"
    assert "input underflow" in str(error)
    assert len(got) == 2
    await source.stop()


async def test_sounddevice_stream_closing_raises(fake_sd: _FakeSoundDevice) -> None:
    """PortAudio finishing the stream on its own (device gone) -> stream_ended."""
    fake_sd.script = _blocks(1, 1600)
    source = SoundDeviceSource(0)
    await source.start()
    await asyncio.to_thread(fake_sd.streams[0].finish)
    iterator = source.blocks()
    assert float((await _next(iterator))[0]) == 0.0
    with pytest.raises(SourceError) as caught:
        await _next(iterator)
    assert caught.value.reason == "stream_ended"
    await source.stop()
    assert fake_sd.streams[0].closed


async def test_probe_sounddevice(fake_sd: _FakeSoundDevice) -> None:
    """probe() works on any AudioSource and closes it."""
    fake_sd.script = _blocks(12, 1600)
    source = SoundDeviceSource(0)
    audio = await probe(source, seconds=1.0)
    assert audio.size == RATE
    assert fake_sd.streams[0].closed


async def test_sounddevice_cancelled_while_opening_closes_stream(
    fake_sd: _FakeSoundDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that times out while PortAudio is still opening leaves no stream open."""
    check = fake_sd.check_input_settings

    def slow_check(**kwargs: Any) -> None:
        time.sleep(0.3)
        check(**kwargs)

    monkeypatch.setattr(fake_sd, "check_input_settings", slow_check)
    with pytest.raises(SourceError) as caught:
        await probe(SoundDeviceSource(0), timeout_s=0.1)
    assert caught.value.reason == "no_audio"
    for _ in range(100):
        if fake_sd.streams and fake_sd.streams[0].closed:
            break
        await asyncio.sleep(0.02)
    assert fake_sd.streams[0].closed


def test_list_input_devices_maps_query(fake_sd: _FakeSoundDevice) -> None:
    """Input-capable devices only, with the default marked."""
    assert list_input_devices() == [
        InputDevice(0, "USB mic", 1, 16000.0, is_default=True),
        InputDevice(2, "Stereo line in", 2, 44100.0, is_default=False),
    ]
    assert portaudio_available() is True


def test_reasons_are_the_documented_set() -> None:
    """Translations and repair issues key on these words."""
    assert set(sources.REASONS) == {
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
    }
