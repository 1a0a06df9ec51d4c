"""What an operator builder sees (its node, tensors and constants) and the step it returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy.typing as npt

from .flatbuffer import Node, Tensor
from .limits import MemoryBudget
from .quantization import (
    FLOAT_ACTIVATIONS,
    QParams,
    dequantizer,
    identity,
    qparams,
    quantizer,
)
from .schema import (
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    ACT_RELU_N1_TO_1,
    ACTIVATION_NAMES,
    TFLiteFormatError,
)

__all__ = ["Context", "Kernel", "Step", "dequantized_unary"]

type _Array = npt.NDArray[Any]
type Kernel = Callable[..., _Array]
# What a builder returns: its kernel, and the indices of the tensors to call it with.
type Step = tuple[Kernel, tuple[int, ...]]


class Context:
    """What an operator builder sees: its node, tensor metadata and constant values."""

    __slots__ = ("budget", "constants", "node", "tensors")

    def __init__(
        self,
        tensors: list[Tensor],
        constants: dict[int, _Array],
        node: Node,
        budget: MemoryBudget | None = None,
    ) -> None:
        """Describe `node` against the model's tensors and the constants known so far.

        `budget` is the model's, charged for the scratch buffers the operator keeps.
        """
        self.tensors = tensors
        self.constants = constants
        self.node = node
        self.budget = budget if budget is not None else MemoryBudget()

    def error(self, problem: str) -> TFLiteFormatError:
        """Return an error about this operator, naming it and its position in the model."""
        node = self.node
        return TFLiteFormatError(
            f"operator {node.name} (builtin {node.code}, operator {node.position}): {problem}"
        )

    def reserve(self, size: int, what: str) -> None:
        """Charge `size` bytes of scratch to the model's budget before allocating them."""
        try:
            self.budget.charge(size, what)
        except TFLiteFormatError as err:
            raise self.error(str(err)) from None

    def has_input(self, position: int) -> bool:
        """Whether input `position` is present (optional inputs may be left out as -1)."""
        return position < len(self.node.inputs) and self.node.inputs[position] >= 0

    def index(self, position: int) -> int:
        """Return the tensor index of input `position`, which must be present."""
        if not self.has_input(position):
            raise self.error(f"input {position} is missing")
        return self.node.inputs[position]

    def input(self, position: int) -> Tensor:
        """Return the tensor of input `position`."""
        return self.tensors[self.index(position)]

    @property
    def output(self) -> Tensor:
        """The operator's single output tensor."""
        if len(self.node.outputs) != 1:
            raise self.error(f"expected one output, found {len(self.node.outputs)}")
        return self.tensors[self.node.outputs[0]]

    def is_constant(self, position: int) -> bool:
        """Whether input `position` is present and its value known before run time."""
        return self.has_input(position) and self.index(position) in self.constants

    def constant(self, position: int, role: str) -> _Array:
        """Return the value of input `position`, which must be a constant (`role` names it)."""
        index = self.index(position)
        if index not in self.constants:
            raise self.error(f"the {role} (input {position}) must be a constant tensor")
        return self.constants[index]

    def expect_output_shape(self, shape: Sequence[int]) -> None:
        """Check a statically computed output shape before any buffer is sized from it."""
        declared = self.output.shape
        if tuple(shape) != declared:
            raise self.error(
                f"computes an output of shape {list(shape)}, but the model declares "
                f"{list(declared)}"
            )

    def rank(self, position: int, rank: int) -> tuple[int, ...]:
        """Return the shape of input `position` after checking that it has `rank` dimensions."""
        shape = self.input(position).shape
        if len(shape) != rank:
            raise self.error(
                f"input {position} must have rank {rank}, has shape {list(shape)}"
            )
        return shape

    def activation_bounds(self, activation: int, params: QParams) -> tuple[int, int]:
        """Clamp range of a quantised output with a fused activation."""
        low, high = params.qmin, params.qmax
        if activation == ACT_NONE:
            return low, high
        if activation == ACT_RELU:
            return max(low, params.quantize_scalar(0.0)), high
        if activation == ACT_RELU6:
            return max(low, params.quantize_scalar(0.0)), min(
                high, params.quantize_scalar(6.0)
            )
        if activation == ACT_RELU_N1_TO_1:
            return max(low, params.quantize_scalar(-1.0)), min(
                high, params.quantize_scalar(1.0)
            )
        raise self.error(
            f"fused activation {self.activation_name(activation)} on quantised data"
        )

    def float_activation(self, activation: int) -> Callable[[_Array], _Array] | None:
        """In-place float function of a fused activation; None for NONE."""
        if activation not in FLOAT_ACTIVATIONS:
            raise self.error(f"fused activation {self.activation_name(activation)}")
        return FLOAT_ACTIVATIONS[activation]

    @staticmethod
    def activation_name(activation: int) -> str:
        """Return the schema name of a fused activation, or its number if unknown."""
        if 0 <= activation < len(ACTIVATION_NAMES):
            return ACTIVATION_NAMES[activation]
        return str(activation)


def dequantized_unary(
    ctx: Context,
    function: Callable[[_Array], _Array],
    bounds: tuple[int, int] | None = None,
) -> Step:
    """Run a float kernel on a quantised tensor: dequantise, compute, requantise."""
    dequantize = dequantizer(ctx.input(0))
    out = ctx.output
    quantize = quantizer(qparams(out), bounds) if out.quantized else identity

    def kernel(values: _Array) -> _Array:
        return quantize(function(dequantize(values)))

    return kernel, (ctx.index(0),)
