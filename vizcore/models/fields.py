"""Receptive fields: which input pixels each output position of a layer sees, from the layer chain.

``receptive_field(model, layer)`` walks the one trace (``graph.trace``) from the image to ``layer``
and keeps, along each axis, an affine map from an output position to its input window. It handles
Conv2D, DepthwiseConv2D, SeparableConv2D (kernel, stride, padding, dilation), max and average
pooling, zero padding and cropping, and pass-through layers (BatchNorm, activations, Add: the
union over inbound paths); a layer that mixes every position (Flatten, Dense, global pooling) or
whose geometry is unknown makes the field the whole image. Padding follows TensorFlow
(``pad_before``). The Dataset page's filter examples (``inspect.examples``) and the texture size
of feature visualization (``featurevis.fitting``) both read it.

Example:
    >>> rf = receptive_field(tiny, "conv_b")      # conv 3x3, pool 2x2, conv 3x3
    >>> rf.boxes(0, 0), rf.size, rf.stride
    (array([0, 0, 8, 8]), (8, 8), 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from vizcore.errors import InputShapeError
from vizcore.models import graph

# Layers that keep every position where it is (union over inbound paths for several inputs).
_POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_RESAMPLING = (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D, keras.layers.Resizing)


@dataclass(frozen=True)
class Axis:
    """Where output position ``i`` of a layer looks along one image axis: input pixels
    ``[start + i * jump, end + i * jump)`` (before clipping to the image)."""

    jump: int
    start: int
    end: int


@dataclass(frozen=True)
class ReceptiveField:
    """The input pixels behind each position of a layer's output.

    ``rows``/``cols`` hold one affine ``Axis`` per path from the image (a residual add has several;
    the field is their union). ``whole`` is True when a layer on the way mixes every position
    (Flatten, Dense, global pooling, or a layer whose geometry is unknown): each position then
    sees the whole image.
    """

    rows: tuple[Axis, ...]
    cols: tuple[Axis, ...]
    out_hw: tuple[int, int]
    image_hw: tuple[int, int]
    whole: bool = False

    def boxes(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """int64 (..., 4) boxes (x0, y0, x1, y1) of output positions (y, x), x1/y1 exclusive, clipped to the image."""
        y, x = np.asarray(y, np.int64), np.asarray(x, np.int64)
        height, width = self.image_hw
        if self.whole:
            full = np.array([0, 0, width, height], np.int64)
            return np.broadcast_to(full, y.shape + (4,)).copy()
        y0 = np.min([a.start + y * a.jump for a in self.rows], axis=0)
        y1 = np.max([a.end + y * a.jump for a in self.rows], axis=0)
        x0 = np.min([a.start + x * a.jump for a in self.cols], axis=0)
        x1 = np.max([a.end + x * a.jump for a in self.cols], axis=0)
        return np.stack(
            [np.clip(x0, 0, width), np.clip(y0, 0, height), np.clip(x1, 0, width), np.clip(y1, 0, height)], axis=-1
        )

    @property
    def stride(self) -> int:
        """Input pixels between neighbouring output positions (the product of the strides on the way);
        the largest over paths and axes; 0 when ``whole``."""
        if self.whole:
            return 0
        return max(a.jump for a in self.rows + self.cols)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of one position's field before clipping."""
        if self.whole:
            return self.image_hw
        return (
            max(a.end for a in self.rows) - min(a.start for a in self.rows),
            max(a.end for a in self.cols) - min(a.start for a in self.cols),
        )


@dataclass(frozen=True)
class _Field:
    rows: tuple[Axis, ...]
    cols: tuple[Axis, ...]
    hw: tuple[int, int]  # spatial size of this tensor
    whole: bool = False


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _union(axes) -> tuple[Axis, ...]:
    """One Axis per jump: with equal jumps the union's box is the smallest start and the largest end (exact)."""
    by_jump: dict[int, Axis] = {}
    for a in axes:
        b = by_jump.get(a.jump)
        by_jump[a.jump] = a if b is None else Axis(a.jump, min(a.start, b.start), max(a.end, b.end))
    return tuple(by_jump.values())


