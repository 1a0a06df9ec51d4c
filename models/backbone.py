"""EfficientAT mn04, the AudioSet-pretrained trunk, rebuilt in Keras from its numpy weights.

The weights (MIT, ../shared/models/efficientat_mn04) were trained on mel x time images; our
frontend yields time x mel frames, so every kernel is transposed rather than the input, and the
stride-2 layers pad explicitly to reproduce PyTorch's symmetric padding.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from baby_monitor_engine.frontend import FrontendConfig, LogScale
from baby_monitor_engine.pcm import SAMPLE_RATE

from .dataset import DEFAULT_DATA

__all__ = [
    "BLOCKS",
    "EMBEDDING",
    "FRONTEND",
    "LOGITS",
    "MN04",
    "PATCH_HOP_S",
    "PATCH_S",
    "Block",
    "backbone_tflite",
    "build_trunk",
    "load_weights",
]

type Floats = npt.NDArray[np.float32]

MN04 = DEFAULT_DATA.parent / "models" / "efficientat_mn04"
BN_EPS = 1e-3


@dataclass(frozen=True, slots=True)
class Block:
    """One inverted-residual block of the MobileNetV3 layout (channel counts read from weights)."""

    kernel: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


EMBEDDING = 384
"""Width of mn04's pooled feature map (the channels of its last convolution): a row's first part."""

BLOCKS = (
    Block(3, False, False, 1),
    Block(3, False, False, 2),
    Block(3, False, False, 1),
    Block(5, True, False, 2),
    Block(5, True, False, 1),
    Block(5, True, False, 1),
    Block(3, False, True, 2),
    Block(3, False, True, 1),
    Block(3, False, True, 1),
    Block(3, False, True, 1),
    Block(3, True, True, 1),
    Block(3, True, True, 1),
    Block(5, True, True, 2),
    Block(5, True, True, 1),
    Block(5, True, True, 1),
)


def load_weights(path: Path = MN04 / "mn04_as_weights.npz") -> dict[str, Floats]:
    """Read the PyTorch state dict as numpy arrays."""
    with np.load(path) as data:
        return {key: np.asarray(data[key], np.float32) for key in data.files}


def _fold(
    weights: dict[str, Floats], conv: str, bn: str, *, depthwise: bool
) -> tuple[Floats, Floats]:
    """Fold BatchNorm into the preceding bias-free convolution: (kernel, bias) in Keras layout."""
    w = weights[f"{conv}.weight"]
    gain = weights[f"{bn}.weight"] / np.sqrt(weights[f"{bn}.running_var"] + BN_EPS)
    bias = weights[f"{bn}.bias"] - weights[f"{bn}.running_mean"] * gain
    kernel = w * gain[:, None, None, None]
    # torch [out, in, mel, time] -> keras [time, mel, in, out] (depthwise: [time, mel, ch, 1])
    order = (3, 2, 0, 1) if depthwise else (3, 2, 1, 0)
    return np.ascontiguousarray(kernel.transpose(order)), bias.astype(np.float32)


def build_trunk(
    weights: dict[str, Floats], frames: int, *, logits: tuple[int, ...] = ()
) -> Any:
    """Keras model: log-mel patch (1, frames, 128, 1) -> embedding (1, 384) [, chosen logits].

    `logits` selects AudioSet classes whose classifier outputs are returned as a second output
    (the head may use the pretrained "Baby cry" and "Baby laughter" as priors).
    """
    import keras  # noqa: PLC0415

    layers = keras.layers
    inputs = keras.Input((frames, 128, 1), batch_size=1, name="log_mel")

    def conv(
        x: Any,
        conv_key: str,
        bn_key: str,
        *,
        act: str | None,
        stride: int = 1,
        depthwise: bool = False,
    ) -> Any:
        kernel, bias = _fold(weights, conv_key, bn_key, depthwise=depthwise)
        k = kernel.shape[0]
        if stride > 1:
            x = layers.ZeroPadding2D((k - 1) // 2)(x)
        padding = "valid" if stride > 1 else "same"
        if depthwise:
            layer = layers.DepthwiseConv2D(k, stride, padding, activation=act)
            x = layer(x)
            layer.set_weights([kernel, bias])
        else:
            layer = layers.Conv2D(kernel.shape[3], k, stride, padding, activation=act)
            x = layer(x)
            layer.set_weights([kernel, bias])
        return x

    def dense(x: Any, key: str, act: str | None) -> Any:
        layer = layers.Dense(weights[f"{key}.weight"].shape[0], activation=act)
        x = layer(x)
        layer.set_weights([weights[f"{key}.weight"].T, weights[f"{key}.bias"]])
        return x

    x = conv(inputs, "features.0.0", "features.0.1", act="hard_swish", stride=2)
    for index, block in enumerate(BLOCKS, start=1):
        prefix = f"features.{index}.block"
        act = "hard_swish" if block.hard_swish else "relu"
        part = 0
        source = x
        if (
            f"{prefix}.0.0.weight" in weights
            and weights[f"{prefix}.0.0.weight"].shape[2] == 1
        ):
            x = conv(x, f"{prefix}.0.0", f"{prefix}.0.1", act=act)
            part = 1
        x = conv(
            x,
            f"{prefix}.{part}.0",
            f"{prefix}.{part}.1",
            act=act,
            stride=block.stride,
            depthwise=True,
        )
        part += 1
        if block.squeeze_excite:
            se = f"{prefix}.{part}.conc_se_layers.0"
            scale = layers.GlobalAveragePooling2D(keepdims=True)(x)
            scale = dense(scale, f"{se}.fc1", "relu")
            scale = dense(scale, f"{se}.fc2", "sigmoid")
            x = layers.Multiply()([x, scale])
            part += 1
        x = conv(x, f"{prefix}.{part}.0", f"{prefix}.{part}.1", act=None)
        if block.stride == 1 and source.shape[-1] == x.shape[-1]:
            x = layers.Add()([source, x])
    x = conv(x, "features.16.0", "features.16.1", act="hard_swish")
    embedding = layers.GlobalAveragePooling2D(name="embedding")(x)
    if not logits:
        return keras.Model(inputs, embedding, name="mn04_trunk")
    hidden = dense(embedding, "classifier.2", "hard_swish")
    chosen = list(logits)
    last = layers.Dense(len(chosen), name="audioset_logits")
    out = last(hidden)
    last.set_weights(
        [weights["classifier.5.weight"][chosen].T, weights["classifier.5.bias"][chosen]]
    )
    return keras.Model(inputs, [embedding, out], name="mn04_trunk")


# AudioSet classes whose pretrained logits ride along with the embedding: child speech,
# babbling, screaming, the laughter family, the crying family and singing — priors for the head.
LOGITS = (3, 6, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27)
PATCH_S = 2.0
"""Seconds of audio per backbone patch (the length EfficientAT was probed best at)."""
PATCH_HOP_S = 1.0
"""Seconds between patches: each patch is embedded once, a 7-s window holds six."""
FRONTEND = FrontendConfig(
    sample_rate=SAMPLE_RATE,
    n_fft=512,
    win_length=400,
    hop_length=160,
    n_mels=128,
    fmin=0.0,
    fmax=15000.0,
    # EfficientAT's (ln(mel + 1e-5) + 4.5) / 5, written in decibels
    log=LogScale(
        floor=1e-5,
        offset=-45.0 / math.log(10.0),
        scale=math.log(10.0) / 50.0,
        add_floor=True,
    ),
    mel="efficientat",
)


@functools.cache
def backbone_tflite(weights_path: Path = MN04 / "mn04_as_weights.npz") -> bytes:
    """Export the trunk as a float32 TFLite flatbuffer: (1, patch frames, 128, 1) -> embedding + logits."""
    import keras  # noqa: PLC0415

    from .export import export_tflite  # noqa: PLC0415

    weights = load_weights(weights_path)
    trunk = build_trunk(weights, FRONTEND.frames_for(PATCH_S), logits=LOGITS)
    joined = keras.layers.Concatenate(name="patch_features")(trunk.outputs)
    return export_tflite(keras.Model(trunk.inputs, joined, name="mn04_patch"))
