"""Caps on what a model file may make the executor hold, so a crafted file fails fast at load."""

from __future__ import annotations

from typing import Final

from .schema import TFLiteFormatError

__all__ = [
    "MAX_MEMORY_BYTES",
    "MAX_MODEL_FILE_BYTES",
    "MAX_NAME_BYTES",
    "MAX_OPERATORS",
    "MAX_OPERATOR_CODES",
    "MAX_OPERATOR_TENSORS",
    "MAX_RANK",
    "MAX_TENSORS",
    "MAX_TENSOR_ELEMENTS",
    "MemoryBudget",
]

MAX_MODEL_FILE_BYTES: Final = 64 << 20
"""Largest ``.tflite`` read: ours is 0.4 MB, a 5 MB backbone stays under 20 MB even in float32."""
MAX_MEMORY_BYTES: Final = 256 << 20
"""Tensors, weight copies and scratch: ours takes 4.6 MB; a 5 MB backbone's leave 200 MB spare."""
MAX_TENSOR_ELEMENTS: Final = 16 << 20
"""One tensor: 64 MiB as float32, so the float copies an operator makes stay a few of those."""
MAX_TENSORS: Final = 10_000
"""Tensors of subgraph 0: ours has 42, MobileNet-sized backbones a few hundred."""
MAX_OPERATORS: Final = 10_000
"""Operators of subgraph 0: ours has 16."""
MAX_OPERATOR_CODES: Final = 1_000
"""Operator codes, one per (builtin, version) used; TFLite defines some 200 builtins."""
MAX_OPERATOR_TENSORS: Final = 1_000
"""Inputs or outputs of one operator, or of the graph."""
MAX_RANK: Final = 8
"""Dimensions of a tensor; TFLite's kernels stop at 6."""
MAX_NAME_BYTES: Final = 4_096
"""Names only label details and messages; longer ones are cut."""


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


class MemoryBudget:
    """Bytes a model makes the executor hold, charged before each allocation they pay for."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = MAX_MEMORY_BYTES) -> None:
        """Start with nothing used out of `limit` bytes."""
        self.limit = limit
        self.used = 0

    def charge(self, size: int, what: str) -> None:
        """Account for `size` bytes held for `what`; raise TFLiteFormatError past the limit."""
        self.used += size
        if self.used > self.limit:
            raise TFLiteFormatError(
                f"{what} needs {_mib(size)}, which takes the model past the {_mib(self.limit)} "
                "allowed for all of a model's tensors (a corrupt or crafted file?)"
            )
