"""Operators built on sliding windows and matrix products: convolutions, pooling, matmuls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import Any, Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import numpy.typing as npt

from .context import Context, Kernel, Step, dequantized_unary
from .flatbuffer import Tensor
from .quantization import (
    QParams,
    centred_weights,
    channel_scales,
    dequantize_constant,
    dequantizer,
    identity,
    qparams,
    quantizer,
)
from .schema import PADDING_SAME, PADDING_VALID

__all__ = ["BUILDERS"]

type _Array = npt.NDArray[Any]
type _F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Output size and padding of a 2-D window operator, TFLite's SAME/VALID rules."""

    out_h: int
    out_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int


def _axis_geometry(
    ctx: Context, size: int, *, kernel: int, stride: int, dilation: int, padding: int
) -> tuple[int, int, int]:
    if stride < 1 or dilation < 1 or kernel < 1:
        raise ctx.error(
            f"invalid kernel {kernel}, stride {stride} or dilation {dilation}"
        )
    effective = (kernel - 1) * dilation + 1
    if padding == PADDING_SAME:
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, total // 2, total - total // 2
    if padding == PADDING_VALID:
        out = (size - effective) // stride + 1
        if out < 1:
            raise ctx.error(
                f"VALID window of {effective} does not fit an input of {size}"
            )
        return out, 0, 0
    raise ctx.error(f"padding type {padding}")


def _geometry(
    ctx: Context,
    input_hw: tuple[int, int],
    *,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: int,
) -> _Geometry:
    out_h, top, bottom = _axis_geometry(
        ctx,
        input_hw[0],
        kernel=kernel[0],
        stride=stride[0],
        dilation=dilation[0],
        padding=padding,
    )
    out_w, left, right = _axis_geometry(
        ctx,
        input_hw[1],
        kernel=kernel[1],
        stride=stride[1],
        dilation=dilation[1],
        padding=padding,
    )
    return _Geometry(
        out_h, out_w, top, bottom, left, right, *kernel, *stride, *dilation
    )


def _window_loader(
    ctx: Context,
    shape: tuple[int, ...],
    geom: _Geometry,
    fill: float,
    dtype: npt.DTypeLike,
    repeat: int = 1,
) -> Callable[[_Array], _Array]:
    """Copy an NHWC input into a persistent padded buffer; return its (n, oh, ow, c, kh, kw) windows.

    The windows are a strided view of the buffer built once here, so a call costs one copy.
    """
    batch, height, width, channels = shape
    padded_shape = (
        batch,
        height + geom.pad_top + geom.pad_bottom,
        width + geom.pad_left + geom.pad_right,
        channels * repeat,
    )
    ctx.reserve(
        math.prod(padded_shape) * np.dtype(dtype).itemsize,
        f"padded input of shape {list(padded_shape)}",
    )
    padded = np.full(padded_shape, fill, dtype=dtype)
    interior = padded[
        :, geom.pad_top : geom.pad_top + height, geom.pad_left : geom.pad_left + width
    ]
    span = (
        (geom.kernel_h - 1) * geom.dilation_h + 1,
        (geom.kernel_w - 1) * geom.dilation_w + 1,
    )
    windows: _Array = sliding_window_view(
        padded, span, axis=(1, 2)
    )[  # type: ignore[call-overload]
        :, :: geom.stride_h, :: geom.stride_w, :, :: geom.dilation_h, :: geom.dilation_w
    ][:, : geom.out_h, : geom.out_w]

    if repeat == 1:

        def load(values: _Array) -> _Array:
            interior[...] = values
            return windows

    else:

        def load(values: _Array) -> _Array:
            interior[...] = np.repeat(values, repeat, axis=3)
            return windows

    return load


