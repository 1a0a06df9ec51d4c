"""What listening costs inside Home Assistant: the hass process's CPU time, listening vs paused.

DESIGN.md §5 bounds the CPU the integration adds inside a running Home Assistant, beyond the
engine's own cost, at 2 ms per second of audio. Here:

* **hass.** The hass process's own CPU time (user + system, every thread; its ffmpeg children
  apart) over `STRETCH_S` while every room listens, and over as long with every room paused (the
  listening switch off closes the source), per second of audio heard by all rooms together. The
  difference is what listening costs inside Home Assistant.
* **Engine.** The same engine (frontend, windows every hop, model, detectors) on the programme's
  audio, run as Home Assistant runs it, in this process while hass is paused: one pipeline per
  room, each on its own thread, fed one block a second in real time. Paced and side by side, the
  engine costs more per window than in a tight loop (cold caches after each idle second, two
  rooms sharing the cores); that cost is the engine's, not Home Assistant's. The tight-loop
  figure of one pipeline (the least of `ENGINE_REPEATS` passes, like `scripts/bench`) is kept
  beside it.
* **Overhead** = hass listening - hass paused - engine (paced): reading the source, the
  hand-offs to the executor, state writes, the picture, statistics.
* **ffmpeg.** The CPU time of hass's ffmpeg children over the listening stretch, per audio second.

Process CPU time is kept by the kernel per process, so a busy neighbour on the machine slows the
stretches down but adds little to them; what is left is Home Assistant's own background work,
which the paused stretch measures.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psutil

from baby_monitor_engine.backends import load_runtime
from baby_monitor_engine.model import DEFAULT_MODEL, load_metadata
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.pipeline import DEFAULT_HOP_S, SoundPipeline

STRETCH_S: Final = 20.0
"""Seconds of each stretch (listening per backend, paused)."""
SETTLE_S: Final = 3.0
"""Wait after pausing, until the sources are closed and their last windows scored."""
ENGINE_AUDIO_S: Final = 30.0
ENGINE_REPEATS: Final = 3
PACED_S: Final = 20.0
"""Seconds each room's paced pipeline runs (one block a second)."""
WARMUP_S: Final = 8.0
"""Audio fed before the clock starts: the first window and the first invoke allocate."""
BLOCK_S: Final = DEFAULT_HOP_S
"""Blocks as the integration's sources deliver them (one hop each, see source.py)."""
TARGET_MS: Final = 2.0
"""DESIGN.md §5: CPU the integration adds beyond the engine's own, per second of audio."""


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used so far by hass and by its live ffmpeg children, at a monotonic time."""

    at: float
    hass_s: float
    ffmpeg_s: float
    ffmpeg_count: int


def sample(pid: int) -> CpuSample:
    """Read hass's CPU time (its own threads only) and its ffmpeg children's."""
    proc = psutil.Process(pid)
    own = proc.cpu_times()
    ffmpeg, count = 0.0, 0
    for child in proc.children(recursive=True):
        try:
            if child.name() == "ffmpeg":
                times = child.cpu_times()
                ffmpeg += times.user + times.system
                count += 1
        except psutil.NoSuchProcess:
            continue
    return CpuSample(time.monotonic(), own.user + own.system, ffmpeg, count)


@dataclass(frozen=True, slots=True)
class Stretch:
    """CPU used between two samples, with `sources` rooms listening (0: paused)."""

    before: CpuSample
    after: CpuSample
    sources: int

    @property
    def wall_s(self) -> float:
        """Seconds the stretch lasted."""
        return self.after.at - self.before.at

    @property
    def audio_s(self) -> float:
        """Seconds of audio heard by all rooms together (real-time sources)."""
        return self.wall_s * self.sources

    def hass_ms_per_s(self, sources: int) -> float:
        """Return hass's CPU time per second of `sources` rooms' audio (ms)."""
        return (
            1000.0 * (self.after.hass_s - self.before.hass_s) / (self.wall_s * sources)
        )

    @property
    def ffmpeg_ms_per_audio_s(self) -> float | None:
        """Return ffmpeg's CPU time per audio second (None if the children changed meanwhile)."""
        if self.sources == 0 or self.before.ffmpeg_count != self.after.ffmpeg_count:
            return None
        return 1000.0 * (self.after.ffmpeg_s - self.before.ffmpeg_s) / self.audio_s


