"""A model split at a layer: image -> layer (g) and layer -> pre-softmax scores (h), and what CRAFT runs on them.

CRAFT factorizes a layer's activations and puts masked concept combinations back into the rest of
the network, so it needs h as a model of its own. ``keras.Model(layer_output, scores)`` cuts the
model's trace there; that works wherever every path to the scores passes through the layer (not
inside a residual block, whose add also reads an earlier tensor). Both halves share the model's
layers and variables; the model is never changed. Everything compiled lives in
``vizcore.cache.per_model``, one entry per layer (and crop size).

Example:
    >>> halves = split(model, "pool2")
    >>> halves.h(halves.g(batch_nhwc)).shape    # the model's scores, before the softmax
    TensorShape([8, 3])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.cache import per_model
from vizcore.errors import ConceptError
from vizcore.models import features, fields, graph, heads

NONNEGATIVE = frozenset({"relu", "relu6", "sigmoid", "softmax", "softplus", "hard_sigmoid", "exponential"})
SIGN_KEEPING = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
    keras.layers.UpSampling2D,
    keras.layers.Concatenate,
    keras.layers.Add,
    keras.layers.Identity,
)
SPLITS_KEPT = 8  # per model: a handful of layers tried in one session
STRIDE = 0.8  # crops overlap by at least a fifth (Xplique's CraftTf: stride int(0.8 * patch), VALID windows)
MAX_PATCH = 0.3  # of the image side
CROP_BATCH = 32  # crops through the model per call (attribution's batch: MobileNetV2 224 peaks near 150 MB)
MASKED_BYTES = 32 * 2**20  # masked activations per call of the Sobol pass


@dataclass(frozen=True)
class Halves:
    """The model cut at ``layer``: ``g`` image -> activations, ``h`` activations -> pre-softmax scores.

    ``column`` is the score column of a class (a binary head has one: its logit; Sobol indices do
    not change with its sign).
    """

    layer: str
    g: keras.Model
    h: keras.Model
    binary: bool
    classes: int
    layer_shape: tuple[int | None, ...]

    def column(self, target: int) -> int:
        limit = 2 if self.binary else self.classes
        if not 0 <= int(target) < limit:
            raise ConceptError(f"target must be a class index in 0..{limit - 1}, got {target}.")
        return 0 if self.binary else int(target)


def _build(model: keras.Model, path: str) -> Halves:
    fm = features.feature_model(model, (path,))
    acts, scores = fm.model.outputs
    if len(acts.shape) != 4:
        raise ConceptError(
            f"Layer '{path}' outputs shape {tuple(acts.shape)}; concepts need a layer with feature maps "
            "(batch, height, width, channels), such as a convolution's ReLU."
        )
    try:
        h = keras.Model(acts, scores, name=f"{model.name}_after")
    except ValueError:
        raise ConceptError(
            f"The network cannot be cut at '{path}': a later layer also reads an earlier one (a "
            "residual connection). Pick a layer between blocks, such as a block's expand ReLU or the "
            "last ReLU."
        ) from None
    classes = int(scores.shape[-1])
    return Halves(
        path,
        keras.Model(fm.model.inputs, acts, name=f"{model.name}_upto"),
        h,
        heads.is_binary(fm.head, classes),
        classes,
        tuple(acts.shape),
    )


def split(model: keras.Model, layer: str) -> Halves:
    """The model cut at ``layer`` (cached per model and layer).

    Raises:
        LayerNotFoundError: no such layer.
        ConceptError: the layer has no feature maps, or a residual connection jumps over it.
    """
    path = graph.resolve_layer(model, layer)
    return per_model(model, ("concepts.split", path), lambda: _build(model, path), limit=SPLITS_KEPT)


def _activation(layer: Any) -> str:
    if isinstance(layer, keras.layers.ReLU):
        return "relu" if not layer.negative_slope and (layer.threshold or 0) >= 0 else "leaky"
    return getattr(getattr(layer, "activation", None), "__name__", "")


def _nonnegative_paths(model: keras.Model) -> frozenset[str]:
    traced = graph.trace(model)
    sign: dict[str, bool] = {"input": False}
    for t in traced.layers:
        if t.is_model:  # its output is its last inner layer's, already seen
            inner = [u.path for u in traced.layers if u.path.startswith(t.path + graph.SEP) and u.output is t.output]
            sign[t.path] = bool(inner) and sign.get(inner[0], False)
            continue
        act = _activation(t.layer)
        if act in NONNEGATIVE:
            sign[t.path] = True
        elif act in ("", "linear") and isinstance(t.layer, SIGN_KEEPING):
            sign[t.path] = bool(t.inbound) and all(sign.get(p, False) for p in t.inbound)
        else:
            sign[t.path] = False
    return frozenset(p for p, ok in sign.items() if ok)


def _craft_layers(model: keras.Model) -> tuple[str, ...]:
    traced = graph.trace(model)
    nonneg = _nonnegative_paths(model)
    scores = features.feature_model(model).model.outputs[-1]
    found = []
    for t in traced.layers:
        if t.is_model or t.path not in nonneg or len(t.output.shape) != 4:
            continue
        try:
            keras.Model(t.output, scores)
        except ValueError:
            continue
        found.append(t.path)
    return tuple(found)


def craft_layers(model: keras.Model) -> tuple[str, ...]:
    """The layers CRAFT can factorize, in order: feature maps that are never negative (after a ReLU, a
    sigmoid, or pooling of those) where the network can be cut. The last one is the default.

    Example:
        >>> craft_layers(mobilenet_v2)[-3:]
        ('block_16_expand_relu', 'block_16_depthwise_relu', 'out_relu')
    """
    return per_model(model, "concepts.craft_layers", lambda: _craft_layers(model), limit=1)


def fitted_patch(model: keras.Model, layer: str, image_hw: tuple[int, int]) -> int:
    """The crop side fitted to the layer: its receptive field, kept between an eighth of the image (at least 8
    pixels) and 0.3 of it (Xplique's 64 of 224): a concept is a part of an object, about what one unit sees."""
    side = int(min(image_hw))
    field = fields.receptive_field(model, layer, image_hw)
    size = side if field.whole else max(field.size)
    lo = min(side, max(8, side // 8))
    return int(min(max(size, lo), max(lo, round(MAX_PATCH * side))))


def _starts(length: int, patch: int) -> np.ndarray:
    """Evenly spaced crop starts from 0 to length - patch, at most ``STRIDE * patch`` apart: the edges are covered."""
    if length <= patch:
        return np.zeros(1, np.int64)
    n = int(np.ceil((length - patch) / max(1, int(STRIDE * patch)))) + 1
    return np.round(np.linspace(0, length - patch, n)).astype(np.int64)


def crop_boxes(image_hw: tuple[int, int], patch: int) -> np.ndarray:
    """int64 (P, 4) boxes (x0, y0, x1, y1) of an image's crops, row by row; neighbours overlap by at least a fifth."""
    y0, x0 = np.meshgrid(_starts(image_hw[0], patch), _starts(image_hw[1], patch), indexing="ij")
    return np.stack([x0.ravel(), y0.ravel(), x0.ravel() + patch, y0.ravel() + patch], axis=1).astype(np.int64)


def _crop_step(
    g: keras.Model, boxes: tuple[tuple[int, int, int, int], ...], size_hw: tuple[int, int], x: tf.Tensor
) -> tf.Tensor:
    """Pooled activations (B * P, k) of every crop of a batch, image by image, each resized to the input size
    (bicubic, as Xplique)."""
    crops = tf.stack([x[:, y0:y1, x0:x1] for x0, y0, x1, y1 in boxes], axis=1)  # (B, P, p, p, C)
    crops = tf.reshape(crops, (-1, *crops.shape[2:]))
    acts = g(tf.image.resize(crops, size_hw, method="bicubic"), training=False)
    return tf.reduce_mean(acts, axis=(1, 2))


def crop_function(model: keras.Model, layer: str, image_hwc: tuple[int, int, int], patch: int):
    """The compiled ``images (B, H, W, C) -> pooled crop activations (B * P, k)`` (cached per layer and crop)."""
    halves = split(model, layer)
    h, w, c = (int(v) for v in image_hwc)

    def build():
        # A partial, not a closure: one trace per engine, not "retracing" of one code object
        boxes = tuple(tuple(int(v) for v in b) for b in crop_boxes((h, w), patch))
        step = functools.partial(_crop_step, halves.g, boxes, (h, w))
        return tf.function(step, input_signature=[tf.TensorSpec((None, h, w, c), tf.float32)])

    return per_model(model, ("concepts.crops", halves.layer, patch, h, w, c), build, limit=SPLITS_KEPT)


def _masked_step(
    h: keras.Model, u_bhwr: tf.Tensor, masks_mr: tf.Tensor, w_rk: tf.Tensor, column: tf.Tensor
) -> tf.Tensor:
    """Scores (B, M) of the class column for every image's concepts under every mask: h(sum_r m_r u_r w_r)."""
    a = tf.einsum("bhwr,mr,rk->bmhwk", u_bhwr, masks_mr, w_rk)
    shape = tf.shape(a)
    scores = h(tf.reshape(a, (-1, shape[2], shape[3], shape[4])), training=False)
    return tf.reshape(tf.gather(scores, column, axis=1), (shape[0], shape[1]))


def masked_function(model: keras.Model, layer: str):
    """The compiled ``(u (B, h, w, r), masks (M, r), w (r, k), column) -> scores (B, M)`` (cached per layer)."""
    halves = split(model, layer)
    _, hh, ww, k = halves.layer_shape

    def build():
        sig = [
            tf.TensorSpec((None, hh, ww, None), tf.float32),
            tf.TensorSpec((None, None), tf.float32),
            tf.TensorSpec((None, k), tf.float32),
            tf.TensorSpec((), tf.int32),
        ]
        return tf.function(functools.partial(_masked_step, halves.h), input_signature=sig)

    return per_model(model, ("concepts.masked", halves.layer), build, limit=SPLITS_KEPT)


CHANNEL_KEEPING = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
)
CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def channel_source(model: keras.Model, layer: str) -> str | None:
    """The convolution whose channel c is the layer's channel c (through pooling, BatchNorm, activations); None
    when another kind of layer mixes the channels on the way (an add, a concatenation, a dense layer).

    Example:
        >>> channel_source(shapes_cnn, "pool2"), channel_source(mobilenet_v2, "out_relu")
        ('conv2_2', 'Conv_1')
    """
    traced = graph.trace(model)
    path = graph.resolve_layer(model, layer)
    while path in traced:
        t = traced[path]
        if isinstance(t.layer, CONVS):
            return path
        if t.is_model or not isinstance(t.layer, CHANNEL_KEEPING) or len(t.inbound) != 1:
            return None
        path = t.inbound[0]
    return None