def _conv_epilogue(
    ctx: Context,
    x: Tensor,
    *,
    weights: Tensor,
    bias_position: int,
    activation: int,
    weight_sums: _F32,
) -> tuple[Callable[[_F32], _Array], float]:
    """Bias, requantisation and activation after a conv/FC matmul, and the input padding value.

    Quantised inputs are fed raw (not zero-point-corrected) to the matmul; the zero point is
    folded into the bias through the per-channel sums of the weights.
    """
    out = ctx.output
    channels = weight_sums.shape[0]
    if not x.quantized:
        activate = ctx.float_activation(activation)
        bias = (
            dequantize_constant(
                ctx.input(bias_position), ctx.constant(bias_position, "bias")
            )
            if ctx.has_input(bias_position)
            else None
        )

        def finish_float(acc: _F32) -> _Array:
            if bias is not None:
                acc += bias
            return activate(acc) if activate is not None else acc

        return finish_float, 0.0

    x_params = qparams(x)
    out_params = qparams(out)
    w_scales = channel_scales(weights, channels, "filter")
    multiplier = (
        np.float64(np.float32(x_params.scale)) * w_scales / np.float64(out_params.scale)
    )
    bias_q = (
        ctx.constant(bias_position, "bias").astype(np.float64).reshape(-1)
        if ctx.has_input(bias_position)
        else np.zeros(channels)
    )
    # Integer-valued, so adding it to the (exact) accumulator is exact below 2**24.
    offset = (bias_q - x_params.zero_point * weight_sums.astype(np.float64)).astype(
        np.float32
    )
    multiplier_f = multiplier.astype(np.float32)
    zero_point = np.float32(out_params.zero_point)
    low, high = ctx.activation_bounds(activation, out_params)
    low_f, high_f = np.float32(low), np.float32(high)
    dtype = out_params.dtype

    def finish_quantized(acc: _F32) -> _Array:
        # XNNPACK's order: one float rounding of (accumulator + bias) * scale, then
        # round-half-even (an exact tie never occurs in practice), then the zero point.
        acc += offset
        acc *= multiplier_f
        np.rint(acc, out=acc)
        acc += zero_point
        np.clip(acc, low_f, high_f, out=acc)
        return acc.astype(dtype)

    return finish_quantized, float(x_params.zero_point)


def _weights(ctx: Context, x: Tensor, position: int, role: str) -> _F32:
    """Float32 weights: raw integers for quantised inputs, dequantised values for float inputs."""
    tensor = ctx.input(position)
    data = ctx.constant(position, role)
    if x.quantized:
        if not tensor.quantized:
            raise ctx.error(f"quantised input with an unquantised {role}")
        return centred_weights(tensor, data)
    return dequantize_constant(tensor, data)


def _build_conv_2d(ctx: Context) -> Step:
    opts = ctx.node.options
    padding, stride_w, stride_h = opts.u8(0), opts.i32(1), opts.i32(2)
    activation, dilation_w, dilation_h = opts.u8(3), opts.i32(4, 1), opts.i32(5, 1)
    x = ctx.input(0)
    batch, height, width, channels = ctx.rank(0, 4)
    out_channels, kernel_h, kernel_w, in_channels = ctx.rank(1, 4)
    if in_channels != channels:
        raise ctx.error(
            f"grouped convolution ({channels} input channels, filter {in_channels})"
        )
    weights = _weights(ctx, x, 1, "filter")
    matrix = np.ascontiguousarray(weights.reshape(out_channels, -1).T)
    finish, fill = _conv_epilogue(
        ctx,
        x,
        weights=ctx.input(1),
        bias_position=2,
        activation=activation,
        weight_sums=matrix.sum(axis=0),
    )
    geom = _geometry(
        ctx,
        (height, width),
        kernel=(kernel_h, kernel_w),
        stride=(stride_h, stride_w),
        dilation=(dilation_h, dilation_w),
        padding=padding,
    )
    out_shape = (batch, geom.out_h, geom.out_w, out_channels)
    ctx.expect_output_shape(out_shape)
    pads = geom.pad_top + geom.pad_bottom + geom.pad_left + geom.pad_right
    if kernel_h == kernel_w == 1 and not pads:

        def pointwise(values: _Array) -> _Array:
            rows = (
                values[:, ::stride_h, ::stride_w]
                .reshape(-1, channels)
                .astype(np.float32, copy=False)
            )
            return finish(rows @ matrix).reshape(out_shape)

        return pointwise, (ctx.index(0),)

    load = _window_loader(ctx, x.shape, geom, fill, np.float32)
    columns = kernel_h * kernel_w * channels
    ctx.reserve(
        batch * geom.out_h * geom.out_w * columns * 4,
        f"{batch * geom.out_h * geom.out_w} x {columns} matrix of patches",
    )

    def conv(values: _Array) -> _Array:
        # (n, oh, ow, c, kh, kw) -> rows of (kh, kw, c) patches: TFLite's filter order.
        patches = load(values).transpose(0, 1, 2, 4, 5, 3).reshape(-1, columns)
        return finish(patches @ matrix).reshape(out_shape)

    return conv, (ctx.index(0),)


