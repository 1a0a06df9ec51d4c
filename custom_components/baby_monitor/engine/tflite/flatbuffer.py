"""Decode a ``.tflite`` FlatBuffer by hand, following TFLite's ``schema.fbs``.

Only what the interpreter needs is read: the tensors, operators and buffers of subgraph 0.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .schema import (
    CUSTOM_OPERATOR,
    FILE_IDENTIFIER,
    MAX_TENSOR_BYTES,
    OPERATOR_NAMES,
    QUANTIZED_DTYPES,
    SCHEMA_VERSION,
    TENSOR_DTYPES,
    UNSUPPORTED_TENSOR_TYPES,
    TFLiteFormatError,
)

__all__ = ["F32S", "Model", "Node", "Tensor", "parse_model"]

type _Array = npt.NDArray[Any]

_U8: Final = struct.Struct("<B")
_I8: Final = struct.Struct("<b")
_U16: Final = struct.Struct("<H")
_I32: Final = struct.Struct("<i")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
F32S: Final = struct.Struct("<f")


# --------------------------------------------------------------------------------------------
# FlatBuffer decoding
# --------------------------------------------------------------------------------------------


class _FlatBuffer:
    """Bounds-checked little-endian reads from a FlatBuffer, so corrupt files fail cleanly."""

    __slots__ = ("data", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def check(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise TFLiteFormatError(
                f"{what} at bytes {pos}..{pos + length} is out of range of the {self.size}-byte "
                "model: the file is truncated or corrupt"
            )

    def read(self, fmt: struct.Struct, pos: int, what: str) -> Any:
        self.check(pos, fmt.size, what)
        return fmt.unpack_from(self.data, pos)[0]

    def follow(self, pos: int, what: str) -> int:
        """Absolute position an unsigned offset stored at `pos` points to."""
        target = pos + int(self.read(_U32, pos, what))
        self.check(target, 4, what)
        return target


class _Table:
    """One FlatBuffer table: field `i` is looked up through slot 4 + 2 * i of its vtable."""

    __slots__ = ("buf", "name", "pos", "vtable", "vtable_size")

    def __init__(self, buf: _FlatBuffer, pos: int | None, name: str) -> None:
        self.buf = buf
        self.name = name
        if pos is None:  # an absent table: every field reads as its schema default
            self.pos = self.vtable = self.vtable_size = 0
            return
        self.pos = pos
        self.vtable = pos - int(buf.read(_I32, pos, f"{name} table"))
        self.vtable_size = int(buf.read(_U16, self.vtable, f"{name} vtable"))
        if self.vtable_size < 4 or self.vtable_size % 2:
            raise TFLiteFormatError(
                f"{name} vtable has an invalid size {self.vtable_size}"
            )
        buf.check(self.vtable, self.vtable_size, f"{name} vtable")

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot >= self.vtable_size:
            return 0
        offset = int(self.buf.read(_U16, self.vtable + slot, f"{self.name} vtable"))
        return self.pos + offset if offset else 0

    def scalar(self, index: int, fmt: struct.Struct, default: Any) -> Any:
        pos = self._field(index)
        return self.buf.read(fmt, pos, f"{self.name} field {index}") if pos else default

    def u8(self, index: int, default: int = 0) -> int:
        return int(self.scalar(index, _U8, default))

    def i32(self, index: int, default: int = 0) -> int:
        return int(self.scalar(index, _I32, default))

    def flag(self, index: int) -> bool:
        return bool(self.scalar(index, _U8, 0))

    def table(self, index: int, name: str) -> _Table | None:
        pos = self._field(index)
        return _Table(self.buf, self.buf.follow(pos, name), name) if pos else None

    def vector(self, index: int, item_size: int, what: str) -> tuple[int, int]:
        """Start and length of the vector in field `index`; (0, 0) when absent."""
        pos = self._field(index)
        if not pos:
            return 0, 0
        start = self.buf.follow(pos, what)
        length = int(self.buf.read(_U32, start, what))
        self.buf.check(start + 4, length * item_size, what)
        return start + 4, length

    def tables(self, index: int, name: str) -> list[_Table]:
        start, length = self.vector(index, 4, f"{self.name}.{name} vector")
        return [
            _Table(self.buf, self.buf.follow(start + 4 * i, name), f"{name}[{i}]")
            for i in range(length)
        ]

    def array(self, index: int, dtype: str, what: str) -> _Array:
        item = np.dtype(dtype)
        start, length = self.vector(index, item.itemsize, f"{self.name}.{what}")
        values = np.frombuffer(self.buf.data, dtype=item, count=length, offset=start)
        return values.astype(item.newbyteorder("="))

    def raw(self, index: int, what: str) -> memoryview:
        start, length = self.vector(index, 1, f"{self.name}.{what}")
        return memoryview(self.buf.data)[start : start + length]

    def string(self, index: int, what: str) -> str:
        return bytes(self.raw(index, what)).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Model structure
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tensor:
    """A tensor of subgraph 0, with its constant data when it has a buffer."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: np.dtype[Any]
    scales: npt.NDArray[np.float32]
    zero_points: npt.NDArray[np.int64]
    quantized_dimension: int
    data: _Array | None

    @property
    def quantized(self) -> bool:
        """Whether the tensor holds affine-quantised integers."""
        return self.scales.size > 0 and self.dtype in QUANTIZED_DTYPES

    def describe(self) -> str:
        """Name the tensor in error messages."""
        return f"tensor {self.index} ({self.name!r})"


