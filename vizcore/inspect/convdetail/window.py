"""What every detail reads: a layer's real input and output for one image, and the window one output sees.

Padding follows TensorFlow (``vizcore.models.fields.pad_before``): 'valid' uses none, 'same' pads
``max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)`` zeros, half before and the rest after.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from vizcore.cache import per_model
from vizcore.models import fields, graph

KEEP_VALUES = 16  # per model: the (input, output) pairs of the last images and layers asked for


def io_model(model: keras.Model, path: str) -> keras.Model:
    """A sub-model from the image to ``[layer input, layer output]``; cached per model."""

    def build() -> keras.Model:
        traced = graph.trace(model)
        return keras.Model(traced.input, [traced[path].input, traced[path].output], name=f"{model.name}_io")

    return per_model(model, ("convdetail.io_model", path), build)


def layer_io(
    model: keras.Model, layer: str, image_hwc: np.ndarray
) -> tuple[str, keras.layers.Layer, np.ndarray, np.ndarray]:
    """(path, layer, input for this image, output for this image), batch axis dropped; cached."""
    path = graph.resolve_layer(model, layer)
    obj = next(found for p, found, _ in graph.iter_layers(model) if p == path)
    image = np.asarray(image_hwc, dtype=np.float32)
    spec = graph.input_spec(model)
    want = (spec.height, spec.width, spec.channels)
    if image.ndim != 3 or any(w is not None and w != g for w, g in zip(want, image.shape)):
        shown = "x".join("?" if d is None else str(d) for d in want)
        raise ValueError(f"Model '{model.name}' takes one image of {shown}; got an array of shape {image.shape}.")
    key = (path, image.shape, hashlib.blake2b(image.tobytes(), digest_size=16).digest())

    def run() -> tuple[np.ndarray, np.ndarray]:
        inp, out = io_model(model, path)(image[None], training=False)
        return np.asarray(inp)[0], np.asarray(out)[0]

    return (path, obj, *per_model(model, ("convdetail.io_values", *key), run, limit=KEEP_VALUES))


def check_position(out: np.ndarray, channel: int, y: int, x: int, path: str) -> None:
    """Raise IndexError when ``(y, x, channel)`` (or ``channel`` of a vector) is outside the layer's output."""
    if out.ndim == 3:
        h, w, c = out.shape
        if not (0 <= y < h and 0 <= x < w and 0 <= channel < c):
            raise IndexError(f"'{path}' output is {h}x{w}x{c}; (y={y}, x={x}, channel={channel}) is outside it.")
    elif not 0 <= channel < out.shape[-1]:
        raise IndexError(f"'{path}' has {out.shape[-1]} outputs; channel {channel} is outside it.")


def window_indices(in_hw, out_hw, k_hw, strides, dilation, padding, y, x):
    """Input rows and columns one output position sees, and the (top, left) padding."""
    top = fields.pad_before(in_hw[0], out_hw[0], k_hw[0], strides[0], dilation[0], padding)
    left = fields.pad_before(in_hw[1], out_hw[1], k_hw[1], strides[1], dilation[1], padding)
    rows = y * strides[0] - top + np.arange(k_hw[0]) * dilation[0]
    cols = x * strides[1] - left + np.arange(k_hw[1]) * dilation[1]
    return rows, cols, (top, left)


def gather(inp_hwc: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """inp[rows][:, cols] with ``fill`` where a row or column is outside (padding); and that mask."""
    h, w = inp_hwc.shape[:2]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    patch = inp_hwc[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)].astype(np.float64)
    patch[~inside] = fill
    return patch, ~inside


def channels_last(layer: keras.layers.Layer) -> None:
    """Raise ValueError for a layer that is not channels_last."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"'{layer.name}' uses data_format={layer.data_format!r}; only channels_last is supported.")


def apply_activation(fn, value: float | np.ndarray) -> np.ndarray:
    """An activation function applied to a number or an array, in float32 as the layer does; float64 out."""
    return np.asarray(fn(np.asarray(value, dtype=np.float32)), dtype=np.float64)


def activation_name(fn) -> str:
    """'relu', 'sigmoid', ...: the name of an activation function; 'linear' for none."""
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"
