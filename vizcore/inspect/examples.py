"""Dataset examples per filter (Microscope-style): the top-k images and receptive-field patches of each channel.

``top_examples(model, layer, images_nhwc, k=9)`` runs the images through the model once, in batches,
keeping a running top-k per channel of the channel's maximum over positions; the receptive field of
that maximum's position comes from the layer chain (``vizcore.models.fields.receptive_field``).

Example:
    >>> ex = top_examples(model, "conv2", mnist.x_nhwc, k=9)
    >>> ex.indices.shape, ex.scores.shape, ex.boxes.shape   # (channels, k), (channels, k), (channels, k, 4)
    ((64, 9), (64, 9), (64, 9, 4))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from vizcore.cache import per_model
from vizcore.errors import InputShapeError
from vizcore.models import batches, fields, graph
from vizcore.present import render

Progress = Callable[[int, int], None]  # (images done, images in all)


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
        field = fields.receptive_field(model, path, x.shape[1:3])
        out_w = field.out_hw[1]
        y, xx = np.divmod(top_w, out_w)
        boxes = field.boxes(y, xx)
    else:
        y = xx = np.zeros_like(top_w)
        boxes = np.broadcast_to(np.array([0, 0, x.shape[2], x.shape[1]], np.int64), top_w.shape + (4,)).copy()
    return TopExamples(indices=top_i, scores=top_s, boxes=boxes, positions=np.stack([y, xx], axis=-1), layer=path)


def merge(parts: Sequence[TopExamples], offsets: Sequence[int], k: int) -> TopExamples:
    """The top-k of a dataset from the top-k of its shards (``top_examples`` on rows ``offsets[i]`` onward):
    exactly what one pass over the whole gives, ties going to the lower index as there.

    Example:
        >>> whole = merge([top_examples(m, "conv2", x[:60]), top_examples(m, "conv2", x[60:])], [0, 60], k=9)
    """
    s = np.concatenate([p.scores for p in parts], axis=1)
    i = np.concatenate([p.indices + int(o) for p, o in zip(parts, offsets)], axis=1)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]  # shards in row order: a tie keeps the lower index
    take = lambda a: np.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), 1)  # noqa: E731
    boxes, positions = (np.concatenate([getattr(p, n) for p in parts], axis=1) for n in ("boxes", "positions"))
    return TopExamples(take(i), take(s), take(boxes), take(positions), parts[0].layer)


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
