"""Inference backends: LiteRT, tflite-runtime or the built-in numpy executor, behind one interface."""

from __future__ import annotations

from collections.abc import Callable
import importlib
import logging
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from .blas import single_threaded
from .model import ModelError, ModelMetadata, spread_scores
from .room import RoomHead
from .windows import clip_windows

__all__ = [
    "BACKENDS",
    "Backend",
    "EmbeddingCache",
    "ModelRuntime",
    "available_backends",
    "load_runtime",
]

_LOGGER = logging.getLogger(__name__)

type Backend = Literal["litert", "tflite", "numpy"]
BACKENDS: tuple[Backend, ...] = ("litert", "tflite", "numpy")


class _Interpreter(Protocol):
    def allocate_tensors(self) -> None: ...
    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def set_tensor(self, tensor_index: int, value: npt.NDArray[Any]) -> None: ...
    def invoke(self) -> None: ...
    def get_tensor(self, tensor_index: int) -> npt.NDArray[Any]: ...


def _check(content: bytes) -> None:
    """Hold every backend to the numpy executor's parser and memory caps (untrusted files)."""
    from .tflite import parse_model  # noqa: PLC0415 - heavy only when loading

    parse_model(content)


def _litert(content: bytes) -> _Interpreter:
    module = importlib.import_module("ai_edge_litert.interpreter")
    _check(content)
    interpreter: _Interpreter = module.Interpreter(model_content=content, num_threads=1)
    return interpreter


def _tflite(content: bytes) -> _Interpreter:
    module = importlib.import_module("tflite_runtime.interpreter")
    _check(content)
    interpreter: _Interpreter = module.Interpreter(model_content=content, num_threads=1)
    return interpreter


def _numpy(content: bytes) -> _Interpreter:
    from .tflite import NumpyInterpreter  # noqa: PLC0415 - heavy only when chosen

    return NumpyInterpreter(model_content=content)


_FACTORIES: dict[Backend, Callable[[bytes], _Interpreter]] = {
    "litert": _litert,
    "tflite": _tflite,
    "numpy": _numpy,
}
_MODULES: dict[Backend, str] = {
    "litert": "ai_edge_litert.interpreter",
    "tflite": "tflite_runtime.interpreter",
    "numpy": "numpy",
}


def available_backends() -> list[Backend]:
    """Backends whose package imports here, in order of preference."""
    found: list[Backend] = []
    for backend in BACKENDS:
        try:
            importlib.import_module(_MODULES[backend])
        except Exception:  # noqa: BLE001 - a broken install (e.g. NumPy ABI) is as good as absent
            continue
        found.append(backend)
    return found


class _Network:
    """One allocated interpreter with a single input and output, float in and float out."""

    def __init__(
        self, name: str, interpreter: _Interpreter, shape: tuple[int, ...], numpy: bool
    ) -> None:
        interpreter.allocate_tensors()
        (model_input,) = interpreter.get_input_details()
        (model_output,) = interpreter.get_output_details()
        found = tuple(int(d) for d in model_input["shape"])
        if found != shape:
            raise ModelError(
                f"model {name} takes input {list(found)} but its metadata says {list(shape)}"
            )
        self.outputs = int(np.prod(model_output["shape"]))
        self._interpreter = interpreter
        self._shape = shape
        self._numpy = numpy
        self._input_index = int(model_input["index"])
        self._output_index = int(model_output["index"])
        self._input_dtype = np.dtype(model_input["dtype"])
        self._input_quant = model_input["quantization"]
        self._output_quant = model_output["quantization"]

    def __call__(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        batch = values.reshape(self._shape)
        scale, zero_point = self._input_quant
        if self._input_dtype != np.float32:
            info = np.iinfo(self._input_dtype)
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
        self._interpreter.set_tensor(self._input_index, batch.astype(self._input_dtype))
        if self._numpy:
            with single_threaded():
                self._interpreter.invoke()
        else:
            self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output_index).reshape(-1)
        scale, zero_point = self._output_quant
        if out.dtype != np.float32:
            out = (out.astype(np.float32) - zero_point) * scale
        return out.astype(np.float32)


