"""Elementwise operators (arithmetic, activations, softmax, (de)quantisation) and reductions."""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .context import Context, Step, dequantized_unary
from .flatbuffer import F32S
from .quantization import (
    dequantize_constant,
    dequantizer,
    identity,
    qparams,
    quantizer,
    sigmoid,
)

__all__ = ["BUILDERS"]

type _Array = npt.NDArray[Any]


def _reduction_axes(ctx: Context) -> tuple[int, ...]:
    rank = len(ctx.input(0).shape)
    axes = np.atleast_1d(ctx.constant(1, "axes")).astype(np.int64)
    if np.any((axes < -rank) | (axes >= rank)):
        raise ctx.error(f"axes {axes.tolist()} out of range for rank {rank}")
    return tuple(sorted({int(axis) % rank for axis in axes}))


_FLOAT_REDUCERS: Final[dict[str, Callable[..., Any]]] = {
    "mean": np.mean,
    "sum": np.sum,
    "max": np.max,
}


def _build_reduce(ctx: Context, kind: str) -> Step:
    keep_dims = ctx.node.options.flag(0)
    axes = _reduction_axes(ctx)
    x, out = ctx.input(0), ctx.output
    dtype = out.dtype
    if not x.quantized:
        function: Callable[..., Any] = _FLOAT_REDUCERS[kind]

        def reduce_float(values: _Array) -> _Array:
            return np.asarray(
                function(values, axis=axes, keepdims=keep_dims), dtype=dtype
            )

        return reduce_float, (ctx.index(0),)
    in_params, out_params = qparams(x), qparams(out)
    quantize = quantizer(out_params)
    if kind == "max":
        same = in_params == out_params
        dequantize = dequantizer(x)

        def reduce_max_quantized(values: _Array) -> _Array:
            result = np.asarray(np.max(values, axis=axes, keepdims=keep_dims))
            return result if same else quantize(dequantize(result))

        return reduce_max_quantized, (ctx.index(0),)
    count = math.prod(x.shape[axis] for axis in axes)
    real_scale = np.float32(in_params.scale) / (1 if kind == "sum" else count)
    zero_offset = np.float32(count * in_params.zero_point)

    def reduce_quantized(values: _Array) -> _Array:
        sums = np.asarray(np.sum(values, axis=axes, keepdims=keep_dims, dtype=np.int32))
        real = sums.astype(np.float32)
        real -= zero_offset
        real *= real_scale
        return quantize(real)

    return reduce_quantized, (ctx.index(0),)


def _build_mean(ctx: Context) -> Step:
    return _build_reduce(ctx, "mean")


def _build_sum(ctx: Context) -> Step:
    return _build_reduce(ctx, "sum")


def _build_reduce_max(ctx: Context) -> Step:
    return _build_reduce(ctx, "max")


def _build_binary(ctx: Context, function: Callable[[_Array, _Array], _Array]) -> Step:
    """Broadcasting elementwise op; a constant operand is dequantised once, here."""
    out = ctx.output
    activation = ctx.node.options.u8(
        0
    )  # fused_activation_function of Add/Sub/Mul/DivOptions
    if out.quantized:
        params = qparams(out)
        finish = quantizer(params, ctx.activation_bounds(activation, params))
    else:
        finish = ctx.float_activation(activation) or identity
    left, right = ctx.input(0), ctx.input(1)
    if left.quantized != out.quantized or right.quantized != out.quantized:
        raise ctx.error("mixes quantised and float operands")
    # Broadcasting can make a result far larger than either operand: check it first.
    ctx.expect_output_shape(np.broadcast_shapes(left.shape, right.shape))
    convert_left = dequantizer(left) if out.quantized else identity
    convert_right = dequantizer(right) if out.quantized else identity
    if ctx.is_constant(1):
        right_value = convert_right(ctx.constant(1, "operand"))

        def constant_right(a: _Array) -> _Array:
            return finish(np.asarray(function(convert_left(a), right_value)))

        return constant_right, (ctx.index(0),)
    if ctx.is_constant(0):
        left_value = convert_left(ctx.constant(0, "operand"))

        def constant_left(b: _Array) -> _Array:
            return finish(np.asarray(function(left_value, convert_right(b))))

        return constant_left, (ctx.index(1),)

    def binary(a: _Array, b: _Array) -> _Array:
        return finish(np.asarray(function(convert_left(a), convert_right(b))))

    return binary, (ctx.index(0), ctx.index(1))


