"""Model files: the `.tflite` and its metadata JSON, checked against each other before use."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .frontend import FrontendConfig

__all__ = [
    "DEFAULT_MODEL",
    "LABELS",
    "Backbone",
    "ModelError",
    "ModelMetadata",
    "load_metadata",
    "spread_scores",
]

LABELS = ("cry", "laughter")
DEFAULT_MODEL = Path(__file__).parent.parent / "model" / "baby_monitor.json"


def spread_scores(
    probabilities: npt.ArrayLike, spread: float
) -> npt.NDArray[np.float32]:
    """Report p as 1 - (1 - p)^(1 / spread): monotonic, 0 stays 0, scores near 1 spread out.

    A softmax head crowds its strict thresholds just below 1; spread, the model's metadata
    moves them to where a 0.01-step sensitivity setting can reach them.
    """
    p = np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0)
    return np.asarray(1.0 - (1.0 - p) ** (1.0 / spread), np.float32)


class ModelError(Exception):
    """The model file or its metadata is missing, corrupt or inconsistent."""


def _read_checked(path: Path, sha256: str) -> bytes:
    """Return a flatbuffer's bytes after checking their size, then their sha256."""
    from .tflite import MAX_MODEL_FILE_BYTES  # noqa: PLC0415 - numpy kernels load lazily

    try:
        size = path.stat().st_size
        if size > MAX_MODEL_FILE_BYTES:
            raise ModelError(
                f"model file {path} is {size} bytes, larger than the "
                f"{MAX_MODEL_FILE_BYTES} a model may have"
            )
        content = path.read_bytes()
    except OSError as err:
        raise ModelError(f"cannot read model file {path}: {err.strerror}") from err
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise ModelError(
            f"model file {path} does not match its metadata: sha256 is {digest}, "
            f"expected {sha256} (file truncated, corrupt or replaced?)"
        )
    return content


@dataclass(frozen=True)
class Backbone:
    """The pretrained network that turns each patch of the window into a feature row.

    Each patch is embedded once as audio arrives; the head (the model file itself) reads the
    rows of the patches inside the window.
    """

    model_path: Path
    sha256: str
    patch_s: float
    patch_hop_s: float
    features: int
    embedding: int = 0
    """Leading columns of a row that are the backbone's embedding (the rest: its class logits)."""

    @property
    def embedding_columns(self) -> int:
        """Columns a room's learning compares patches on (all of them when not given)."""
        return self.embedding or self.features

    def read_model(self) -> bytes:
        """Return the backbone's `.tflite` bytes, checked against the metadata."""
        return _read_checked(self.model_path, self.sha256)


@dataclass(frozen=True)
class ModelMetadata:
    """What the engine needs to know about a model, read from `<name>.json`."""

    name: str
    version: str
    labels: tuple[str, ...]
    sample_rate: int
    window_s: float
    frontend: FrontendConfig
    input_shape: tuple[int, ...]
    input_dtype: str
    input_scale: float
    input_zero_point: int
    thresholds: dict[str, float]
    sha256: str
    model_path: Path
    raw: dict[str, Any]
    backbone: Backbone | None = None
    spread: float = 1.0  # output.spread: see spread_scores

    @property
    def window_frames(self) -> int:
        """Frames in one model window."""
        return self.frontend.frames_for(self.window_s)

    @property
    def patch_frames(self) -> int:
        """Frames in one backbone patch."""
        assert self.backbone is not None
        return self.frontend.frames_for(self.backbone.patch_s)

    @property
    def patch_hop_frames(self) -> int:
        """Frames between the patches of a window."""
        assert self.backbone is not None
        return self.frontend.frames_for(self.backbone.patch_hop_s)

    @property
    def patches(self) -> int:
        """Patches in one window, the newest ending at the window's end."""
        return (self.window_frames - self.patch_frames) // self.patch_hop_frames + 1

    def read_model(self) -> bytes:
        """Return the `.tflite` bytes after checking their size, then their sha256."""
        return _read_checked(self.model_path, self.sha256)


def _require(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: Path
) -> Any:
    if key not in data:
        raise ModelError(f"model metadata {source} has no '{key}'")
    value = data[key]
    if not isinstance(value, kind):
        raise ModelError(
            f"model metadata {source}: '{key}' has the wrong type ({value!r})"
        )
    return value