def pad_before(in_size: int, out_size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Zeros TensorFlow adds before the first row (or column) of a sliding window.

    'valid' adds none; 'same' pads ``max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0)``
    zeros in all, half of them (rounded down) before and the rest after.

    Raises:
        ValueError: a padding other than 'valid' and 'same'.
    """
    if padding == "valid":
        return 0
    if padding != "same":
        raise ValueError(f"padding {padding!r} is not supported (only 'valid' and 'same')")
    return max((out_size - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0) // 2


def _window(
    axes: tuple[Axis, ...], n: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[tuple[Axis, ...], int]:
    """The axes after a sliding window over a tensor of size ``n``, and the output size (Keras's rules)."""
    span = dilation * (kernel - 1) + 1
    out = math.ceil(n / stride) if padding == "same" else (n - span) // stride + 1
    before = pad_before(n, out, kernel, stride, dilation, padding)
    shifted = tuple(
        Axis(jump=a.jump * stride, start=a.start - before * a.jump, end=a.end + (span - 1 - before) * a.jump)
        for a in axes
    )
    return _union(shifted), out


def _through(layer: keras.layers.Layer, fields: list[_Field], out_shape: tuple) -> _Field:
    """The field of a layer's output from the fields of its inputs."""
    spatial = len(out_shape) == 4
    if not fields or any(f.whole for f in fields) or not spatial:
        hw = (int(out_shape[1] or 0), int(out_shape[2] or 0)) if spatial else (1, 1)
        return _Field((), (), hw, whole=True)
    f = fields[0]
    if isinstance(layer, _CONVS) or isinstance(layer, _POOLS):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return _Field((), (), f.hw, whole=True)
        if isinstance(layer, _POOLS):
            kernel, stride, dilation = _pair(layer.pool_size), _pair(layer.strides or layer.pool_size), (1, 1)
        else:
            kernel, stride, dilation = _pair(layer.kernel_size), _pair(layer.strides), _pair(layer.dilation_rate)
        rows, h = _window(f.rows, f.hw[0], kernel[0], stride[0], dilation[0], layer.padding)
        cols, w = _window(f.cols, f.hw[1], kernel[1], stride[1], dilation[1], layer.padding)
        return _Field(rows, cols, (h, w))
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        hw = (f.hw[0] + sum(layer.padding[0]), f.hw[1] + sum(layer.padding[1]))
        return _Field(
            tuple(Axis(a.jump, a.start - top * a.jump, a.end - top * a.jump) for a in f.rows),
            tuple(Axis(a.jump, a.start - left * a.jump, a.end - left * a.jump) for a in f.cols),
            hw,
        )
    if isinstance(layer, keras.layers.Cropping2D):
        (top, _), (left, _) = layer.cropping
        hw = (f.hw[0] - sum(layer.cropping[0]), f.hw[1] - sum(layer.cropping[1]))
        return _Field(
            tuple(Axis(a.jump, a.start + top * a.jump, a.end + top * a.jump) for a in f.rows),
            tuple(Axis(a.jump, a.start + left * a.jump, a.end + left * a.jump) for a in f.cols),
            hw,
        )
    # pass-through (BatchNorm, activations, Dropout, Add, Concatenate, ...): same positions, union over inputs
    out_hw = tuple(out_shape[1:3])
    if not isinstance(layer, _RESAMPLING) and all(g.hw == f.hw for g in fields) and out_hw in (f.hw, (None, None)):
        rows = _union(a for g in fields for a in g.rows)
        cols = _union(a for g in fields for a in g.cols)
        return _Field(rows, cols, f.hw)
    return _Field((), (), f.hw, whole=True)  # a geometry we do not know (UpSampling, Conv2DTranspose, resizing)


def receptive_field(model: keras.Model, layer: str, image_hw: tuple[int, int] | None = None) -> ReceptiveField:
    """The receptive field of every output position of ``layer``, from the layer chain.

    Handles Conv2D, DepthwiseConv2D, SeparableConv2D (kernel, stride, padding, dilation), max and
    average pooling, zero padding and cropping, and pass-through layers (BatchNorm, activations,
    Add: the union over inbound paths). ``image_hw`` is needed only for a model that takes any size.

    Raises:
        LayerNotFoundError: no such layer.
        InputShapeError: the model takes any size and ``image_hw`` is not given.

    Example:
        >>> receptive_field(tiny, "conv_b").boxes(0, 0)   # conv 3x3, pool 2x2, conv 3x3
        array([0, 0, 8, 8])
    """
    path = graph.resolve_layer(model, layer)
    spec = graph.input_spec(model)
    if image_hw is None:
        if spec.height is None or spec.width is None:
            raise InputShapeError(
                f"Model '{model.name}' takes images of any size; give the image size to find a receptive field."
            )
        image_hw = (spec.height, spec.width)
    image_hw = (int(image_hw[0]), int(image_hw[1]))
    traced = graph.trace(model)
    start = (Axis(1, 0, 1),)
    fields: dict[str, _Field] = {"input": _Field(start, start, image_hw)}
    for t in traced.layers:
        if t.is_model:  # a nested model's output is its last inner layer's
            inner = next(
                u.path for u in traced.layers if u.path.startswith(t.path + graph.SEP) and u.output is t.output
            )
            fields[t.path] = fields[inner]
        else:
            fields[t.path] = _through(t.layer, [fields[p] for p in t.inbound if p in fields], tuple(t.output.shape))
        if t.path == path:
            break
    f = fields[path]
    return ReceptiveField(rows=f.rows, cols=f.cols, out_hw=f.hw, image_hw=image_hw, whole=f.whole)
