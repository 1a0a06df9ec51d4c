"""Numeric helpers: TFLite's rounding, (de)quantisers, per-channel scales and activations.

Quantised (int8 / uint8) operators are computed in float from integer accumulators and
requantised with TFLite's rounding (half away from zero) and clamping, which matches TFLite to
within one quantisation step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .flatbuffer import Tensor
from .schema import (
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    ACT_RELU_N1_TO_1,
    ACT_TANH,
    TFLiteFormatError,
)

__all__ = [
    "FLOAT_ACTIVATIONS",
    "QParams",
    "centred_weights",
    "channel_scales",
    "dequantize_constant",
    "dequantizer",
    "identity",
    "qparams",
    "quantizer",
    "sigmoid",
]

type _Array = npt.NDArray[Any]
type _F32 = npt.NDArray[np.float32]


_JUST_BELOW_HALF: Final = np.nextafter(np.float32(0.5), np.float32(0))


def _round_half_away(values: _F32) -> _F32:
    """Round like C's round() (ties away from zero), as TFLite's quantised kernels do.

    Adding the largest float32 below 0.5 before truncating is exact for every float32, ties
    included, and three times faster than splitting off the fraction with np.modf.
    """
    result: _F32 = np.copysign(_JUST_BELOW_HALF, values)
    result += values
    np.trunc(result, out=result)
    return result


def _round_scalar(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


@dataclass(frozen=True, slots=True)
class QParams:
    """Per-tensor affine quantisation of an activation tensor."""

    scale: float
    zero_point: int
    dtype: np.dtype[Any]
    qmin: int
    qmax: int

    def quantize_scalar(self, value: float) -> int:
        """Quantise one real value, without clamping."""
        return self.zero_point + _round_scalar(
            float(np.float32(value) / np.float32(self.scale))
        )


def qparams(tensor: Tensor) -> QParams:
    """Return the per-tensor quantisation of a quantised activation tensor."""
    if not tensor.quantized:
        raise TFLiteFormatError(
            f"{tensor.describe()} should be quantised but has no scale"
        )
    if tensor.scales.size != 1:
        raise TFLiteFormatError(
            f"{tensor.describe()} has per-channel quantisation, which is only supported for "
            "constant weights"
        )
    info = np.iinfo(tensor.dtype)
    zero_point = int(tensor.zero_points[0]) if tensor.zero_points.size else 0
    return QParams(
        float(tensor.scales[0]), zero_point, tensor.dtype, int(info.min), int(info.max)
    )


def quantizer(
    params: QParams, bounds: tuple[int, int] | None = None
) -> Callable[[_Array], _Array]:
    """Map float32 values to `params`, clamped to `bounds` (default: the whole integer range)."""
    scale = np.float32(params.scale)
    zero_point = np.float32(params.zero_point)
    low, high = bounds or (params.qmin, params.qmax)
    low_f, high_f = np.float32(low), np.float32(high)
    dtype = params.dtype

    def quantize(values: _Array) -> _Array:
        result = _round_half_away(np.divide(values, scale, dtype=np.float32))
        result += zero_point
        np.clip(result, low_f, high_f, out=result)
        return result.astype(dtype)

    return quantize


def identity(values: _Array) -> _Array:
    """Return `values` unchanged: the no-op converter."""
    return values


def _to_float32(values: _Array) -> _Array:
    return values.astype(np.float32)


def dequantizer(tensor: Tensor) -> Callable[[_Array], _Array]:
    """Map a runtime value of `tensor` to float32 (identity for float32 tensors)."""
    if not tensor.quantized:
        return identity if tensor.dtype == np.float32 else _to_float32
    params = qparams(tensor)
    scale = np.float32(params.scale)
    zero_point = np.float32(params.zero_point)

    def dequantize(values: _Array) -> _Array:
        result = values.astype(np.float32)
        result -= zero_point
        result *= scale
        return result

    return dequantize


def _channel_shape(tensor: Tensor, count: int) -> list[int]:
    shape = [1] * len(tensor.shape)
    if count > 1:
        shape[tensor.quantized_dimension] = count
    return shape


def dequantize_constant(tensor: Tensor, data: _Array) -> _F32:
    """Float32 value of a constant, per-channel quantisation included."""
    if not tensor.quantized:
        return data.astype(np.float32)
    shape = _channel_shape(tensor, tensor.scales.size)
    scales = tensor.scales.reshape(shape)
    zero_points = (
        tensor.zero_points.reshape(_channel_shape(tensor, tensor.zero_points.size))
        if tensor.zero_points.size
        else np.zeros(1)
    )
    return ((data.astype(np.float64) - zero_points) * scales).astype(np.float32)


def centred_weights(tensor: Tensor, data: _Array) -> _F32:
    """Integer-valued float32 weights with their zero points removed."""
    if not tensor.zero_points.size:
        return data.astype(np.float32)
    zero_points = tensor.zero_points.reshape(
        _channel_shape(tensor, tensor.zero_points.size)
    )
    return (data.astype(np.int64) - zero_points).astype(np.float32)


def channel_scales(tensor: Tensor, channels: int, what: str) -> npt.NDArray[np.float64]:
    """Return one weight scale per output channel, broadcasting a per-tensor scale."""
    scales = tensor.scales.astype(np.float64)
    if scales.size == 1:
        return np.full(channels, scales[0])
    if scales.size != channels:
        raise TFLiteFormatError(
            f"{what} {tensor.describe()} has {scales.size} scales for {channels} channels"
        )
    return scales


def _relu(values: _Array) -> _Array:
    return np.maximum(values, 0, out=values)


def _relu_n1_to_1(values: _Array) -> _Array:
    return np.clip(values, -1, 1, out=values)


def _relu6(values: _Array) -> _Array:
    return np.clip(values, 0, 6, out=values)


def _tanh(values: _Array) -> _Array:
    return np.tanh(values, out=values)


FLOAT_ACTIVATIONS: Final[dict[int, Callable[[_Array], _Array] | None]] = {
    ACT_NONE: None,
    ACT_RELU: _relu,
    ACT_RELU_N1_TO_1: _relu_n1_to_1,
    ACT_RELU6: _relu6,
    ACT_TANH: _tanh,
}


def sigmoid(values: _Array) -> _Array:
    """Return the logistic function of `values`."""
    # tanh form: no overflow warnings for large negative inputs.
    result = np.tanh(values * np.float32(0.5))
    result *= np.float32(0.5)
    result += np.float32(0.5)
    return result