def _build_depthwise_conv_2d(ctx: Context) -> Step:
    opts = ctx.node.options
    padding, stride_w, stride_h = opts.u8(0), opts.i32(1), opts.i32(2)
    multiplier, activation = opts.i32(3), opts.u8(4)
    dilation_w, dilation_h = opts.i32(5, 1), opts.i32(6, 1)
    x = ctx.input(0)
    _, height, width, channels = ctx.rank(0, 4)
    _, kernel_h, kernel_w, out_channels = ctx.rank(1, 4)
    if out_channels % channels:
        raise ctx.error(f"{out_channels} output channels for {channels} input channels")
    if multiplier and multiplier != out_channels // channels:
        raise ctx.error(f"depth_multiplier {multiplier} does not match the filter")
    weights = np.ascontiguousarray(_weights(ctx, x, 1, "filter")[0])  # (kh, kw, c * m)
    finish, fill = _conv_epilogue(
        ctx,
        x,
        weights=ctx.input(1),
        bias_position=2,
        activation=activation,
        weight_sums=weights.sum(axis=(0, 1), dtype=np.float32),
    )
    geom = _geometry(
        ctx,
        (height, width),
        kernel=(kernel_h, kernel_w),
        stride=(stride_h, stride_w),
        dilation=(dilation_h, dilation_w),
        padding=padding,
    )
    ctx.expect_output_shape((x.shape[0], geom.out_h, geom.out_w, out_channels))
    load = _window_loader(
        ctx, x.shape, geom, fill, np.float32, repeat=out_channels // channels
    )

    def depthwise(values: _Array) -> _Array:
        return finish(np.einsum("nhwckl,klc->nhwc", load(values), weights))

    return depthwise, (ctx.index(0),)


