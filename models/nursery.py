"""What a nursery plays: lullabies, children's songs and sound machines, made here for the soak.

Our soothe blueprint plays lullabies and parents run white-noise machines all night, so the
soak must hear them for hours and never keep crying. Nothing is downloaded: the tunes are
public-domain melodies written below as note lists, rendered through `models.music` (FluidSynth,
FluidR3_GM) on the instruments of baby soothers and toy players with a simple accompaniment;
the sound machines are synthesised. General MIDI has no words, so *sung* songs are approximated
by the melody on its voice programs (Choir Aahs, Voice Oohs, Synth Voice). Every sound is a
seamless loop: a bed tiles it for minutes without a click. Seeds differ from training's
(`models.patches` renders `music.pieces(8, 30.0, 7, ...)`), so the soak's music is unheard.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import re

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.pcm import SAMPLE_RATE as RATE

from . import music
from .augment import coloured_noise

__all__ = [
    "INSTRUMENTS",
    "KINDS",
    "NOISE_MACHINES",
    "SEED",
    "TUNES",
    "VOICES",
    "Sound",
    "Tune",
    "noise_machine",
    "sounds",
    "tune_loop",
    "tune_midi",
]

type Floats = npt.NDArray[np.float32]

SEED = 23
"""Seed of the soak's nursery: training renders its music from seed 7."""
KINDS = ("instrumental", "sung", "noise")
NOISE_LOOP_S = 30
CROSSFADE = 320  # 20 ms: the loop's start blended into what follows its end
LULLABY_BPM = (56.0, 80.0)
SONG_BPM = (90.0, 130.0)
INSTRUMENTS = {
    "music box": 10,
    "celesta": 8,
    "glockenspiel": 9,
    "harp": 46,
    "piano": 0,
    "flute": 73,
    "guitar": 24,
    "strings": 48,
}
VOICES = {"choir aahs": 52, "voice oohs": 53, "synth voice": 54}
BELLS = {10, 8, 9}  # sound an octave up, as toy players do
ACCOMPANIMENT = {73: 46, 52: 48, 53: 0, 54: 48}
"""Melody programs that are accompanied by another instrument (harp, strings, piano)."""
NOISE_MACHINES = ("white", "pink", "brown", "fan", "ocean", "heartbeat", "shush")
TRIADS = ((0, 4, 7), (7, 11, 2), (5, 9, 0))  # I, V, IV: in this order of preference


@dataclass(frozen=True, slots=True)
class Tune:
    """A public-domain melody in C major: whole bars (pickups moved to the end, so it loops)."""

    name: str
    lullaby: bool
    meter: int  # quarter notes per bar
    notes: (
        str  # C D E F G A B from middle C, lower case an octave up, "," an octave down,
    )
    # z a rest; a number of quarter notes after it, "/" halves it (so "3/" is a dotted quarter)

    def parsed(self) -> list[tuple[int | None, float]]:
        """(semitones above middle C or None for a rest, quarter notes) for each note."""
        out: list[tuple[int | None, float]] = []
        for letter, commas, count, slash in re.findall(
            r"([zA-Ga-g])(,*)(\d*)(/?)", self.notes
        ):
            beats = int(count or 1) * (0.5 if slash else 1.0)
            if letter == "z":
                out.append((None, beats))
                continue
            pitch = music.MAJOR["CDEFGAB".index(letter.upper())]
            out.append((pitch + 12 * letter.islower() - 12 * len(commas), beats))
        return out

    @property
    def beats(self) -> float:
        """Length in quarter notes."""
        return sum(beats for _, beats in self.parsed())


TUNES = (
    Tune(
        "Twinkle Twinkle Little Star",
        True,
        4,
        "C C G G A A G2 F F E E D D C2 G G F F E E D2 G G F F E E D2 "
        "C C G G A A G2 F F E E D D C2",
    ),
    Tune(
        "Brahms' Lullaby",
        True,
        3,
        "G2 E/ E/ G2 E/ G/ c B A A G D/ E/ F D D/ E/ F2 D/ F/ B/ A/ G B c2 E/ E/",
    ),
    Tune("Au clair de la lune", True, 4, "C C C D E2 D2 C E D D C4"),
    Tune(
        "Mary Had a Little Lamb",
        False,
        4,
        "E D C D E E E2 D D D2 E G G2 E D C D E E E E D D E D C4",
    ),
    Tune(
        "Frère Jacques",
        False,
        4,
        "C D E C C D E C E F G2 E F G2 G/ A/ G/ F/ E C G/ A/ G/ F/ E C C G, C2 C G, C2",
    ),
    Tune(
        "London Bridge",
        False,
        4,
        "G3/ A/ G F E F G2 D E F2 E F G2 G3/ A/ G F E F G2 D2 G2 E C2 z",
    ),
    Tune("Old MacDonald", False, 4, "C C C G, A, A, G,2 E E D D C4"),
    Tune("Hot Cross Buns", False, 4, "E D C2 E D C2 C/ C/ C/ C/ D/ D/ D/ D/ E D C2"),
)


