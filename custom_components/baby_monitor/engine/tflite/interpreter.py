"""``NumpyInterpreter``: LiteRT's ``Interpreter`` API over a plan of numpy kernels.

Every operator of subgraph 0 is turned into a closure with its weights already in the layout it
wants, so that ``invoke()`` is a plain loop over vectorised numpy kernels.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import conv, elementwise, layout
from .context import Context, Kernel, Step
from .flatbuffer import Model, Node, parse_model
from .limits import MAX_MODEL_FILE_BYTES, MemoryBudget
from .schema import TFLiteFormatError

__all__ = ["SUPPORTED_OPERATORS", "NumpyInterpreter"]

type _Array = npt.NDArray[Any]

_BUILDERS: Final[dict[str, Callable[[Context], Step]]] = {
    **conv.BUILDERS,
    **elementwise.BUILDERS,
    **layout.BUILDERS,
}

SUPPORTED_OPERATORS: Final[frozenset[str]] = frozenset(_BUILDERS)

# What numpy raises on inconsistent shapes or values in a corrupt model, while planning.
_BUILD_ERRORS: Final = (ValueError, IndexError, TypeError, ArithmeticError, MemoryError)


class NumpyInterpreter:
    """Drop-in replacement for LiteRT's ``Interpreter`` that needs nothing but numpy."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | None = None,
    ) -> None:
        """Decode the model and build its execution plan; raise TFLiteFormatError if unusable.

        The model's tensors, weight copies and scratch buffers must fit in
        ``limits.MAX_MEMORY_BYTES``, each checked before it is allocated.
        """
        if model_content is None:
            if model_path is None:
                raise ValueError("pass model_path or model_content")
            path = Path(model_path)
            size = path.stat().st_size
            if size > MAX_MODEL_FILE_BYTES:
                raise TFLiteFormatError(
                    f"model {path} is {size} bytes, larger than the {MAX_MODEL_FILE_BYTES} a "
                    "model may have"
                )
            model_content = path.read_bytes()
        model = parse_model(bytes(model_content))
        self._budget: MemoryBudget = model.budget
        self._tensors = model.tensors
        self._inputs = model.inputs
        self._outputs = model.outputs
        self._constants: dict[int, _Array] = {
            t.index: t.data for t in model.tensors if t.data is not None
        }
        self._plan_nodes: list[Node] = []
        self._plan = self._build_plan(model)
        self._values: list[_Array | None] | None = None
        self._check_plan()

    def _build_plan(self, model: Model) -> list[tuple[Kernel, tuple[int, ...], int]]:
        available = set(self._constants) | set(model.inputs)
        plan: list[tuple[Kernel, tuple[int, ...], int]] = []
        for node in model.nodes:
            builder = _BUILDERS.get(node.name)
            if builder is None:
                raise TFLiteFormatError(
                    f"operator {node.name} (builtin {node.code}) is not supported by the "
                    "numpy executor"
                )
            ctx = Context(self._tensors, self._constants, node, self._budget)
            output = ctx.output.index
            try:
                kernel, runtime = builder(ctx)
                missing = [i for i in runtime if i not in available]
                if missing:
                    raise ctx.error(
                        f"reads tensor {missing[0]} before any operator writes it"
                    )
                if all(i in self._constants for i in runtime):  # constant folding
                    with np.errstate(all="ignore"):
                        self._constants[output] = kernel(
                            *(self._constants[i] for i in runtime)
                        )
                else:
                    plan.append((kernel, runtime, output))
                    self._plan_nodes.append(node)
            except TFLiteFormatError:
                raise
            except _BUILD_ERRORS as err:
                raise ctx.error(f"{type(err).__name__}: {err}") from err
            available.add(output)
        for index in model.outputs:
            if index not in available:
                raise TFLiteFormatError(
                    f"model output tensor {index} is never computed"
                )
        return plan

    def _check_plan(self) -> None:
        """Run the plan once on zeros so shape or type mismatches surface at load time."""
        values = self._initial_values()
        with np.errstate(all="ignore"):
            for (kernel, runtime, output), node in zip(
                self._plan, self._plan_nodes, strict=True
            ):
                ctx = Context(self._tensors, self._constants, node, self._budget)
                try:
                    result = kernel(*(values[i] for i in runtime))
                except _BUILD_ERRORS as err:
                    raise ctx.error(f"{type(err).__name__}: {err}") from err
                tensor = self._tensors[output]
                if result.shape != tensor.shape or result.dtype != tensor.dtype:
                    raise ctx.error(
                        f"computes {tensor.describe()} as {result.dtype}{list(result.shape)}, "
                        f"but the model declares {tensor.dtype}{list(tensor.shape)}"
                    )
                values[output] = result

    def _initial_values(self) -> list[_Array | None]:
        values: list[_Array | None] = [None] * len(self._tensors)
        for index, value in self._constants.items():
            values[index] = value
        for index in self._inputs:
            tensor = self._tensors[index]
            values[index] = np.zeros(tensor.shape, dtype=tensor.dtype)
        return values

    def allocate_tensors(self) -> None:
        """Create zeroed input tensors, as LiteRT requires before set_tensor/invoke."""
        self._values = self._initial_values()

    def _details(self, indices: tuple[int, ...]) -> list[dict[str, Any]]:
        details = []
        for index in indices:
            tensor = self._tensors[index]
            single = tensor.scales.size == 1
            details.append(
                {
                    "name": tensor.name,
                    "index": index,
                    "shape": np.array(tensor.shape, dtype=np.int32),
                    "shape_signature": np.array(tensor.shape_signature, dtype=np.int32),
                    "dtype": tensor.dtype.type,
                    "quantization": (
                        float(tensor.scales[0]) if single else 0.0,
                        int(tensor.zero_points[0])
                        if single and tensor.zero_points.size
                        else 0,
                    ),
                    "quantization_parameters": {
                        "scales": tensor.scales.copy(),
                        "zero_points": tensor.zero_points.astype(np.int32),
                        "quantized_dimension": tensor.quantized_dimension,
                    },
                    "sparsity_parameters": {},
                }
            )
        return details

    def get_input_details(self) -> list[dict[str, Any]]:
        """Describe the model inputs the way LiteRT does."""
        return self._details(self._inputs)

    def get_output_details(self) -> list[dict[str, Any]]:
        """Describe the model outputs the way LiteRT does."""
        return self._details(self._outputs)

    def _allocated(self) -> list[_Array | None]:
        if self._values is None:
            raise RuntimeError("allocate_tensors() must be called first")
        return self._values

    def set_tensor(self, tensor_index: int, value: npt.NDArray[Any]) -> None:
        """Copy `value` into an input tensor after checking its dtype and shape."""
        values = self._allocated()
        if tensor_index not in self._inputs:
            raise ValueError(
                f"tensor {tensor_index} is not a model input; inputs are {list(self._inputs)}"
            )
        tensor = self._tensors[tensor_index]
        array = np.asarray(value)
        if array.dtype != tensor.dtype:
            raise ValueError(
                f"cannot set {tensor.describe()}: expected dtype {tensor.dtype}, got {array.dtype}"
            )
        if array.shape != tensor.shape:
            raise ValueError(
                f"cannot set {tensor.describe()}: expected shape {tensor.shape}, got {array.shape}"
            )
        values[tensor_index] = np.array(array, copy=True)

    def invoke(self) -> None:
        """Run the model on the current inputs."""
        values = self._allocated()
        for kernel, runtime, output in self._plan:
            values[output] = kernel(*[values[i] for i in runtime])

    def get_tensor(self, tensor_index: int) -> npt.NDArray[Any]:
        """Return a copy of a tensor's current value (zeros before it is first computed)."""
        values = self._allocated()
        if not 0 <= tensor_index < len(self._tensors):
            raise ValueError(
                f"tensor index {tensor_index} out of range (model has {len(self._tensors)})"
            )
        value = values[tensor_index]
        if value is None:
            tensor = self._tensors[tensor_index]
            return np.zeros(tensor.shape, dtype=tensor.dtype)
        return np.array(value, copy=True)
