"""Pure-numpy TFLite interpreter, for hosts (Home Assistant OS, musl) where no LiteRT wheel installs."""

from .flatbuffer import parse_model
from .interpreter import SUPPORTED_OPERATORS, NumpyInterpreter
from .limits import MAX_MEMORY_BYTES, MAX_MODEL_FILE_BYTES
from .schema import TFLiteFormatError

__all__ = [
    "MAX_MEMORY_BYTES",
    "MAX_MODEL_FILE_BYTES",
    "SUPPORTED_OPERATORS",
    "NumpyInterpreter",
    "TFLiteFormatError",
    "parse_model",
]
