"""Pure-numpy TFLite interpreter, for hosts (Home Assistant OS, musl) where no LiteRT wheel installs."""

from .interpreter import SUPPORTED_OPERATORS, NumpyInterpreter
from .schema import TFLiteFormatError

__all__ = ["SUPPORTED_OPERATORS", "NumpyInterpreter", "TFLiteFormatError"]
