"""The value range a model expects, as an affine map from [0, 1] RGB (or grey) per channel.

The optimizer works on images in [0, 1]; this maps them into the model's input range (a
``vizcore.data.images.PREPROCESS_MODES`` key, or an explicit ``(low, high)``) and back for display.

Example:
    >>> r = input_range(3, "symmetric")
    >>> r.low, r.high
    ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.data.images import PREPROCESS_MODES

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputRange:
    """model_input = unit * scale + offset per channel, after RGB -> BGR when ``bgr``."""

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    bgr: bool = False

    @property
    def low(self) -> tuple[float, ...]:
        return tuple(float(o) for o in self.offset)

    @property
    def high(self) -> tuple[float, ...]:
        return tuple(float(o + s) for o, s in zip(self.offset, self.scale))

    def to_model(self, unit_nhwc: Any) -> Any:
        """TensorFlow: images in [0, 1] -> the model's range."""
        x = unit_nhwc[..., ::-1] if self.bgr else unit_nhwc
        return x * tf.constant(self.scale, tf.float32) + tf.constant(self.offset, tf.float32)

    def to_unit(self, images_nhwc: np.ndarray) -> np.ndarray:
        """NumPy: images in the model's range -> [0, 1] RGB (or grey), clipped."""
        x = (np.asarray(images_nhwc, np.float32) - np.float32(self.offset)) / np.float32(self.scale)
        return np.clip(x[..., ::-1] if self.bgr else x, 0.0, 1.0)


def input_range(channels: int, preprocess: str = "unit", value_range: tuple[float, float] | None = None) -> InputRange:
    """The map from [0, 1] to a model's inputs: ``value_range`` when given, else the preprocess mode's.

    Raises:
        ValueError: an unknown mode, 'caffe'/'torch' without 3 channels, or low >= high.
    """
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
        return InputRange((high - low,) * channels, (low,) * channels)
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"Unknown preprocessing mode {preprocess!r}; choose one of {', '.join(PREPROCESS_MODES)}.")
    if preprocess in ("caffe", "torch") and channels != 3:
        raise ValueError(f"Mode {preprocess!r} uses ImageNet RGB statistics and needs 3 channels, got {channels}.")
    if preprocess == "unit":
        return InputRange((1.0,) * channels, (0.0,) * channels)
    if preprocess == "symmetric":
        return InputRange((2.0,) * channels, (-1.0,) * channels)
    if preprocess == "raw":
        return InputRange((255.0,) * channels, (0.0,) * channels)
    if preprocess == "caffe":
        return InputRange((255.0,) * 3, tuple(-m for m in _CAFFE_MEAN_BGR), bgr=True)
    return InputRange(
        tuple(1.0 / s for s in _TORCH_STD_RGB), tuple(-m / s for m, s in zip(_TORCH_MEAN_RGB, _TORCH_STD_RGB))
    )


def model_and_mode(model: Any, preprocess: str | None) -> tuple[keras.Model, str]:
    """``(keras.Model, preprocess mode)`` of a keras.Model or a LoadedModel; ``preprocess`` wins when given,
    then the LoadedModel's own mode, then 'unit'."""
    if isinstance(model, keras.Model):
        return model, preprocess or "unit"
    return model.model, preprocess or getattr(model, "preprocess", "unit")
