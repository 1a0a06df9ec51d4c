"""Keras to TFLite: what the backbone and the head are shipped as."""

from __future__ import annotations

from typing import Any

__all__ = ["export_tflite"]


def export_tflite(model: Any) -> bytes:
    """Convert to a float32 TFLite flatbuffer (the numpy executor supports its ops)."""
    import tensorflow as tf  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    content: bytes = converter.convert()
    return content