def _build_fully_connected(ctx: Context) -> Step:
    opts = ctx.node.options
    activation, weights_format, keep_num_dims = opts.u8(0), opts.u8(1), opts.flag(2)
    if weights_format:
        raise ctx.error(f"weights format {weights_format} (only DEFAULT is supported)")
    x = ctx.input(0)
    out_features, in_features = ctx.rank(1, 2)
    size = math.prod(x.shape)
    if size % in_features:
        raise ctx.error(
            f"input of shape {list(x.shape)} is not a multiple of {in_features}"
        )
    matrix = np.ascontiguousarray(_weights(ctx, x, 1, "weights").T)
    finish, _ = _conv_epilogue(
        ctx,
        x,
        weights=ctx.input(1),
        bias_position=2,
        activation=activation,
        weight_sums=matrix.sum(axis=0),
    )
    out_shape = (
        (*x.shape[:-1], out_features)
        if keep_num_dims
        else (size // in_features, out_features)
    )
    ctx.expect_output_shape(out_shape)

    def fully_connected(values: _Array) -> _Array:
        rows = values.reshape(-1, in_features).astype(np.float32, copy=False)
        return finish(rows @ matrix).reshape(out_shape)

    return fully_connected, (ctx.index(0),)


def _build_pool(ctx: Context, average: bool) -> Step:
    opts = ctx.node.options
    padding, stride_w, stride_h = opts.u8(0), opts.i32(1), opts.i32(2)
    filter_w, filter_h, activation = opts.i32(3), opts.i32(4), opts.u8(5)
    x, out = ctx.input(0), ctx.output
    _, height, width, _ = ctx.rank(0, 4)
    geom = _geometry(
        ctx,
        (height, width),
        kernel=(filter_h, filter_w),
        stride=(stride_h, stride_w),
        dilation=(1, 1),
        padding=padding,
    )
    ctx.expect_output_shape((x.shape[0], geom.out_h, geom.out_w, x.shape[3]))
    if not x.quantized:
        activate = ctx.float_activation(activation)
        return _float_pool(ctx, geom, average, activate), (ctx.index(0),)
    params = qparams(out)
    bounds = ctx.activation_bounds(activation, params)
    if qparams(x) != params:
        return dequantized_unary(ctx, _float_pool(ctx, geom, average, None), bounds)
    return _quantized_pool(ctx, geom, average, params, bounds), (ctx.index(0),)


def _window_counts(ctx: Context, geom: _Geometry) -> _F32:
    """Count the non-padding elements under each window, as shape (1, oh, ow, 1)."""
    shape = ctx.input(0).shape
    ones = np.ones((1, shape[1], shape[2], 1), dtype=np.float32)
    counts: _F32 = _window_loader(ctx, ones.shape, geom, 0.0, np.float32)(ones).sum(
        axis=(4, 5)
    )
    return counts


def _float_pool(
    ctx: Context,
    geom: _Geometry,
    average: bool,
    activate: Callable[[_Array], _Array] | None,
) -> Kernel:
    shape = ctx.input(0).shape
    if average:
        load = _window_loader(ctx, shape, geom, 0.0, np.float32)
        counts = _window_counts(ctx, geom)

        def average_pool(values: _Array) -> _Array:
            result = load(values).sum(axis=(4, 5))
            result /= counts
            return activate(result) if activate is not None else result

        return average_pool

    load = _window_loader(ctx, shape, geom, -np.inf, np.float32)

    def max_pool(values: _Array) -> _Array:
        result = load(values).max(axis=(4, 5))
        return activate(result) if activate is not None else result

    return max_pool


def _quantized_pool(
    ctx: Context,
    geom: _Geometry,
    average: bool,
    params: QParams,
    bounds: tuple[int, int],
) -> Kernel:
    """Pooling on raw integers, for input and output sharing one quantisation (the usual case)."""
    low, high = bounds
    shape = ctx.input(0).shape
    if average:
        load = _window_loader(ctx, shape, geom, 0.0, np.float32)
        counts = _window_counts(ctx, geom)
        half = np.floor(counts / 2)
        low_f, high_f = np.float32(low), np.float32(high)

        def average_pool(values: _Array) -> _Array:
            # TFLite: (sum +/- count / 2) / count in integers, truncating towards zero.
            sums = load(values).sum(axis=(4, 5))
            sums += np.copysign(half, sums)
            result: _Array = np.trunc(sums / counts)
            np.clip(result, low_f, high_f, out=result)
            return result.astype(params.dtype)

        return average_pool

    load = _window_loader(ctx, shape, geom, params.qmin, params.dtype)

    def max_pool(values: _Array) -> _Array:
        result: _Array = np.clip(load(values).max(axis=(4, 5)), low, high)
        return result

    return max_pool


def _build_max_pool_2d(ctx: Context) -> Step:
    return _build_pool(ctx, average=False)


def _build_average_pool_2d(ctx: Context) -> Step:
    return _build_pool(ctx, average=True)


def _matmul_shape(
    ctx: Context,
    left: tuple[int, ...],
    right: tuple[int, ...],
    adjoint_left: bool,
    adjoint_right: bool,
) -> tuple[int, ...]:
    """Output shape of a batched matmul, checked before anything is multiplied."""
    if len(left) < 2 or len(right) < 2:
        raise ctx.error(f"operands of shapes {list(left)} and {list(right)}")
    rows, inner = left[-1:-3:-1] if adjoint_left else left[-2:]
    inner_right, columns = right[-1:-3:-1] if adjoint_right else right[-2:]
    if inner != inner_right:
        raise ctx.error(f"operands of shapes {list(left)} and {list(right)}")
    return (*np.broadcast_shapes(left[:-2], right[:-2]), rows, columns)


def _build_batch_matmul(ctx: Context) -> Step:
    opts = ctx.node.options
    adjoint_left, adjoint_right = opts.flag(0), opts.flag(1)
    out = ctx.output
    finish = quantizer(qparams(out)) if out.quantized else identity
    convert_left = dequantizer(ctx.input(0)) if out.quantized else identity
    convert_right = dequantizer(ctx.input(1)) if out.quantized else identity
    ctx.expect_output_shape(
        _matmul_shape(
            ctx, ctx.input(0).shape, ctx.input(1).shape, adjoint_left, adjoint_right
        )
    )

    def operand(
        values: _Array, convert: Callable[[_Array], _Array], adjoint: bool
    ) -> _Array:
        converted = convert(values)
        return np.swapaxes(converted, -1, -2) if adjoint else converted

    if ctx.is_constant(1):
        right_value = np.ascontiguousarray(
            operand(ctx.constant(1, "operand"), convert_right, adjoint_right)
        )

        def constant_right(a: _Array) -> _Array:
            return finish(
                np.matmul(operand(a, convert_left, adjoint_left), right_value)
            )

        return constant_right, (ctx.index(0),)

    def matmul(a: _Array, b: _Array) -> _Array:
        return finish(
            np.matmul(
                operand(a, convert_left, adjoint_left),
                operand(b, convert_right, adjoint_right),
            )
        )

    return matmul, (ctx.index(0), ctx.index(1))


BUILDERS: Final[dict[str, Callable[[Context], Step]]] = {
    "AVERAGE_POOL_2D": _build_average_pool_2d,
    "BATCH_MATMUL": _build_batch_matmul,
    "CONV_2D": _build_conv_2d,
    "DEPTHWISE_CONV_2D": _build_depthwise_conv_2d,
    "FULLY_CONNECTED": _build_fully_connected,
    "MAX_POOL_2D": _build_max_pool_2d,
}
