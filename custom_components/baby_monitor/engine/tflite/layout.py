"""Operators that only move data: reshapes, transposes, concatenation and padding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .context import Context, Step
from .quantization import dequantizer, identity, qparams, quantizer

__all__ = ["BUILDERS"]

type _Array = npt.NDArray[Any]


def _resolve_shape(ctx: Context, shape: Sequence[int], size: int) -> tuple[int, ...]:
    dims = [int(d) for d in shape]
    unknown = [i for i, d in enumerate(dims) if d == -1]
    known = math.prod(d for d in dims if d != -1)
    if len(unknown) > 1 or (unknown and (not known or size % known)):
        raise ctx.error(f"cannot reshape {size} elements to {dims}")
    if unknown:
        dims[unknown[0]] = size // known
    if math.prod(dims) != size:
        raise ctx.error(f"cannot reshape {size} elements to {dims}")
    return tuple(dims)


def _reshape_step(ctx: Context, shape: tuple[int, ...]) -> Step:
    ctx.expect_output_shape(shape)

    def reshape(values: _Array) -> _Array:
        return values.reshape(shape)

    return reshape, (ctx.index(0),)


def _build_reshape(ctx: Context) -> Step:
    size = math.prod(ctx.input(0).shape)
    if ctx.is_constant(1):
        target: Sequence[int] = [int(d) for d in ctx.constant(1, "shape").reshape(-1)]
    else:
        new_shape = ctx.node.options.array(0, "<i4", "new_shape")
        target = [int(d) for d in new_shape] if new_shape.size else ctx.output.shape
    return _reshape_step(ctx, _resolve_shape(ctx, target, size))


def _build_squeeze(ctx: Context) -> Step:
    shape = ctx.input(0).shape
    dims = ctx.node.options.array(0, "<i4", "squeeze_dims")
    rank = len(shape)
    drop = (
        {int(d) % rank for d in dims}
        if dims.size
        else {i for i, d in enumerate(shape) if d == 1}
    )
    if any(shape[d] != 1 for d in drop):
        raise ctx.error(
            f"cannot squeeze dimensions {sorted(drop)} of shape {list(shape)}"
        )
    return _reshape_step(ctx, tuple(d for i, d in enumerate(shape) if i not in drop))


def _build_expand_dims(ctx: Context) -> Step:
    shape = list(ctx.input(0).shape)
    axis = int(np.asarray(ctx.constant(1, "axis")).reshape(-1)[0])
    if axis < 0:
        axis += len(shape) + 1
    shape.insert(axis, 1)
    return _reshape_step(ctx, tuple(shape))


def _build_transpose(ctx: Context) -> Step:
    permutation = tuple(int(p) for p in ctx.constant(1, "permutation").reshape(-1))
    if sorted(permutation) != list(range(len(ctx.input(0).shape))):
        raise ctx.error(f"invalid permutation {list(permutation)}")
    ctx.expect_output_shape(tuple(ctx.input(0).shape[p] for p in permutation))

    def transpose(values: _Array) -> _Array:
        return np.ascontiguousarray(values.transpose(permutation))

    return transpose, (ctx.index(0),)


def _build_concatenation(ctx: Context) -> Step:
    opts = ctx.node.options
    out = ctx.output
    axis = opts.i32(0) % len(out.shape)
    activation = opts.u8(1)
    parts = range(len(ctx.node.inputs))
    tensors = [ctx.input(i) for i in parts]
    shape = list(tensors[0].shape)
    shape[axis] = sum(t.shape[axis] for t in tensors)
    ctx.expect_output_shape(shape)
    if out.quantized:
        params = qparams(out)
        bounds = ctx.activation_bounds(activation, params)
        if all(t.quantized and qparams(t) == params for t in tensors):
            low, high = bounds

            def concatenate_raw(*values: _Array) -> _Array:
                result = np.concatenate(values, axis=axis)
                return (
                    result
                    if bounds == (params.qmin, params.qmax)
                    else np.clip(result, low, high)
                )

            return concatenate_raw, tuple(ctx.index(i) for i in parts)
        converters = [dequantizer(t) for t in tensors]
        finish = quantizer(params, bounds)
    else:
        converters = [identity for _ in tensors]
        activate = ctx.float_activation(activation)
        finish = activate if activate is not None else identity

    def concatenate(*values: _Array) -> _Array:
        return finish(
            np.concatenate(
                [f(v) for f, v in zip(converters, values, strict=True)], axis
            )
        )

    return concatenate, tuple(ctx.index(i) for i in parts)


def _build_pad(ctx: Context) -> Step:
    x, out = ctx.input(0), ctx.output
    paddings = ctx.constant(1, "paddings").astype(np.int64).reshape(-1, 2)
    if paddings.shape[0] != len(x.shape) or np.any(paddings < 0):
        raise ctx.error(f"paddings {paddings.tolist()} for shape {list(x.shape)}")
    if ctx.has_input(2):
        value = np.asarray(ctx.constant(2, "constant value")).reshape(-1)[0]
    else:
        value = qparams(out).zero_point if out.quantized else 0
    out_shape = tuple(
        int(d + before + after)
        for d, (before, after) in zip(x.shape, paddings, strict=True)
    )
    interior = tuple(
        slice(int(before), int(before) + d)
        for d, (before, _) in zip(x.shape, paddings, strict=True)
    )
    ctx.expect_output_shape(out_shape)
    dtype = out.dtype

    def pad(values: _Array) -> _Array:
        result = np.full(out_shape, value, dtype=dtype)
        result[interior] = values
        return result

    return pad, (ctx.index(0),)


BUILDERS: Final[dict[str, Callable[[Context], Step]]] = {
    "CONCATENATION": _build_concatenation,
    "EXPAND_DIMS": _build_expand_dims,
    "PAD": _build_pad,
    "PADV2": _build_pad,
    "RESHAPE": _build_reshape,
    "SQUEEZE": _build_squeeze,
    "TRANSPOSE": _build_transpose,
}