@dataclass(slots=True)
class Node:
    """An operator of subgraph 0 with its decoded operator code."""

    position: int
    code: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: _Table


@dataclass(slots=True)
class Model:
    """What the interpreter needs from a decoded model."""

    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    nodes: list[Node]


def _operator_name(code: int) -> str:
    return (
        OPERATOR_NAMES[code] if 0 <= code < len(OPERATOR_NAMES) else f"BUILTIN_{code}"
    )


def parse_model(data: bytes) -> Model:
    """Decode subgraph 0 of a ``.tflite`` file; raise TFLiteFormatError if it cannot be run."""
    if len(data) < 8:
        raise TFLiteFormatError(
            f"model is only {len(data)} bytes, too short to be a TFLite flatbuffer"
        )
    if data[4:8] != FILE_IDENTIFIER:
        raise TFLiteFormatError(
            f"not a TFLite model: file identifier at bytes 4..8 is {data[4:8]!r}, "
            f"expected {FILE_IDENTIFIER!r}"
        )
    buf = _FlatBuffer(data)
    model = _Table(buf, buf.follow(0, "root table offset"), "Model")
    version = int(model.scalar(0, _U32, 0))
    if version != SCHEMA_VERSION:
        raise TFLiteFormatError(
            f"model uses TFLite schema version {version}; only {SCHEMA_VERSION} is supported"
        )
    opcodes = [_parse_opcode(table) for table in model.tables(1, "operator_codes")]
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise TFLiteFormatError("model has no subgraph")
    buffers = model.tables(4, "buffers")
    # Only subgraph 0 is executed: the others are reachable only through control-flow
    # operators (CALL, IF, WHILE, CALL_ONCE), which are rejected as unsupported.
    graph = subgraphs[0]
    tensors = [
        _parse_tensor(buf, table, index, buffers)
        for index, table in enumerate(graph.tables(0, "tensors"))
    ]
    count = len(tensors)

    def indices(values: _Array, what: str, optional: bool = False) -> tuple[int, ...]:
        result = tuple(int(v) for v in values)
        for value in result:
            if not (0 <= value < count or (optional and value == -1)):
                raise TFLiteFormatError(
                    f"{what} refers to tensor {value}, but there are {count}"
                )
        return result

    nodes: list[Node] = []
    for position, table in enumerate(graph.tables(3, "operators")):
        opcode_index = int(table.scalar(0, _U32, 0))
        if opcode_index >= len(opcodes):
            raise TFLiteFormatError(
                f"operator {position} uses operator code {opcode_index}, "
                f"but the model defines {len(opcodes)}"
            )
        code, custom = opcodes[opcode_index]
        if code == CUSTOM_OPERATOR:
            raise TFLiteFormatError(
                f"custom operator {custom!r} (operator {position}) is not supported by the "
                "numpy executor"
            )
        options = table.table(4, "builtin_options") or _Table(
            buf, None, "builtin_options"
        )
        nodes.append(
            Node(
                position=position,
                code=code,
                name=_operator_name(code),
                inputs=indices(
                    table.array(1, "<i4", "inputs"), f"operator {position}", True
                ),
                outputs=indices(
                    table.array(2, "<i4", "outputs"), f"operator {position}"
                ),
                options=options,
            )
        )
    return Model(
        tensors=tensors,
        inputs=indices(graph.array(1, "<i4", "inputs"), "subgraph inputs"),
        outputs=indices(graph.array(2, "<i4", "outputs"), "subgraph outputs"),
        nodes=nodes,
    )


