"""Decode a ``.tflite`` FlatBuffer by hand, following TFLite's ``schema.fbs``.

Only what the interpreter needs is read: the tensors, operators and buffers of subgraph 0. The
reader never recurses (the schema's nesting is fixed), checks every read against the file's end,
bounds every vector it copies (see ``limits``) and charges each tensor to a ``MemoryBudget``
before allocating it, so a crafted file fails fast instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import math
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .limits import (
    MAX_MODEL_FILE_BYTES,
    MAX_NAME_BYTES,
    MAX_OPERATOR_CODES,
    MAX_OPERATOR_TENSORS,
    MAX_OPERATORS,
    MAX_RANK,
    MAX_TENSOR_ELEMENTS,
    MAX_TENSORS,
    MemoryBudget,
)
from .schema import (
    CUSTOM_OPERATOR,
    FILE_IDENTIFIER,
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

    def vector(
        self, index: int, item_size: int, what: str, limit: int | None
    ) -> tuple[int, int]:
        """Start and length of the vector in field `index`; (0, 0) when absent.

        A vector longer than `limit` items is refused before anything is copied from it.
        """
        pos = self._field(index)
        if not pos:
            return 0, 0
        start = self.buf.follow(pos, what)
        length = int(self.buf.read(_U32, start, what))
        if limit is not None and length > limit:
            raise TFLiteFormatError(
                f"{what} has {length} entries, more than the {limit} allowed (a corrupt or "
                "crafted file?)"
            )
        self.buf.check(start + 4, length * item_size, what)
        return start + 4, length

    def tables(self, index: int, name: str, limit: int) -> list[_Table]:
        """Decode the vector of at most `limit` tables in field `index`."""
        return list(_Tables(self, index, name, limit))

    def array(self, index: int, dtype: str, what: str, limit: int = MAX_RANK) -> _Array:
        """Copy the vector of at most `limit` scalars in field `index` (a shape by default)."""
        item = np.dtype(dtype)
        start, length = self.vector(index, item.itemsize, f"{self.name}.{what}", limit)
        values = np.frombuffer(self.buf.data, dtype=item, count=length, offset=start)
        return values.astype(item.newbyteorder("="))

    def raw(self, index: int, what: str) -> memoryview:
        """View the bytes of the vector in field `index`, without copying them."""
        start, length = self.vector(index, 1, f"{self.name}.{what}", None)
        return memoryview(self.buf.data)[start : start + length]

    def string(self, index: int, what: str) -> str:
        """Decode the string in field `index`, cut to MAX_NAME_BYTES."""
        return bytes(self.raw(index, what)[:MAX_NAME_BYTES]).decode(
            "utf-8", errors="replace"
        )


class _Tables:
    """A vector of tables decoded on demand, as one may hold as many entries as the file allows."""

    __slots__ = ("buf", "length", "name", "start")

    def __init__(
        self, table: _Table, index: int, name: str, limit: int | None = None
    ) -> None:
        """Locate the vector of tables in field `index` of `table`."""
        self.buf = table.buf
        self.name = name
        self.start, self.length = table.vector(
            index, 4, f"{table.name}.{name} vector", limit
        )

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[_Table]:
        return (self[position] for position in range(self.length))

    def __getitem__(self, position: int) -> _Table:
        if not 0 <= position < self.length:
            raise IndexError(position)
        where = self.start + 4 * position
        return _Table(
            self.buf, self.buf.follow(where, self.name), f"{self.name}[{position}]"
        )


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
    budget: MemoryBudget


def _operator_name(code: int) -> str:
    return (
        OPERATOR_NAMES[code] if 0 <= code < len(OPERATOR_NAMES) else f"BUILTIN_{code}"
    )


def parse_model(data: bytes, budget: MemoryBudget | None = None) -> Model:
    """Decode subgraph 0 of a ``.tflite`` file; raise TFLiteFormatError if it cannot be run.

    Every tensor is charged to `budget` (a fresh ``MemoryBudget`` by default) before its
    constant data is copied, so an oversized model fails here, naming the tensor.
    """
    if len(data) > MAX_MODEL_FILE_BYTES:
        raise TFLiteFormatError(
            f"model is {len(data)} bytes, larger than the {MAX_MODEL_FILE_BYTES} a model may "
            "have"
        )
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
    budget = budget if budget is not None else MemoryBudget()
    opcodes = [
        _parse_opcode(table)
        for table in model.tables(1, "operator_codes", MAX_OPERATOR_CODES)
    ]
    subgraphs = _Tables(model, 2, "subgraphs")
    if not subgraphs:
        raise TFLiteFormatError("model has no subgraph")
    buffers = _Tables(model, 4, "buffers")
    # Only subgraph 0 is executed: the others are reachable only through control-flow
    # operators (CALL, IF, WHILE, CALL_ONCE), which are rejected as unsupported.
    graph = subgraphs[0]
    tensors = [
        _parse_tensor(buf, table, index, buffers, budget)
        for index, table in enumerate(graph.tables(0, "tensors", MAX_TENSORS))
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
    for position, table in enumerate(graph.tables(3, "operators", MAX_OPERATORS)):
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
        inputs = table.array(1, "<i4", "inputs", MAX_OPERATOR_TENSORS)
        outputs = table.array(2, "<i4", "outputs", MAX_OPERATOR_TENSORS)
        # Each index becomes a Python integer: some 36 bytes, where the file spends 4.
        budget.charge(
            36 * (inputs.size + outputs.size), f"tensor lists of operator {position}"
        )
        nodes.append(
            Node(
                position=position,
                code=code,
                name=_operator_name(code),
                inputs=indices(inputs, f"operator {position}", True),
                outputs=indices(outputs, f"operator {position}"),
                options=options,
            )
        )
    return Model(
        tensors=tensors,
        inputs=indices(
            graph.array(1, "<i4", "inputs", MAX_OPERATOR_TENSORS), "subgraph inputs"
        ),
        outputs=indices(
            graph.array(2, "<i4", "outputs", MAX_OPERATOR_TENSORS), "subgraph outputs"
        ),
        nodes=nodes,
        budget=budget,
    )


def _parse_opcode(table: _Table) -> tuple[int, str]:
    deprecated = int(table.scalar(0, _I8, 0))
    custom = table.string(1, "custom_code")
    builtin = table.i32(3, 0)
    return max(deprecated, builtin), custom


def _parse_tensor(
    buf: _FlatBuffer,
    table: _Table,
    index: int,
    buffers: _Tables,
    budget: MemoryBudget,
) -> Tensor:
    name = table.string(3, "name")
    what = f"tensor {index} ({name!r})"
    type_code = int(table.scalar(1, _I8, 0))
    if type_code not in TENSOR_DTYPES:
        type_name = UNSUPPORTED_TENSOR_TYPES.get(type_code, "unknown")
        raise TFLiteFormatError(
            f"{what} has type {type_name} ({type_code}), which the numpy executor does not "
            "support"
        )
    dtype = TENSOR_DTYPES[type_code]
    if table.table(6, "sparsity") is not None:
        raise TFLiteFormatError(f"{what} is sparse, which is not supported")
    shape = tuple(int(d) for d in table.array(0, "<i4", f"shape of {what}"))
    if any(d < 1 for d in shape):
        raise TFLiteFormatError(
            f"{what} has an invalid shape {list(shape)}: every dimension must be at least 1"
        )
    count = math.prod(shape)  # a Python integer: the product cannot overflow
    if count > MAX_TENSOR_ELEMENTS:
        raise TFLiteFormatError(
            f"{what} of shape {list(shape)} has {count} elements; one tensor may have at most "
            f"{MAX_TENSOR_ELEMENTS} (a corrupt or crafted file?)"
        )
    budget.charge(count * dtype.itemsize, f"{what} of shape {list(shape)}")
    signature = (
        tuple(int(d) for d in table.array(7, "<i4", f"shape signature of {what}"))
        or shape
    )
    scales: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
    zero_points: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    quantized_dimension = 0
    quantization = table.table(4, "quantization")
    if quantization is not None:
        if quantization.u8(4, 0):
            raise TFLiteFormatError(
                f"{what} uses custom quantisation, which is not supported"
            )
        quantized_dimension = quantization.i32(6, 0)
        if not 0 <= quantized_dimension < max(len(shape), 1):
            raise TFLiteFormatError(
                f"{what} has invalid quantisation parameters: quantized dimension "
                f"{quantized_dimension} of shape {list(shape)}"
            )
        # One scale per tensor or one per channel of the quantised dimension.
        channels = shape[quantized_dimension] if shape else 1
        scales = quantization.array(2, "<f4", f"scales of {what}", channels)
        zero_points = quantization.array(3, "<i8", f"zero points of {what}", channels)
        scales, zero_points = scales.astype(np.float32), zero_points.astype(np.int64)
        invalid = ~np.isfinite(scales) | (scales < 0)
        if dtype in QUANTIZED_DTYPES:
            invalid |= scales == 0
        if invalid.any():
            raise TFLiteFormatError(f"{what} has invalid quantisation parameters")
    data = _tensor_data(
        buf,
        int(table.scalar(2, _U32, 0)),
        buffers=buffers,
        what=what,
        shape=shape,
        dtype=dtype,
        budget=budget,
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
    buffers: _Tables,
    what: str,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    budget: MemoryBudget,
) -> _Array | None:
    if buffer_index == 0:
        return None
    if buffer_index >= len(buffers):
        raise TFLiteFormatError(
            f"{what} uses buffer {buffer_index}, but the model has {len(buffers)}"
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
    count = math.prod(shape)
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise TFLiteFormatError(
            f"{what} of shape {list(shape)} needs {expected} bytes, "
            f"but buffer {buffer_index} holds {len(raw)}"
        )
    # Kernels keep a float32 working copy of their weights beside the raw values.
    budget.charge(count * 4, f"float32 copy of constant {what}")
    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count)
    return values.astype(dtype).reshape(shape)