class EmbeddingCache:
    """Backbone rows of one stream by the frame their patch ends at.

    Consecutive windows share all but their newest patches, so each patch is embedded once.
    Frame numbers must never repeat within a stream (`WindowStream` counts on across resets).
    """

    def __init__(self, span: int) -> None:
        """Keep rows of patches ending within `span` frames of the newest."""
        self._span = span
        self._rows: dict[int, npt.NDArray[np.float32]] = {}
        self.room: RoomHead | None = None
        self.probabilities: dict[int, npt.NDArray[np.float32]] = {}
        """Per-patch probabilities corrected for `room` (a room that has learnt), by patch end."""

    def get(self, end: int) -> npt.NDArray[np.float32] | None:
        """Return the row of the patch ending at frame `end`, if embedded."""
        return self._rows.get(end)

    def put(self, end: int, row: npt.NDArray[np.float32]) -> None:
        """Remember a row and forget those too old to be in any later window."""
        self._rows[end] = row
        oldest = end - self._span
        for stale in [key for key in self._rows if key < oldest]:
            del self._rows[stale]
            self.probabilities.pop(stale, None)


class ModelRuntime:
    """Runs one model window (frames x mels) and returns one probability per label.

    With a backbone, each patch of the window becomes a feature row first and the model file
    is the head over those rows.
    """

    def __init__(
        self,
        meta: ModelMetadata,
        interpreter: _Interpreter,
        backend: Backend,
        backbone: _Interpreter | None = None,
    ) -> None:
        """Wrap allocated interpreters and check their inputs against the metadata."""
        self.meta = meta
        self.backend: Backend = backend
        numpy = backend == "numpy"
        self._head = _Network(
            meta.model_path.name, interpreter, meta.input_shape, numpy
        )
        if self._head.outputs != len(meta.labels):
            raise ModelError(
                f"model {meta.model_path.name} has {self._head.outputs} outputs but its "
                f"metadata lists {len(meta.labels)} labels"
            )
        self._backbone: _Network | None = None
        if meta.backbone is not None:
            if backbone is None:
                raise ModelError(f"model {meta.model_path.name} needs its backbone")
            shape = (1, meta.patch_frames, meta.frontend.n_mels, 1)
            self._backbone = _Network(
                meta.backbone.model_path.name, backbone, shape, numpy
            )
            if self._backbone.outputs != meta.backbone.features:
                raise ModelError(
                    f"backbone {meta.backbone.model_path.name} gives "
                    f"{self._backbone.outputs} features but the metadata says "
                    f"{meta.backbone.features}"
                )

    def new_cache(self) -> EmbeddingCache | None:
        """Make a cache for one stream's patch rows (None when the model has no backbone)."""
        if self.meta.backbone is None:
            return None
        return EmbeddingCache(self.meta.window_frames)

    def patch_ends(self, end: int) -> list[int]:
        """Frame numbers the window's patches end at, oldest first, for a window ending at `end`."""
        hop, count = self.meta.patch_hop_frames, self.meta.patches
        return [end - (count - 1 - index) * hop for index in range(count)]

    def window_rows(
        self,
        features: npt.NDArray[np.float32],
        *,
        end: int | None = None,
        cache: EmbeddingCache | None = None,
    ) -> npt.NDArray[np.float32]:
        """Backbone rows (patches, features) of one window's patches, oldest first.

        `end` (the stream frame the window ends at) and `cache` let a stream reuse the rows
        of patches an earlier window already embedded.
        """
        if self._backbone is None:
            raise ModelError(f"model {self.meta.model_path.name} has no backbone")
        meta = self.meta
        size, hop, count = meta.patch_frames, meta.patch_hop_frames, meta.patches
        keys: list[int | None] = (
            [None] * count
            if end is None or cache is None
            else list(self.patch_ends(end))
        )
        rows = []
        for index, key in enumerate(keys):
            row = None if key is None or cache is None else cache.get(key)
            if row is None:
                stop = len(features) - (count - 1 - index) * hop
                row = self._backbone(features[stop - size : stop])
                if key is not None and cache is not None:
                    cache.put(key, row)
            rows.append(row)
        return np.stack(rows)

    def embed_audio(
        self, audio: npt.NDArray[np.float32], hop_s: float
    ) -> npt.NDArray[np.float32]:
        """Backbone rows of a clip's patches every `hop_s`, as a stream at that hop would see them."""
        meta = self.meta
        if self._backbone is None or meta.backbone is None:
            raise ModelError(f"model {meta.model_path.name} has no backbone")
        _, patches = clip_windows(audio, meta.frontend, meta.backbone.patch_s, hop_s)
        return np.stack([self._backbone(patch) for patch in patches])

    def patch_probabilities(
        self, rows: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Return the head's raw probabilities (rows, labels) of each patch row on its own."""
        count = self.meta.patches
        return np.stack(
            [self._head(np.repeat(row[None, :], count, axis=0)) for row in rows]
        )

    def score_rows(
        self,
        rows: npt.NDArray[np.float32],
        room: RoomHead | None = None,
        *,
        ends: list[int] | None = None,
        cache: EmbeddingCache | None = None,
    ) -> npt.NDArray[np.float32]:
        """Probabilities (labels,) of a window's patch rows, corrected for `room` if given.

        With the patches' `ends` and the stream's `cache`, each patch is scored and corrected
        once (again only when the room changes).
        """
        if room is None or room.empty:
            return self._reported(self._head(rows))
        if ends is None or cache is None:
            adjusted = room.adjust(self.patch_probabilities(rows), rows)
        else:
            if cache.room is not room:
                cache.room = room
                cache.probabilities.clear()
            known = cache.probabilities
            for end, row in zip(ends, rows, strict=True):
                if end not in known:
                    patch = row[None, :]
                    known[end] = room.adjust(self.patch_probabilities(patch), patch)[0]
            adjusted = np.stack([known[end] for end in ends])
        return self._reported(np.asarray(adjusted.max(axis=0), np.float32))

    def predict(
        self,
        features: npt.NDArray[np.float32],
        *,
        end: int | None = None,
        cache: EmbeddingCache | None = None,
    ) -> npt.NDArray[np.float32]:
        """Probabilities, shape (labels,), for one window of log-mel features.

        `end` and `cache` are `window_rows`'.
        """
        if self._backbone is None:
            return self._reported(self._head(features))
        return self.score_rows(self.window_rows(features, end=end, cache=cache))

    def _reported(
        self, probabilities: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Scores on the scale the thresholds are set on (the metadata's output spread)."""
        if self.meta.spread == 1.0:
            return probabilities
        return spread_scores(probabilities, self.meta.spread)

    def predict_many(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities, shape (n, labels), for a stack of windows."""
        if len(windows) == 0:
            return np.empty((0, len(self.meta.labels)), dtype=np.float32)
        return np.stack([self.predict(window) for window in windows])


def load_runtime(
    meta: ModelMetadata, backend: Backend | Literal["auto"] = "auto"
) -> ModelRuntime:
    """Load the model with `backend`, or the first backend that imports when "auto"."""
    content = meta.read_model()
    backbone = meta.backbone.read_model() if meta.backbone is not None else None
    if backend != "auto":
        if backend not in _FACTORIES:
            raise ModelError(
                f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        candidates: list[Backend] = [backend]
    else:
        candidates = available_backends()
    errors: list[str] = []
    for name in candidates:
        try:
            interpreter = _FACTORIES[name](content)
            trunk = _FACTORIES[name](backbone) if backbone is not None else None
        except ImportError as err:
            errors.append(f"{name}: not installed ({err})")
            continue
        except Exception as err:  # noqa: BLE001 - every backend reports corruption differently
            raise ModelError(
                f"cannot load model {meta.model_path} with {name}: {err}"
            ) from err
        _LOGGER.debug("Loaded %s with the %s backend", meta.model_path.name, name)
        return ModelRuntime(meta, interpreter, name, trunk)
    raise ModelError(f"no runtime backend could load the model: {'; '.join(errors)}")
