"""Three backends, one interface: LiteRT, tflite-runtime and the numpy executor agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
import sys

import numpy as np
import pytest

from baby_monitor_engine.audio import decode_file
from baby_monitor_engine.backends import ModelRuntime, available_backends, load_runtime
from baby_monitor_engine.frontend import FrontendConfig
from baby_monitor_engine.model import ModelMetadata
from baby_monitor_engine.pipeline import SoundPipeline
from baby_monitor_engine.windows import clip_windows


def test_numpy_executor_matches_litert_on_real_windows(
    meta: ModelMetadata,
    numpy_runtime: ModelRuntime,
    litert_runtime: ModelRuntime,
    validation_clip: Callable[[str, str], Path],
) -> None:
    """On windows of a cry, a laugh and speech, the float model agrees within 1e-4."""
    windows = np.concatenate(
        [
            clip_windows(
                decode_file(validation_clip(label, source)), meta.frontend, 7.0, 1.0
            )[1]
            for label, source in (
                ("cry", "donateacry"),
                ("laughter", "esc50"),
                ("other", "deeply_korean_read"),
            )
        ]
    )
    ours, reference = (
        numpy_runtime.predict_many(windows),
        litert_runtime.predict_many(windows),
    )
    assert ours.shape == (len(windows), 2)
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert reference.max() > 0.5 > reference.min()  # the windows are not all alike


def test_auto_prefers_litert(meta: ModelMetadata) -> None:
    """Where LiteRT imports, `auto` uses it."""
    assert available_backends()[0] == "litert"
    assert load_runtime(meta).backend == "litert"


def test_auto_falls_back_to_numpy_without_litert(
    meta: ModelMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither LiteRT nor tflite-runtime importable (HA OS), `auto` runs the numpy executor."""
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    assert available_backends() == ["numpy"]
    assert load_runtime(meta).backend == "numpy"


def test_asking_for_a_missing_backend_says_it_is_not_installed(
    meta: ModelMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--backend tflite` where tflite-runtime is absent names the backend and the reason."""
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    from baby_monitor_engine.model import ModelError

    with pytest.raises(ModelError, match="tflite: not installed"):
        load_runtime(meta, "tflite")


def test_predictions_are_probabilities(
    numpy_runtime: ModelRuntime, meta: ModelMetadata
) -> None:
    """Any input window, even extreme values, gives two probabilities in [0, 1]."""
    window = np.full((meta.window_frames, meta.frontend.n_mels), 50.0, np.float32)
    probs = numpy_runtime.predict(window)
    assert probs.shape == (2,) and ((probs >= 0) & (probs <= 1)).all()


class _Int8Interpreter:
    """An int8-quantised interpreter double: output = quantised mean of the input."""

    def __init__(
        self, model_content: bytes | None = None, num_threads: int = 1
    ) -> None:
        self._value = np.zeros((1, 2), np.int8)

    def allocate_tensors(self) -> None:
        """Nothing to allocate."""

    def get_input_details(self) -> list[dict]:
        return [
            {
                "index": 0,
                "shape": np.array([1, 280, 64, 1]),
                "dtype": np.int8,
                "quantization": (0.5, 10),
            }
        ]

    def get_output_details(self) -> list[dict]:
        return [
            {
                "index": 1,
                "shape": np.array([1, 2]),
                "dtype": np.int8,
                "quantization": (1 / 256, -128),
            }
        ]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        assert value.dtype == np.int8
        self._input = value

    def invoke(self) -> None:
        level = int(np.clip(self._input.astype(np.int32).mean() * 2 - 128, -128, 127))
        self._value = np.array([[level, -128]], np.int8)

    def get_tensor(self, index: int) -> np.ndarray:
        return self._value


def test_quantised_models_are_fed_and_read_in_their_scale(
    meta: ModelMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An int8 model (here through the tflite-runtime slot) gets quantised input, float output."""
    import types

    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = _Int8Interpreter  # type: ignore[attr-defined]
    monkeypatch.setitem(
        sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime")
    )
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)
    # one network over the whole window, as models without a backbone are
    whole_window = replace(
        meta,
        backbone=None,
        frontend=FrontendConfig(),
        input_shape=(1, 280, 64, 1),
        spread=1.0,
    )
    runtime = load_runtime(whole_window, "tflite")
    assert runtime.backend == "tflite"
    window = np.full((280, 64), 20.0, np.float32)  # quantised: 20 / 0.5 + 10 = 50
    np.testing.assert_allclose(runtime.predict(window), [(100 - 128 + 128) / 256, 0.0])
    assert runtime.predict_many(np.empty((0, 280, 64), np.float32)).shape == (0, 2)


def test_a_stream_embeds_each_patch_once(
    meta: ModelMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows a second apart share five of six patches: each new window runs one patch.

    The scores are those of each window scored on its own.
    """
    from baby_monitor_engine.tflite import NumpyInterpreter

    runtime = load_runtime(meta, "numpy")
    calls: list[int] = []
    invoke = NumpyInterpreter.invoke

    def counted(self: NumpyInterpreter) -> None:
        calls.append(1)
        invoke(self)

    monkeypatch.setattr(NumpyInterpreter, "invoke", counted)
    listener = SoundPipeline(runtime, hop_s=1.0)
    audio = np.random.default_rng(0).normal(0, 0.05, 20 * 16000).astype(np.float32)
    scored = listener.feed(audio)
    windows = len(scored)
    assert windows == 14  # ending at 7, 8, ... 20 s
    # six patches for the first window, one for each later one, and the head every window
    assert len(calls) == meta.patches + (windows - 1) + windows
    _, stacked = clip_windows(audio, meta.frontend, meta.window_s, 1.0)
    alone = runtime.predict_many(stacked)
    together = np.array(
        [[s.probabilities[label] for label in meta.labels] for s in scored]
    )
    np.testing.assert_allclose(together, alone, atol=1e-6)
