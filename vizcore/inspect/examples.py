"""Dataset examples per filter (Microscope-style): the top-k images and receptive-field patches of each channel.

``top_examples(model, layer, images_nhwc, k=9)`` runs the images through the model once, in batches,
keeping a running top-k per channel of the channel's maximum over positions; the receptive field of
that maximum's position comes from the layer chain (``receptive_field``).

Example:
    >>> ex = top_examples(model, "conv2", mnist.x_nhwc, k=9)
    >>> ex.indices.shape, ex.scores.shape, ex.boxes.shape   # (channels, k), (channels, k), (channels, k, 4)
    ((64, 9), (64, 9), (64, 9, 4))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from vizcore.cache import per_model
from vizcore.errors import InputShapeError
from vizcore.models import batches, graph
from vizcore.present import render

Progress = Callable[[int, int], None]  # (images done, images in all)

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


def _window(
    axes: tuple[Axis, ...], n: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[tuple[Axis, ...], int]:
    """The axes after a sliding window over a tensor of size ``n``, and the output size (Keras's rules)."""
    span = dilation * (kernel - 1) + 1
    if padding == "same":
        out = math.ceil(n / stride)
        before = max((out - 1) * stride + span - n, 0) // 2
    else:  # valid
        out = (n - span) // stride + 1
        before = 0
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


@dataclass(frozen=True, eq=False)
class TopExamples:
    """The top-k images of each channel of a layer over a dataset, best first.

    Attributes:
        indices: int64 (channels, k) image indices.
        scores: float32 (channels, k) the channel's maximum over positions in that image.
        boxes: int64 (channels, k, 4) receptive field (x0, y0, x1, y1) of that maximum, x1/y1 exclusive, clipped.
        positions: int64 (channels, k, 2) (y, x) of the maximum in the layer's output.
        layer: the layer path.
    """

    indices: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    positions: np.ndarray
    layer: str

    @property
    def channels(self) -> int:
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


def _reducer(model: keras.Model, path: str) -> keras.Model:
    """A sub-model: image batch -> (max over positions, flat argmax position), each (N, channels)."""

    def build() -> keras.Model:
        traced = graph.trace(model)
        out = traced[path].output
        if len(out.shape) == 4:
            flat = (
                ops.reshape(out, (-1, out.shape[1] * out.shape[2], out.shape[3]))
                if out.shape[1] and out.shape[2]
                else None
            )
            if flat is None:  # any-size model: flatten positions with the runtime shape
                flat = keras.layers.Reshape((-1, out.shape[3]))(out)
            best, where = ops.max(flat, axis=1), ops.argmax(flat, axis=1)
        elif len(out.shape) == 2:
            best, where = out, ops.zeros_like(out, dtype="int32")
        else:
            raise InputShapeError(
                f"Layer '{path}' outputs shape {tuple(out.shape)}; examples need a feature map or a vector."
            )
        return keras.Model(traced.input, [best, where], name=f"{model.name}_examples")

    return per_model(model, ("examples.reducer", path), build, limit=8)


def _merge(
    top_scores: np.ndarray,
    top_index: np.ndarray,
    top_where: np.ndarray,
    scores: np.ndarray,
    index: np.ndarray,
    where: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the k best of the running top (channels, k') and a batch (channels, b); ties go to the lower index."""
    s = np.concatenate([top_scores, scores], axis=1)
    i = np.concatenate([top_index, index], axis=1)
    w = np.concatenate([top_where, where], axis=1)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1), np.take_along_axis(w, order, 1)


def top_examples(
    model: keras.Model,
    layer: str,
    images_nhwc: np.ndarray,
    k: int = 9,
    *,
    batch_size: int = 500,
    on_progress: Progress | None = None,
) -> TopExamples:
    """The top-k images and receptive-field boxes of every channel of ``layer``, in one batched pass.

    Args:
        model: any single-input image model (not changed).
        layer: a layer path or unique plain name with a (N, H, W, C) or (N, C) output.
        images_nhwc: the dataset, preprocessed for the model.
        k: examples per channel (at most the number of images).
        batch_size: images per forward pass.
        on_progress: called with (images done, images in all) after each batch.

    Returns:
        TopExamples; for a vector layer the score is the value and the box the whole image.
    """
    path = graph.resolve_layer(model, layer)
    x = batches.as_batch(model, images_nhwc)
    n = len(x)
    k = max(1, min(int(k), n))
    reducer = _reducer(model, path)
    channels = int(reducer.outputs[0].shape[-1])
    top_s = np.empty((channels, 0), np.float32)
    top_i = np.empty((channels, 0), np.int64)
    top_w = np.empty((channels, 0), np.int64)
    for lo in range(0, n, batch_size):
        best, where = reducer.predict_on_batch(x[lo : lo + batch_size])
        best, where = np.asarray(best, np.float32).T, np.asarray(where, np.int64).T  # (channels, b)
        index = np.broadcast_to(np.arange(lo, lo + best.shape[1], dtype=np.int64), best.shape)
        top_s, top_i, top_w = _merge(top_s, top_i, top_w, best, index, where, k)
        if on_progress is not None:
            on_progress(min(lo + batch_size, n), n)
    traced_out = graph.trace(model)[path].output
    if len(traced_out.shape) == 4:
        field = receptive_field(model, path, x.shape[1:3])
        out_w = field.out_hw[1]
        y, xx = np.divmod(top_w, out_w)
        boxes = field.boxes(y, xx)
    else:
        y = xx = np.zeros_like(top_w)
        boxes = np.broadcast_to(np.array([0, 0, x.shape[2], x.shape[1]], np.int64), top_w.shape + (4,)).copy()
    return TopExamples(indices=top_i, scores=top_s, boxes=boxes, positions=np.stack([y, xx], axis=-1), layer=path)


def patches(images_nhwc: np.ndarray, examples: TopExamples, channel: int) -> list[np.ndarray]:
    """The receptive-field crops of one channel's examples, best first (views into ``images_nhwc``)."""
    crops = []
    for index, (x0, y0, x1, y1) in zip(examples.indices[channel], examples.boxes[channel]):
        crops.append(images_nhwc[index, y0:y1, x0:x1])
    return crops


def draw_box(image_hwc: np.ndarray, box: np.ndarray, colour: tuple[int, int, int] = (255, 64, 0)) -> np.ndarray:
    """uint8 RGB copy of an image with a 1-pixel rectangle around ``box`` (x0, y0, x1, y1), x1/y1 exclusive."""
    out = render.to_rgb(np.asarray(image_hwc)).copy()
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        return out
    out[y0, x0:x1] = out[y1 - 1, x0:x1] = colour
    out[y0:y1, x0] = out[y0:y1, x1 - 1] = colour
    return out


def card_tiles(
    display_nhwc: np.ndarray, examples: TopExamples, channel: int, *, tile_px: int = 96
) -> tuple[np.ndarray, np.ndarray]:
    """A channel's examples as two uint8 RGB stacks (k, tile, tile, 3): whole images with the box drawn,
    and the patches.

    ``display_nhwc`` are the uint8 images the model saw (``evaluation.prepare(...).display_nhwc``).
    """
    whole, crops = [], []
    for index, box in zip(examples.indices[channel], examples.boxes[channel]):
        image = np.asarray(display_nhwc[index])
        whole.append(render.resize(draw_box(image, box), (tile_px, tile_px), smooth=False))
        x0, y0, x1, y1 = (int(v) for v in box)
        crops.append(render.resize(render.to_rgb(image[y0:y1, x0:x1]), (tile_px, tile_px), smooth=False))
    return np.stack(whole), np.stack(crops)
