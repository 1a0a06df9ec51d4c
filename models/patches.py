"""Backbone features of every dev clip, per patch, as the stream computes them (cached).

A head is chosen by cross-validation on these, so they are computed once per audio variant:
clean, band-limited like an 8-kHz camera, and masked by a noise machine or music at 0 dB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.blas import single_threaded
from baby_monitor_engine.pcm import SAMPLE_RATE
from baby_monitor_engine.resample import resample
from baby_monitor_engine.windows import clip_windows

from .augment import band_limit, coloured_noise, fit_length, mix_at_snr
from .backbone import FRONTEND, PATCH_HOP_S, PATCH_S, backbone_tflite
from .dataset import DEFAULT_DATA, Clip, load_audio, read_manifest
from .music import pieces

__all__ = [
    "EXTRA_VARIANTS",
    "VARIANTS",
    "Embedder",
    "clip_patches",
    "clip_variant",
    "patch_features",
]

type Floats = npt.NDArray[np.float32]

type ClipVariant = Callable[[Clip, int, Floats], Floats]
"""A clip's audio under a variant: (clip, its index in the clip list, its audio) -> audio."""

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "patches"
AUDIO_CACHE = ROOT / "build" / "audio_cache"


class Embedder:
    """The backbone flatbuffer on LiteRT, one thread: patches in, feature rows out."""

    def __init__(self, content: bytes) -> None:
        """Load the model."""
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self._interpreter = Interpreter(model_content=content, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def __call__(self, patches: Floats) -> Floats:
        """Feature rows, shape (n, features), of patches shaped (n, frames, mels)."""
        rows = []
        for patch in patches:
            self._interpreter.set_tensor(self._input, patch[None, :, :, None])
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.stack(rows)


def clip_patches(audio: Floats) -> Floats:
    """Cut the patches a stream embeds while this clip plays: (n, frames, mels), at least one."""
    _, patches = clip_windows(audio, FRONTEND, PATCH_S, PATCH_HOP_S)
    return patches


def _masked(
    make: Callable[[int, np.random.Generator], Floats], snr_db: tuple[float, float]
) -> Callable[[Floats, np.random.Generator], Floats]:
    def mix(audio: Floats, rng: np.random.Generator) -> Floats:
        background = make(audio.size, rng)
        low, high = snr_db
        snr = low if low == high else float(rng.uniform(low, high))
        return mix_at_snr(audio, background, snr)

    return mix


def _music_masker(cache: Path) -> Callable[[int, np.random.Generator], Floats]:
    rendered = pieces(8, 30.0, 7, cache)

    def take(n: int, rng: np.random.Generator) -> Floats:
        piece = rendered[int(rng.integers(len(rendered)))]
        start = int(rng.integers(max(1, piece.size - n)))
        return np.resize(piece[start:], n)

    return take


VARIANTS = ("clean", "band", "noise0", "music0")
"""What the head is trained and judged on: as recorded, band-limited, masked at 0 dB."""
EXTRA_VARIANTS = ("noise_any", "music_any", "pitch")
"""Training-only: maskings at -5 to 10 dB SNR, and every clip a little higher or lower."""
PITCH_RATES = (14000, 15000, 17000, 18000)
"""Played back at 16 kHz after resampling to these, a clip moves by +2.3 to -2 semitones: babies
and laughs differ in pitch more than 64 laughs show."""


def _pitch(audio: Floats, rng: np.random.Generator) -> Floats:
    rate = int(rng.choice(PITCH_RATES))
    return fit_length(resample(audio, SAMPLE_RATE, rate), audio.size, rng)


def _variant(
    name: str, cache: Path
) -> Callable[[Floats, np.random.Generator], Floats] | None:
    if name == "clean":
        return None
    if name == "band":
        return band_limit
    if name == "pitch":
        return _pitch
    snr = (0.0, 0.0) if name.endswith("0") else (-5.0, 10.0)
    if name.startswith("noise"):
        colours = ("white", "pink", "brown")
        return _masked(
            lambda n, rng: coloured_noise(n, colours[int(rng.integers(3))], rng), snr
        )
    if name.startswith("music"):
        return _masked(_music_masker(cache), snr)
    raise ValueError(
        f"unknown variant {name!r}; choose from {', '.join(VARIANTS + EXTRA_VARIANTS)}"
    )


def clip_variant(variant: str, audio_cache: Path = AUDIO_CACHE) -> ClipVariant:
    """Return how `variant` changes a clip's audio, exactly as `patch_features` changes it.

    Seeded by the clip's path and its index in the clip list, so a clip gets the same band,
    pitch or masker in every run; `clean` gives the audio back as it is.
    """
    transform = _variant(variant, audio_cache)

    def apply(clip: Clip, index: int, audio: Floats) -> Floats:
        if transform is None:
            return audio
        seed = int.from_bytes(hashlib.sha1(clip.path.encode()).digest()[:4])
        return transform(audio, np.random.default_rng([seed, index]))

    return apply


def patch_features(
    variant: str = "clean",
    clips: Sequence[Clip] | None = None,
    data_dir: Path = DEFAULT_DATA,
    audio_cache: Path = AUDIO_CACHE,
) -> tuple[npt.NDArray[np.intp], Floats]:
    """(offsets, features) of every clip under `variant`; clip i owns rows offsets[i]:offsets[i+1].

    Seeded per clip, so a clip gets the same band or masker in every run; cached by the
    backbone's bytes and the clip list.
    """
    clips = list(clips if clips is not None else read_manifest(data_dir))
    content = backbone_tflite()
    key = hashlib.sha256(
        content + variant.encode() + "\n".join(c.path for c in clips).encode()
    ).hexdigest()[:16]
    cached = CACHE / f"{variant}-{key}.npz"
    if cached.exists():
        with np.load(cached) as stored:
            return stored["offsets"], stored["features"]
    transform = clip_variant(variant, audio_cache)
    embed = Embedder(content)
    audios = load_audio(list(clips), data_dir, audio_cache)
    rows: list[Floats] = []
    with single_threaded():
        for index, (clip, audio) in enumerate(zip(clips, audios, strict=True)):
            rows.append(embed(clip_patches(transform(clip, index, audio))))
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in rows]))).astype(np.intp)
    features = np.concatenate(rows).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, offsets=offsets, features=features)
    return offsets, features
