"""Model runtimes: LiteRT, tflite-runtime or the built-in numpy executor, behind one interface."""

from __future__ import annotations

from collections.abc import Callable
import importlib
import logging
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from .blas import single_threaded
from .model import ModelError, ModelMetadata

__all__ = ["BACKENDS", "Backend", "ModelRuntime", "available_backends", "load_runtime"]

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


class ModelRuntime:
    """Runs one model window (frames x mels) and returns one probability per label."""

    def __init__(
        self, meta: ModelMetadata, interpreter: _Interpreter, backend: Backend
    ) -> None:
        """Wrap an allocated interpreter and check its input against the metadata."""
        self.meta = meta
        self.backend: Backend = backend
        self._interpreter = interpreter
        interpreter.allocate_tensors()
        (model_input,) = interpreter.get_input_details()
        (model_output,) = interpreter.get_output_details()
        shape = tuple(int(d) for d in model_input["shape"])
        if shape != meta.input_shape:
            raise ModelError(
                f"model {meta.model_path.name} takes input {list(shape)} but its metadata says "
                f"{list(meta.input_shape)}"
            )
        n_out = int(np.prod(model_output["shape"]))
        if n_out != len(meta.labels):
            raise ModelError(
                f"model {meta.model_path.name} has {n_out} outputs but its metadata lists "
                f"{len(meta.labels)} labels"
            )
        self._numpy = backend == "numpy"
        self._input_index = int(model_input["index"])
        self._output_index = int(model_output["index"])
        self._input_dtype = np.dtype(model_input["dtype"])
        self._input_quant = model_input["quantization"]
        self._output_quant = model_output["quantization"]

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities, shape (labels,), for one window of log-mel features."""
        batch = features.reshape(self.meta.input_shape)
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
        except ImportError as err:
            errors.append(f"{name}: not installed ({err})")
            continue
        except Exception as err:  # noqa: BLE001 - every backend reports corruption differently
            raise ModelError(
                f"cannot load model {meta.model_path} with {name}: {err}"
            ) from err
        _LOGGER.debug("Loaded %s with the %s backend", meta.model_path.name, name)
        return ModelRuntime(meta, interpreter, name)
    raise ModelError(f"no runtime backend could load the model: {'; '.join(errors)}")