def _parse_opcode(table: _Table) -> tuple[int, str]:
    deprecated = int(table.scalar(0, _I8, 0))
    custom = table.string(1, "custom_code")
    builtin = table.i32(3, 0)
    return max(deprecated, builtin), custom


def _parse_tensor(
    buf: _FlatBuffer, table: _Table, index: int, buffers: list[_Table]
) -> Tensor:
    name = table.string(3, "name")
    type_code = int(table.scalar(1, _I8, 0))
    if type_code not in TENSOR_DTYPES:
        type_name = UNSUPPORTED_TENSOR_TYPES.get(type_code, "unknown")
        raise TFLiteFormatError(
            f"tensor {index} ({name!r}) has type {type_name} ({type_code}), which the numpy "
            "executor does not support"
        )
    dtype = TENSOR_DTYPES[type_code]
    if table.table(6, "sparsity") is not None:
        raise TFLiteFormatError(
            f"tensor {index} ({name!r}) is sparse, which is not supported"
        )
    shape = tuple(int(d) for d in table.array(0, "<i4", "shape"))
    if (
        any(d < 0 for d in shape)
        or math.prod(shape) * dtype.itemsize > MAX_TENSOR_BYTES
    ):
        raise TFLiteFormatError(
            f"tensor {index} ({name!r}) has an invalid shape {list(shape)}"
        )
    signature = tuple(int(d) for d in table.array(7, "<i4", "shape_signature")) or shape
    scales: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
    zero_points: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    quantized_dimension = 0
    quantization = table.table(4, "quantization")
    if quantization is not None:
        if quantization.u8(4, 0):
            raise TFLiteFormatError(
                f"tensor {index} ({name!r}) uses custom quantisation, which is not supported"
            )
        scales = quantization.array(2, "<f4", "scale").astype(np.float32)
        zero_points = quantization.array(3, "<i8", "zero_point").astype(np.int64)
        quantized_dimension = quantization.i32(6, 0)
        invalid = ~np.isfinite(scales) | (scales < 0)
        if dtype in QUANTIZED_DTYPES:
            invalid |= scales == 0
        if invalid.any() or not 0 <= quantized_dimension < max(len(shape), 1):
            raise TFLiteFormatError(
                f"tensor {index} ({name!r}) has invalid quantisation parameters"
            )
    data = _tensor_data(
        buf,
        int(table.scalar(2, _U32, 0)),
        buffers=buffers,
        index=index,
        name=name,
        shape=shape,
        dtype=dtype,
    )
    return Tensor(
        index=index,
        name=name,
        shape=shape,
        shape_signature=signature,
        dtype=dtype,
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=quantized_dimension,
        data=data,
    )


def _tensor_data(
    buf: _FlatBuffer,
    buffer_index: int,
    *,
    buffers: list[_Table],
    index: int,
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
) -> _Array | None:
    if buffer_index == 0:
        return None
    if buffer_index >= len(buffers):
        raise TFLiteFormatError(
            f"tensor {index} ({name!r}) uses buffer {buffer_index}, "
            f"but the model has {len(buffers)}"
        )
    table = buffers[buffer_index]
    offset = int(table.scalar(1, _U64, 0))
    if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
        size = int(table.scalar(2, _U64, 0))
        buf.check(offset, size, f"external data of buffer {buffer_index}")
        raw: memoryview = memoryview(buf.data)[offset : offset + size]
    else:
        raw = table.raw(0, "data")
    if not len(raw):
        return None
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise TFLiteFormatError(
            f"tensor {index} ({name!r}) of shape {list(shape)} needs {expected} bytes, "
            f"but buffer {buffer_index} holds {len(raw)}"
        )
    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=math.prod(shape))
    return values.astype(dtype).reshape(shape)