@dataclass(frozen=True, slots=True)
class Sound:
    """One thing a nursery plays, as a seamless loop: its name, kind (`KINDS`) and audio."""

    name: str
    kind: str
    loop: Floats


def _chords(tune: Tune) -> list[tuple[int, ...]]:
    """Pick I, V or IV for each bar: the triad holding most of the bar's melody (by duration)."""
    bars = int(round(tune.beats / tune.meter))
    weight = np.zeros((bars, len(TRIADS)))
    at = 0.0
    for pitch, beats in tune.parsed():
        if pitch is not None:
            hits = [pitch % 12 in triad for triad in TRIADS]
            weight[int(at // tune.meter) % bars] += np.array(hits) * beats
        at += beats
    weight[-1, 0] += 100  # home at the end
    return [TRIADS[int(i)] for i in weight.argmax(axis=1)]


def tune_piece(
    tune: Tune, program: int, bpm: float, root: int, passes: int
) -> music.Composition:
    """Play the tune `passes` times over: melody, a broken-chord accompaniment and a bass note a bar."""
    beat = 60.0 / bpm
    length = tune.beats * beat
    accompaniment = ACCOMPANIMENT.get(program, program)
    notes: list[music.Note] = []
    for k in range(passes):
        at = k * length
        for pitch, beats in tune.parsed():
            if pitch is not None:
                notes.append(music.Note(at, beats * beat * 0.95, root + pitch, 80, 0))
            at += beats * beat
        for bar, triad in enumerate(_chords(tune)):
            start = k * length + bar * tune.meter * beat
            notes.append(
                music.Note(start, tune.meter * beat, root - 24 + triad[0], 50, 2)
            )
            notes.extend(
                music.Note(
                    start + i * beat,
                    beat,
                    root - 12 + triad[i % 3] + 12 * (i == 3),
                    42,
                    1,
                )
                for i in range(tune.meter)
            )
    return music.Composition(
        {0: program, 1: accompaniment, 2: accompaniment}, tuple(notes)
    )


def tune_midi(tune: Tune, program: int, bpm: float, root: int) -> bytes:
    """Three passes of the tune as a MIDI file: the middle one becomes the loop."""
    return music.midi_bytes(tune_piece(tune, program, bpm, root, 3))


def tune_loop(tune: Tune, program: int, bpm: float, root: int) -> Floats:
    """One pass of the tune, rendered as a seamless loop.

    Three passes are rendered and the middle one kept: it starts with the first pass's ringing
    tail, as every repeat does, and its first 20 ms are blended with what follows it.
    """
    audio = music.render(tune_midi(tune, program, bpm, root))
    n = round(tune.beats * 60.0 / bpm * RATE)
    loop = audio[n : 2 * n].copy()
    fade = np.linspace(0.0, 1.0, CROSSFADE, dtype=np.float32)
    after = audio[2 * n : 2 * n + CROSSFADE]
    loop[:CROSSFADE] = loop[:CROSSFADE] * fade + after * (1 - fade)
    return loop


def _periodic(n: int, cycles: float) -> npt.NDArray[np.float64]:
    """Make a sine with a whole number of `cycles` over `n` samples (so it loops)."""
    return np.sin(2 * np.pi * round(cycles) * np.arange(n) / n)


def _thump(period: int, at: float, hz: float, gain: float) -> npt.NDArray[np.float64]:
    """Make a low thump `at` seconds into a beat of `period` samples: 5-ms rise, 45-ms decay."""
    t = np.maximum(np.arange(period) / RATE - at, 0.0)
    rise, decay = 1 - np.exp(-t / 0.005), np.exp(-t / 0.045)
    return np.asarray(gain * np.sin(2 * np.pi * hz * t) * rise * decay, np.float64)


def noise_machine(
    kind: str, rng: np.random.Generator, seconds: int = NOISE_LOOP_S
) -> Floats:
    """Make a sound machine's loop, each part a whole number of cycles long so it tiles seamlessly.

    white, pink, brown: coloured noise (periodic by construction, made by FFT); fan: brown noise,
    mains hum with its harmonics and a slow drift; ocean: pink noise in slow swells; heartbeat:
    'lub-dub' thumps at 60-80 bpm over a faint whoosh; shush: 1-6 kHz noise in rhythmic bursts.
    """
    n = seconds * RATE
    if kind in ("white", "pink", "brown"):
        return coloured_noise(n, kind, rng)
    if kind == "fan":
        mains = float(rng.choice([50.0, 60.0]))
        hum = sum(_periodic(n, mains * h * seconds) / h for h in (1, 2, 3))
        drift = 1 + 0.15 * _periodic(n, rng.integers(1, 4))
        audio = coloured_noise(n, "brown", rng) * drift + 0.3 * hum
    elif kind == "ocean":
        swell = 0.15 + (0.5 - 0.5 * _periodic(n, seconds / rng.uniform(7, 12))) ** 2
        audio = coloured_noise(n, "pink", rng) * swell
    elif kind == "heartbeat":
        period = round(RATE * 60 / rng.uniform(60, 80))
        n = period * max(1, n // period)
        beat = _thump(period, 0.0, 55.0, 1.0) + _thump(period, 0.3, 48.0, 0.7)
        audio = np.tile(beat, n // period) + 0.05 * coloured_noise(n, "brown", rng)
    elif kind == "shush":
        period = round(RATE * rng.uniform(1.4, 2.2))
        n = period * max(1, n // period)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        band = np.fft.irfft(spectrum * ((freqs > 1000) & (freqs < 6000)), n)
        phase = np.arange(period) / period
        burst = np.where(phase < 0.6, np.sin(np.pi * phase / 0.6) ** 2, 0.0)
        audio = band * (0.05 + np.tile(burst, n // period))
    else:
        raise ValueError(f"unknown noise machine {kind!r}; one of {NOISE_MACHINES}")
    return np.asarray(audio / np.std(audio), np.float32)


def _tunes(
    count: int, voices: bool, seed: int
) -> list[tuple[str, Tune, int, float, int]]:
    """Choose `count` (label, tune, program, bpm, root) renderings: tunes and programs in turn."""
    chosen: list[tuple[str, Tune, int, float, int]] = []
    programs = VOICES if voices else INSTRUMENTS
    for index in range(count):
        rng = np.random.default_rng([seed, int(voices), index])
        tune = TUNES[index % len(TUNES)]
        name = list(programs)[(index + 3 * (index // len(TUNES))) % len(programs)]
        bpm = round(float(rng.uniform(*(LULLABY_BPM if tune.lullaby else SONG_BPM))))
        root = 60 + int(rng.integers(-3, 6)) + 12 * (programs[name] in BELLS)
        style = ("sung " if voices else "") + ("lullaby" if tune.lullaby else "song")
        chosen.append(
            (
                f"{style}: {tune.name} ({name}, {bpm} bpm)",
                tune,
                programs[name],
                bpm,
                root,
            )
        )
    return chosen


def sounds(
    instrumental: int = 16,
    sung: int = 8,
    seed: int = SEED,
    cache: Path | None = None,
) -> list[Sound]:
    """Make the soak's nursery: rendered tunes, sung ones (voice programs) and every noise machine.

    Seeded and cached as one .npz per set (keyed by the counts, seed and this code), like
    `music.pieces`.
    """
    code = Path(__file__).read_bytes() + Path(music.__file__).read_bytes()
    key = hashlib.sha256(
        f"{instrumental}:{sung}:{seed}:{code.hex()}".encode()
    ).hexdigest()[:16]
    path = cache / f"nursery-{key}.npz" if cache else None
    plan = _tunes(instrumental, False, seed) + _tunes(sung, True, seed)
    names = [label for label, *_ in plan] + [
        f"noise machine: {k}" for k in NOISE_MACHINES
    ]
    kinds = (
        ["instrumental"] * instrumental
        + ["sung"] * sung
        + ["noise"] * len(NOISE_MACHINES)
    )
    if path and path.exists():
        with np.load(path) as stored:
            audio = [stored[f"arr_{i}"] for i in range(len(names))]
    else:
        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            audio = list(pool.map(lambda p: tune_loop(*p[1:]), plan))
        audio += [
            noise_machine(kind, np.random.default_rng([seed, 2, i]))
            for i, kind in enumerate(NOISE_MACHINES)
        ]
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, *audio)
    return [
        Sound(n, k, np.asarray(a, np.float32))
        for n, k, a in zip(names, kinds, audio, strict=True)
    ]
