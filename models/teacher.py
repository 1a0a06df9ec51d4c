"""YAMNet, the peer we measure against and may distil from (../shared/models, never shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from .dataset import DEFAULT_DATA

__all__ = ["YAMNET", "YAMNET_CLASSES", "YamNet"]

type Floats = npt.NDArray[np.float32]

YAMNET = DEFAULT_DATA.parent / "models" / "yamnet.tflite"
YAMNET_CLASSES = {"cry": (19, 20, 21), "laughter": (13, 14, 15, 16, 17, 18)}
FRAME = 15600  # 0.975 s at 16 kHz


class YamNet:
    """YAMNet TFLite on LiteRT, one thread."""

    def __init__(self, path: Path = YAMNET) -> None:
        """Load the model."""
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def frames(self, audio: Floats) -> Floats:
        """Class scores of each consecutive 0.975-s frame (the last one zero-padded)."""
        n = max(1, -(-audio.size // FRAME))
        padded = np.zeros(n * FRAME, np.float32)
        padded[: audio.size] = audio
        rows = []
        for chunk in padded.reshape(n, FRAME):
            self._interpreter.set_tensor(self._input, chunk[None])
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output)[0])
        return np.stack(rows)

    def score_clip(self, audio: Floats) -> Floats:
        """Score [cry, laughter] as Frigate does: max over frames of each label's classes."""
        frames = self.frames(audio)
        return np.array(
            [
                frames[:, list(YAMNET_CLASSES[label])].max()
                for label in ("cry", "laughter")
            ],
            np.float32,
        )

    def soft_targets(self, audio: Floats) -> Floats:
        """All 521 class scores of a window, max over its frames (what the student imitates)."""
        return np.asarray(self.frames(audio).max(axis=0), np.float32)