def _build_add(ctx: Context) -> Step:
    return _build_binary(ctx, np.add)


def _build_sub(ctx: Context) -> Step:
    return _build_binary(ctx, np.subtract)


def _build_mul(ctx: Context) -> Step:
    return _build_binary(ctx, np.multiply)


def _build_div(ctx: Context) -> Step:
    return _build_binary(ctx, np.divide)


def _build_unary(ctx: Context, function: Callable[[_Array], _Array]) -> Step:
    """Elementwise op; 8-bit quantised inputs go through a 256-entry lookup table."""
    x, out = ctx.input(0), ctx.output
    if not x.quantized:
        return function, (ctx.index(0),)
    if x.dtype.itemsize != 1 or not out.quantized:
        return dequantized_unary(ctx, function)
    codes = np.arange(256, dtype=np.uint8).view(x.dtype)
    table = quantizer(qparams(out))(function(dequantizer(x)(codes)))

    def lookup(values: _Array) -> _Array:
        return table[values.view(np.uint8)]

    return lookup, (ctx.index(0),)


def _build_logistic(ctx: Context) -> Step:
    return _build_unary(ctx, sigmoid)


def _build_tanh(ctx: Context) -> Step:
    return _build_unary(ctx, np.tanh)


def _build_relu(ctx: Context) -> Step:
    return _build_unary(ctx, lambda values: np.maximum(values, np.float32(0)))


def _build_relu6(ctx: Context) -> Step:
    return _build_unary(
        ctx, lambda values: np.clip(values, np.float32(0), np.float32(6))
    )


def hard_swish(values: _Array) -> _Array:
    """Compute x * relu6(x + 3) / 6, MobileNetV3's cheap swish."""
    return values * np.clip(values + np.float32(3), np.float32(0), np.float32(6)) / 6


def _build_hard_swish(ctx: Context) -> Step:
    return _build_unary(ctx, hard_swish)


def _build_relu_n1_to_1(ctx: Context) -> Step:
    return _build_unary(
        ctx, lambda values: np.clip(values, np.float32(-1), np.float32(1))
    )


def _build_softmax(ctx: Context) -> Step:
    beta = np.float32(ctx.node.options.scalar(0, F32S, 0.0))

    def softmax(values: _Array) -> _Array:
        shifted = values - values.max(axis=-1, keepdims=True)
        if beta != 1:
            shifted *= beta
        exp: _Array = np.exp(shifted)
        exp /= exp.sum(axis=-1, keepdims=True)
        return exp

    if ctx.input(0).quantized:
        return dequantized_unary(ctx, softmax)
    return softmax, (ctx.index(0),)


def _build_quantize(ctx: Context) -> Step:
    return dequantized_unary(ctx, identity)


def _build_dequantize(ctx: Context) -> Step:
    x = ctx.input(0)
    if x.quantized and x.scales.size > 1:
        data = ctx.constant(0, "per-channel quantised input")
        value = dequantize_constant(x, data)

        def constant() -> _Array:
            return value

        return constant, ()
    return dequantized_unary(ctx, identity)


BUILDERS: Final[dict[str, Callable[[Context], Step]]] = {
    "ADD": _build_add,
    "DEQUANTIZE": _build_dequantize,
    "DIV": _build_div,
    "HARD_SWISH": _build_hard_swish,
    "LOGISTIC": _build_logistic,
    "MEAN": _build_mean,
    "MUL": _build_mul,
    "QUANTIZE": _build_quantize,
    "REDUCE_MAX": _build_reduce_max,
    "RELU": _build_relu,
    "RELU6": _build_relu6,
    "RELU_N1_TO_1": _build_relu_n1_to_1,
    "SOFTMAX": _build_softmax,
    "SUB": _build_sub,
    "SUM": _build_sum,
    "TANH": _build_tanh,
}
