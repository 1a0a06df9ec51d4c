"""Music a household plays, composed here and rendered with a General MIDI soundfont.

Folds 1-3 hold three minutes of music, and the validation fold's violins, celesta and song
were the negatives the model mistook for crying most often. Nurseries are full of music, so
training renders seeded pieces of its own: a key, a tempo, a chord progression, a melody, a
bass and sometimes drums, on instruments drawn from the families parents play (strings,
voices, winds, music boxes, piano, guitar), through FluidSynth and FluidR3_GM (Debian
packages `fluidsynth` and `fluid-soundfont-gm`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import tempfile

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.pcm import PCM16_SCALE, SAMPLE_RATE

__all__ = [
    "SOUNDFONT",
    "Note",
    "Composition",
    "compose",
    "midi_bytes",
    "pieces",
    "render",
]

type Floats = npt.NDArray[np.float32]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS_PER_SECOND = (
    960  # at the fixed tempo written below: 480 ticks per 0.5-s quarter note
)
DRUMS = 9  # General MIDI percussion channel

# General MIDI programs, by the part they play.
MELODY = (
    40, 41, 42, 48, 49, 52, 53, 54,  # violin, viola, cello, strings, choir, voice oohs, synth voice
    73, 74, 75, 78, 79, 68, 71, 56, 65, 22, 21,  # flutes, whistle, ocarina, reeds, brass, harmonica, accordion
    8, 9, 10, 11, 13, 0, 4, 24, 46, 45, 80, 81,  # celesta, glockenspiel, music box, vibes, piano, guitar, harp, leads
)  # fmt: skip
ACCOMPANIMENT = (0, 1, 4, 10, 24, 25, 46, 48, 49, 19, 88, 89, 45, 8)
BASS = (32, 33, 35, 42, 43, 0, 58)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 0, 4))


@dataclass(frozen=True)
class Note:
    """One note: when, how long (seconds), which key, how hard, on which channel."""

    start: float
    length: float
    pitch: int
    velocity: int
    channel: int


@dataclass(frozen=True)
class Composition:
    """A composed piece: the program on each channel and its notes."""

    programs: dict[int, int]
    notes: tuple[Note, ...]


def _chord(scale: tuple[int, ...], root: int, degree: int) -> list[int]:
    """Spell the triad on a scale degree as MIDI pitches above `root`."""
    return [
        root + scale[(degree + step) % 7] + 12 * ((degree + step) // 7)
        for step in (0, 2, 4)
    ]


def compose(rng: np.random.Generator, seconds: float) -> Composition:
    """Compose a random piece in a random style: lullaby, song, dance, orchestra."""
    beat = 60.0 / rng.uniform(56, 150)
    scale = MAJOR if rng.random() < 0.7 else MINOR
    root = int(rng.integers(45, 58))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    beats_per_chord = int(rng.choice([2, 4, 4, 8]))
    melody_at = int(rng.integers(12, 25))
    programs = {0: int(rng.choice(MELODY))}
    notes: list[Note] = []
    legato = programs[0] in {40, 41, 42, 48, 49, 52, 53, 54, 73, 68, 71, 56, 65, 22, 21}

    # melody: a random walk over the scale, phrases separated by rests
    t, step = 0.0, int(rng.integers(0, 7))
    loud = int(rng.integers(55, 110))
    while t < seconds:
        length = beat * float(
            rng.choice([0.5, 1, 1, 1, 2, 3] if legato else [0.5, 0.5, 1, 1, 2])
        )
        if rng.random() < 0.12:
            t += length  # a rest between phrases
            continue
        step = int(np.clip(step + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), -3, 12))
        pitch = root + melody_at + scale[step % 7] + 12 * (step // 7)
        hold = length * (1.0 if legato else rng.uniform(0.5, 0.95))
        notes.append(
            Note(t, hold, pitch, int(np.clip(loud + rng.integers(-12, 12), 30, 127)), 0)
        )
        t += length

    # accompaniment and bass follow the chord progression
    style = rng.random()
    if style < 0.85:
        programs[1] = int(rng.choice(ACCOMPANIMENT))
        programs[2] = int(rng.choice(BASS))
        soft = int(rng.integers(35, 80))
        chord_length = beat * beats_per_chord
        for index, start in enumerate(np.arange(0.0, seconds, chord_length)):
            chord = _chord(scale, root, progression[index % len(progression)])
            if rng.random() < 0.5:  # block chord
                notes.extend(
                    Note(float(start), chord_length, p, soft, 1) for p in chord
                )
            else:  # arpeggio
                for k, at in enumerate(
                    np.arange(start, start + chord_length, beat / 2)
                ):
                    notes.append(
                        Note(
                            float(at),
                            beat / 2,
                            chord[k % 3] + 12 * (k // 3 % 2),
                            soft,
                            1,
                        )
                    )
            notes.extend(
                Note(float(at), beat * 1.8, chord[0] - 12, soft + 10, 2)
                for at in np.arange(start, start + chord_length, beat * 2)
            )
    if rng.random() < 0.3:  # a beat: kick, snare, hi-hat
        for k, at in enumerate(np.arange(0.0, seconds, beat / 2)):
            drum = 42 if k % 2 else (36 if k % 4 == 0 else 38)
            notes.append(
                Note(float(at), beat / 4, drum, int(rng.integers(50, 100)), DRUMS)
            )
    return Composition(programs, tuple(note for note in notes if note.start < seconds))


def _varlen(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(piece: Composition) -> bytes:
    """Write the piece as a standard MIDI file (format 0) at 120 bpm, so seconds map to ticks."""
    events: list[tuple[int, int, bytes]] = [
        (0, 0, b"\xff\x51\x03\x07\xa1\x20")  # tempo: 500000 us per quarter note
    ]
    events += [
        (0, 1, bytes([0xC0 | channel, program]))
        for channel, program in piece.programs.items()
    ]
    for note in piece.notes:
        on = round(note.start * TICKS_PER_SECOND)
        off = max(on + 1, round((note.start + note.length) * TICKS_PER_SECOND))
        pitch = int(np.clip(note.pitch, 0, 127))
        events.append((on, 3, bytes([0x90 | note.channel, pitch, note.velocity])))
        events.append((off, 2, bytes([0x80 | note.channel, pitch, 0])))
    events.sort(key=lambda event: (event[0], event[1]))
    track, now = bytearray(), 0
    for tick, _, data in events:
        track += _varlen(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = (
        b"MThd"
        + (6).to_bytes(4, "big")
        + (0).to_bytes(2, "big")
        + (1).to_bytes(2, "big")
    )
    header += (TICKS_PER_SECOND // 2).to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def render(midi: bytes, soundfont: Path = SOUNDFONT) -> Floats:
    """Render a MIDI file to 16 kHz mono float audio with FluidSynth."""
    if shutil.which("fluidsynth") is None or not soundfont.exists():
        raise FileNotFoundError(
            f"rendering music needs fluidsynth and {soundfont} "
            "(apt-get install fluidsynth fluid-soundfont-gm)"
        )
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder, "piece.mid"), Path(folder, "piece.raw")
        source.write_bytes(midi)
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-g",
                "0.5",
                "-r",
                str(SAMPLE_RATE),
                "-T",
                "raw",
                "-O",
                "s16",
                "-E",
                "little",
                "-F",
                str(out),
                str(soundfont),
                str(source),
            ],  # fmt: skip
            check=True,
            capture_output=True,
            timeout=300,
        )
        stereo = np.frombuffer(out.read_bytes(), "<i2").reshape(-1, 2)
    mono: Floats = (stereo.mean(axis=1) / PCM16_SCALE).astype(np.float32)
    return mono


def pieces(
    count: int, seconds: float, seed: int, cache: Path | None = None
) -> list[Floats]:
    """`count` rendered pieces of about `seconds` each, seeded; cached as one .npz per set."""
    key = hashlib.sha256(
        f"{count}:{seconds}:{seed}:{Path(__file__).read_bytes().hex()}".encode()
    ).hexdigest()[:16]
    path = cache / f"music-{key}.npz" if cache else None
    if path and path.exists():
        with np.load(path) as stored:
            return [stored[f"arr_{i}"] for i in range(count)]
    midis = [
        midi_bytes(compose(np.random.default_rng([seed, index]), seconds))
        for index in range(count)
    ]
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        audio = list(pool.map(render, midis))
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, *audio)
    return audio