def load_metadata(path: str | Path = DEFAULT_MODEL) -> ModelMetadata:
    """Read `<name>.json`, validate it and check the input shape against the frontend."""
    json_path = Path(path)
    if json_path.suffix == ".tflite":
        json_path = json_path.with_suffix(".json")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(
            f"cannot read model metadata {json_path}: {err.strerror}"
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(
            f"model metadata {json_path} is not valid JSON: {err}"
        ) from err
    if not isinstance(data, dict):
        raise ModelError(f"model metadata {json_path} is not a JSON object")

    labels = tuple(_require(data, "labels", list, json_path))
    frontend_data = _require(data, "frontend", dict, json_path)
    model_input = _require(data, "input", dict, json_path)
    thresholds = _require(data, "thresholds", dict, json_path)
    try:
        frontend = FrontendConfig.from_dict(frontend_data)
    except (TypeError, ValueError) as err:
        raise ModelError(f"model metadata {json_path}: bad 'frontend': {err}") from err
    sample_rate = int(_require(data, "sample_rate", int, json_path))
    if frontend.sample_rate != sample_rate:
        raise ModelError(
            f"model metadata {json_path}: sample_rate {sample_rate} differs from the frontend's "
            f"{frontend.sample_rate}"
        )
    missing = [label for label in labels if label not in thresholds]
    if missing:
        raise ModelError(
            f"model metadata {json_path}: no threshold for {', '.join(missing)}"
        )

    backbone = _backbone(data, json_path)
    meta = ModelMetadata(
        name=str(_require(data, "name", str, json_path)),
        version=str(_require(data, "version", str, json_path)),
        labels=labels,
        sample_rate=sample_rate,
        window_s=float(_require(data, "window_s", (int, float), json_path)),
        frontend=frontend,
        input_shape=tuple(
            int(d) for d in _require(model_input, "shape", list, json_path)
        ),
        input_dtype=str(_require(model_input, "dtype", str, json_path)),
        input_scale=float(model_input.get("scale", 0.0)),
        input_zero_point=int(model_input.get("zero_point", 0)),
        thresholds={str(k): float(v) for k, v in thresholds.items()},
        sha256=str(_require(data, "sha256", str, json_path)),
        model_path=json_path.with_suffix(".tflite"),
        raw=data,
        backbone=backbone,
        spread=_spread(data, json_path),
    )
    expected: tuple[int, ...]
    if backbone is None:
        expected = (1, meta.window_frames, frontend.n_mels, 1)
        made = f"{meta.window_frames} frames x {frontend.n_mels} mels per {meta.window_s} s window"
    else:
        if not 0 < backbone.patch_hop_s <= backbone.patch_s <= meta.window_s:
            raise ModelError(
                f"model metadata {json_path}: backbone needs 0 < patch_hop_s <= patch_s <= "
                f"window_s, got {backbone.patch_hop_s}, {backbone.patch_s}, {meta.window_s}"
            )
        expected = (1, meta.patches, backbone.features)
        made = (
            f"{meta.patches} patches x {backbone.features} features per "
            f"{meta.window_s} s window"
        )
    if meta.input_shape != expected:
        raise ModelError(
            f"model metadata {json_path}: input shape {list(meta.input_shape)} does not match "
            f"the frontend, which makes {made} (expected {list(expected)})"
        )
    return meta


def _spread(data: dict[str, Any], source: Path) -> float:
    """Read the optional `output.spread` (1: scores as the network gives them)."""
    output = data.get("output", {})
    spread = output.get("spread", 1.0) if isinstance(output, dict) else 1.0
    if (
        isinstance(spread, bool)
        or not isinstance(spread, (int, float))
        or not spread > 0
    ):
        raise ModelError(f"model metadata {source}: output spread must be a number > 0")
    return float(spread)


def _backbone(data: dict[str, Any], source: Path) -> Backbone | None:
    """Read the optional `backbone` object: file, sha256, patch_s, patch_hop_s, features."""
    if "backbone" not in data:
        return None
    part = _require(data, "backbone", dict, source)
    name = str(_require(part, "file", str, source))
    if Path(name).name != name:
        raise ModelError(f"model metadata {source}: backbone file must sit beside it")
    features = int(_require(part, "features", int, source))
    embedding = part.get("embedding", features)
    if (
        isinstance(embedding, bool)
        or not isinstance(embedding, int)
        or not 0 < embedding <= features
    ):
        raise ModelError(
            f"model metadata {source}: backbone embedding must be 1..{features} columns"
        )
    return Backbone(
        model_path=source.with_name(name),
        sha256=str(_require(part, "sha256", str, source)),
        patch_s=float(_require(part, "patch_s", (int, float), source)),
        patch_hop_s=float(_require(part, "patch_hop_s", (int, float), source)),
        features=features,
        embedding=embedding,
    )