def _pipeline(backend: str) -> SoundPipeline:
    """Build the integration's pipeline on `backend` with the shipped model."""
    return SoundPipeline(
        load_runtime(load_metadata(DEFAULT_MODEL), backend),  # type: ignore[arg-type]
        hop_s=DEFAULT_HOP_S,
    )


def engine_ms_per_audio_s(
    backend: str, audio: npt.NDArray[np.float32], repeats: int = ENGINE_REPEATS
) -> float:
    """Measure one pipeline's CPU time per second of audio on `backend`, in a tight loop.

    Blocking (seconds): run it in a thread.
    """
    listener = _pipeline(backend)
    block = round(BLOCK_S * SAMPLE_RATE)
    listener.feed(audio[: round(WARMUP_S * SAMPLE_RATE)])
    passes = []
    for _ in range(repeats):
        listener.stream.reset()
        start = time.process_time()
        for i in range(0, audio.size, block):
            listener.feed(audio[i : i + block])
        passes.append(time.process_time() - start)
    return 1000.0 * min(passes) / (audio.size / SAMPLE_RATE)


def paced_engine_ms_per_audio_s(
    backend: str,
    audio: npt.NDArray[np.float32],
    rooms: int,
    seconds: float = PACED_S,
) -> float:
    """Measure the engine's CPU time per second of audio on `backend`, paced as hass runs it.

    `rooms` pipelines, each on its own thread, get one block of `audio` a second for
    `seconds`; each thread's CPU time (BLAS runs on the calling thread) is summed. Blocking
    (`seconds` and a warm-up): run it in a thread.
    """
    block = round(BLOCK_S * SAMPLE_RATE)
    blocks = round(seconds / BLOCK_S)
    warmup = round(WARMUP_S * SAMPLE_RATE)
    if audio.size < warmup + blocks * block:
        raise ValueError(
            f"paced engine needs {WARMUP_S + seconds:g} s of audio, got "
            f"{audio.size / SAMPLE_RATE:g} s"
        )
    listeners = [_pipeline(backend) for _ in range(rooms)]
    used = [0.0] * rooms
    ready = threading.Barrier(rooms)

    def run(room: int) -> None:
        listener = listeners[room]
        listener.feed(audio[:warmup])
        ready.wait()
        start, began = time.thread_time(), time.monotonic()
        for k in range(blocks):
            at = warmup + k * block
            listener.feed(audio[at : at + block])
            time.sleep(max(0.0, began + (k + 1) * BLOCK_S - time.monotonic()))
        used[room] = time.thread_time() - start

    threads = [threading.Thread(target=run, args=(room,)) for room in range(rooms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1000.0 * sum(used) / (rooms * blocks * BLOCK_S)


def figures(
    listening: dict[str, Stretch],
    paused: Stretch,
    engine: dict[str, float],
    sources: int,
    tight: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Sum up the figures per backend, in ms CPU per second of audio (a JSON-ready dict).

    `engine` is the paced engine, which the overhead is taken over; `tight` the tight loop.
    """
    idle = paused.hass_ms_per_s(sources)
    backends: dict[str, Any] = {}
    for backend, stretch in listening.items():
        hass = stretch.hass_ms_per_s(sources)
        backends[backend] = {
            "hass_listening": round(hass, 3),
            "hass_added": round(hass - idle, 3),
            "engine": round(engine[backend], 3),
            "engine_tight": None if tight is None else round(tight[backend], 3),
            "overhead": round(hass - idle - engine[backend], 3),
            "ffmpeg": (
                None
                if (ffmpeg := stretch.ffmpeg_ms_per_audio_s) is None
                else round(ffmpeg, 3)
            ),
            "wall_s": round(stretch.wall_s, 2),
        }
    return {
        "unit": "ms CPU per second of audio",
        "sources": sources,
        "stretch_s": STRETCH_S,
        "engine": "paced: one pipeline per room on its own thread, one block a second",
        "engine_paced_s": PACED_S,
        "engine_audio_s": ENGINE_AUDIO_S,
        "engine_repeats": ENGINE_REPEATS,
        "block_s": BLOCK_S,
        "hass_paused": round(idle, 3),
        "paused_wall_s": round(paused.wall_s, 2),
        "target_overhead": TARGET_MS,
        "backends": backends,
    }
