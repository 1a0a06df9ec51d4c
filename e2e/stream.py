"""A live audio stream over local HTTP: a WAV header, then 16-bit PCM paced at real time.

Like a baby-cam or an Icecast mount, the stream is *live*: every client hears the same timeline,
whenever it connects. Until `play` is called the timeline is silence; from the next 100-ms tick on it
is the programme, then silence again, for as long as the server runs (so the source never ends and
Home Assistant never reconnects and replays it). `play` returns the wall-clock time at which the
programme's first sample was handed to the connected clients, which is the zero of the timeline the
checks use.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
import logging
import socket
import struct
import time

from aiohttp import web

from baby_monitor_engine.pcm import SAMPLE_RATE

from .program import CHUNK_S

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED_CHUNKS = 100
"""A client this far behind (10 s) is dropped rather than buffered without bound."""
BURST_S = 6.0
"""Like Icecast's burst-on-connect, a new client first gets the last seconds already played, so
that ffmpeg's stream analysis (5 s) does not have to wait for them in real time."""


def wav_header(sample_rate: int = SAMPLE_RATE) -> bytes:
    """Header of an endless 16-bit mono WAV stream (sizes set to the maximum, as streamers do)."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )


class LiveStream:
    """Serves one live WAV stream at http://127.0.0.1:<port>/<path>."""

    def __init__(self, pcm: bytes, path: str = "/nursery.wav") -> None:
        """Serve `pcm` (16-bit mono at SAMPLE_RATE) when `play` is called; silence otherwise."""
        self.path = path
        self._pcm = pcm
        self._chunk = 2 * round(CHUNK_S * SAMPLE_RATE)
        self._silence = bytes(self._chunk)
        self._recent: deque[bytes] = deque(
            [self._silence] * round(BURST_S / CHUNK_S), maxlen=round(BURST_S / CHUNK_S)
        )
        self._clients: set[asyncio.Queue[bytes]] = set()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._position: int | None = (
            None  # byte offset into the programme while playing
        )
        self._started: asyncio.Future[float] | None = None
        self.port = 0
        self.connections: list[tuple[float, float | None]] = []
        """(connected, disconnected) wall-clock times of every client."""

    @property
    def url(self) -> str:
        """Where the stream is served."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> str:
        """Listen on a free local port and start the clock; returns the URL."""
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        self._ticker = asyncio.get_running_loop().create_task(
            self._tick(), name="e2e live stream clock"
        )
        return self.url

    async def stop(self) -> None:
        """Stop the clock and close every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for queue in self._clients:
            queue.put_nowait(b"")  # ends the client's response
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def play(self) -> float:
        """Start the programme at the next tick; returns the wall time its first sample went out.

        Once the programme has been served, playing it again starts it over.
        """
        if self._started is None or (self._started.done() and self._position is None):
            self._started = asyncio.get_running_loop().create_future()
        return await self._started

    @property
    def finished(self) -> bool:
        """Whether the whole programme has been served."""
        return self._started is not None and self._position is None

    def _next_chunk(self) -> bytes:
        if self._started is not None and not self._started.done():
            self._position = 0
            self._started.set_result(time.time())
        if self._position is None:
            return self._silence
        chunk = self._pcm[self._position : self._position + self._chunk]
        self._position += self._chunk
        if self._position >= len(self._pcm):
            self._position = None
        return chunk.ljust(self._chunk, b"\0")

    async def _tick(self) -> None:
        """Hand one chunk to every client each CHUNK_S, on a drift-free schedule."""
        loop = asyncio.get_running_loop()
        origin = loop.time()
        tick = 0
        while True:
            delay = origin + tick * CHUNK_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = self._next_chunk()
            self._recent.append(chunk)
            for queue in list(self._clients):
                if queue.qsize() >= MAX_QUEUED_CHUNKS:
                    _LOGGER.warning("Dropping a stream client that stopped reading")
                    self._clients.discard(queue)
                    queue.put_nowait(b"")  # tells its handler to finish
                    continue
                queue.put_nowait(chunk)
            tick += 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Stream the live timeline to one client until it goes away."""
        response = web.StreamResponse(
            headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        index = len(self.connections)
        self.connections.append((time.time(), None))
        self._clients.add(queue)
        try:
            await response.write(wav_header() + b"".join(self._recent))
            while chunk := await queue.get():
                await response.write(chunk)
        except ConnectionError:
            pass  # the client went away
        finally:
            self._clients.discard(queue)
            self.connections[index] = (self.connections[index][0], time.time())
        return response
