"""The compiled steps every attribution method is built from, cached per model and layer.

* ``cam_maps`` runs the compiled forward + backward to a layer and hands ``(activations,
  gradients)`` to the method's ``combine`` step (Grad-CAM, Grad-CAM++, LayerCAM), then applies
  ReLU and upsamples to the input size;
* ``input_gradients`` gives d(score)/d(input) for a batch (Saliency, Gradient x Input,
  Integrated Gradients, and so SmoothGrad); with a ``rewrite`` of the sub-model, Guided
  Backpropagation's gated ReLUs;
* ``forward`` runs batches to a layer in chunks (Score-CAM, Eigen-CAM); ``target_scores`` and
  ``resolve_target`` read the scores through ``vizcore.models.predict`` (Occlusion, the metrics),
  as the probabilities do (``predict.probabilities(..., on_chunk=progress.advance)``).

Each chunk loop counts its images with ``progress.advance``.

The score of a target is the pre-softmax score (``features.feature_model``); a binary head
(``heads.is_binary``: one sigmoid or linear unit) has targets 0 and 1: target 1 -> +logit,
target 0 -> -logit, top class 1 when the logit is > 0.

Compiled functions live in ``vizcore.cache.per_model`` (weakly keyed by the model, bounded per
kind). A value holds the ``tf.function`` and the sub-model it calls (which shares the model's
layers and variables) but never the model itself. Each is traced once (fixed input signature:
any batch size, the target as a tensor). The model is never changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.progress import advance
from vizcore.cache import per_model
from vizcore.errors import AttributionError
from vizcore.models import blocks, features, fold, graph, heads, predict
from vizcore.models.batches import as_batch, as_image
from vizcore.present.render import resize_map

TOP = -1  # the target passed to compiled functions for "each image's top class"
DEFAULT_BATCH = predict.DEFAULT_BATCH  # images per chunk where a model's layer sizes are unknown
CHUNK_BYTES = 40 * 2**20  # the largest layer output of one chunk (see batch_for)
MAX_BATCH = 256
ENGINES_PER_KIND = 16  # compiled functions kept per model and kind (one per layer): a layer sweep fits


@dataclass(frozen=True)
class Engine:
    """What is cached for one model and one (kind, layer): never a reference to the model itself."""

    fn: Any  # a tf.function with a fixed input signature
    classes: int  # number of score units
    binary: bool  # one binary logit (heads.is_binary)
    height: int | None
    width: int | None
    channels: int
    head: str
    layer_shape: tuple[int | None, ...] = ()  # output shape of the layer, () when none


def _target_score(scores: tf.Tensor, target: tf.Tensor, binary: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image score of the target (N,) and the class used (N,); target TOP = each image's top class."""
    if binary:
        logit = scores[:, 0]
        chosen = tf.where(target < 0, tf.cast(logit > 0, tf.int32), target)
        return tf.where(chosen == 1, logit, -logit), chosen
    top = tf.argmax(scores, axis=1, output_type=tf.int32)
    chosen = tf.where(target < 0, top, target)
    return tf.gather(scores, chosen, batch_dims=1), chosen


def _outputs(sub: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
    outs = sub(x, training=False)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _cam_step(sub: keras.Model, binary: bool, x: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(acts, d score / d acts, scores, chosen class) of a batch."""
    with tf.GradientTape() as tape:
        acts, scores = _outputs(sub, x)
        score, chosen = _target_score(scores, target, binary)
    return acts, tape.gradient(score, acts), scores, chosen


def _input_grad_step(sub: keras.Model, binary: bool, x: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(d score / d x, score, chosen class) of a batch."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        (scores,) = _outputs(sub, x)
        score, chosen = _target_score(scores, target, binary)
    return tape.gradient(score, x), score, chosen


def _forward_step(sub: keras.Model, binary: bool, x: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(*layer outputs, scores) of a batch."""
    return tuple(_outputs(sub, x))


def probabilities_of(scores_nk: tf.Tensor, binary: bool, head: str) -> tf.Tensor:
    """``heads.probabilities`` on the graph, float32: (N, 2) for a binary head, else sigmoid or softmax (N, K)."""
    if binary:
        return tf.concat([tf.sigmoid(-scores_nk[:, :1]), tf.sigmoid(scores_nk[:, :1])], axis=-1)
    return tf.sigmoid(scores_nk) if head == "sigmoid" else tf.nn.softmax(scores_nk)


def _interpolation_rows(size: tf.Tensor, grid: tf.Tensor, up: tf.Tensor, shifts_m: tf.Tensor) -> tf.Tensor:
    """Rows ``shift .. shift + size`` of the bilinear upsampling matrix grid -> up (half-pixel centres,
    edges clamped, as ``tf.image.resize``); (M, size, grid)."""
    u = tf.cast(shifts_m[:, None] + tf.range(size)[None], tf.float32)  # (M, size) positions in the upsampled mask
    src = (u + 0.5) * tf.cast(grid, tf.float32) / tf.cast(up, tf.float32) - 0.5
    low = tf.floor(src)
    frac = src - low
    low_i = tf.cast(low, tf.int32)
    lo, hi = tf.clip_by_value(low_i, 0, grid - 1), tf.clip_by_value(low_i + 1, 0, grid - 1)
    return tf.one_hot(lo, grid) * (1.0 - frac)[..., None] + tf.one_hot(hi, grid) * frac[..., None]


def smooth_masks(cells_mgg: tf.Tensor, shifts_m2: tf.Tensor, height, width) -> tf.Tensor:
    """RISE's masks from grid cells: upsampled bilinearly to (grid + 1) * cell, cropped at each shift; (M, H, W).

    ``cell`` = ceil(size / grid); values clipped to [0, 1]. Bilinear upsampling is separable, so each
    cropped mask is rows_h @ cells @ rows_w^T with only the rows of the interpolation matrices that the
    crop keeps: no full-size upsampled mask is made. Runs on the graph (TensorFlow ops).
    """
    grid_h, grid_w = tf.shape(cells_mgg)[1], tf.shape(cells_mgg)[2]
    rows_h = _interpolation_rows(height, grid_h, (grid_h + 1) * -(-height // grid_h), shifts_m2[:, 0])
    rows_w = _interpolation_rows(width, grid_w, (grid_w + 1) * -(-width // grid_w), shifts_m2[:, 1])
    masks = tf.einsum("mhg,mgk,mwk->mhw", rows_h, cells_mgg, rows_w)
    return tf.clip_by_value(masks, 0.0, 1.0)


def _masked_step(
    sub: keras.Model, binary: bool, head: str, image: tf.Tensor, cells: tf.Tensor, shifts: tf.Tensor, target: tf.Tensor
) -> tf.Tensor:
    """sum_i P(target | image * M_i) * M_i over a batch of RISE masks built from ``cells`` and ``shifts``; (H, W)."""
    masks = smooth_masks(cells, shifts, tf.shape(image)[0], tf.shape(image)[1])
    (scores,) = _outputs(sub, image[None] * masks[..., None])
    probs = tf.gather(probabilities_of(scores, binary, head), target, axis=1)
    return tf.tensordot(probs, masks, axes=1)


_STEPS = {"cam": _cam_step, "input_grad": _input_grad_step, "forward": _forward_step, "masked": _masked_step}


Rewrite = Callable[
    [keras.Model], keras.Model
]  # sub-model -> a copy with the same inputs and outputs sharing its layers


def _build(fm: features.FeatureModel, kind: str, spec: graph.InputSpec, rewrite: Rewrite | None = None) -> Engine:
    # the sub-model only: nothing below may reach the original model; BatchNormalization folded
    sub = fold.fold_batchnorm(fm.model if rewrite is None else rewrite(fm.model))
    classes = int(sub.outputs[-1].shape[-1])
    binary = heads.is_binary(fm.head, classes)
    image = (spec.height, spec.width, spec.channels)
    if kind == "masked":  # one image, the cells (M, grid, grid) and shifts (M, 2) of its masks, the target
        signature = [
            tf.TensorSpec(image, tf.float32),
            tf.TensorSpec((None, None, None), tf.float32),
            tf.TensorSpec((None, 2), tf.int32),
            tf.TensorSpec((), tf.int32),
        ]
        step = functools.partial(_masked_step, sub, binary, fm.head)
    else:
        signature = [tf.TensorSpec((None, *image), tf.float32)]
        if kind != "forward":
            signature.append(tf.TensorSpec((), tf.int32))  # the target; TOP = each image's top class
        step = functools.partial(_STEPS[kind], sub, binary)
    # A partial, not a closure: TensorFlow then counts traces per engine instead of per code
    # object, so one trace for each of many models is not reported as "excessive retracing".
    fn = tf.function(step, input_signature=signature)
    layer_shape = tuple(sub.outputs[0].shape) if fm.layers else ()
    return Engine(fn, classes, binary, spec.height, spec.width, spec.channels, fm.head, layer_shape)


def engine(model: keras.Model, kind: str, layer: str | None = None, rewrite: Rewrite | None = None) -> Engine:
    """The cached compiled function of ``kind`` ('cam', 'input_grad', 'forward', 'masked') for a model and layer.

    ``rewrite`` (a module-level function, part of the cache key) turns the feature sub-model into
    a copy that computes differently, e.g. Guided Backpropagation's gated ReLUs.
    """

    def build() -> Engine:
        return _build(features.feature_model(model, (layer,) if layer else ()), kind, graph.input_spec(model), rewrite)

    key = (f"attribution.{kind}", layer) if rewrite is None else (f"attribution.{kind}", layer, rewrite)
    return per_model(model, key, build, limit=ENGINES_PER_KIND)


def batch_for(model: keras.Model) -> int:
    """Images per chunk for this model: as many as keep the chunk's largest layer output within ``CHUNK_BYTES``.

    On 2 busy cores, MobileNetV2 at 224 (largest output 112x112x96 floats, 4.8 MB per image) runs
    forward passes and gradients 1.5-2x faster per image in chunks of 8 than of 32 (the chunk's
    activations stay in cache); on idle cores 8 is as fast as 16, and a gradient's peak memory is lower.
    A small network gets large chunks (MNIST CNN: 256), so fewer calls. 1..MAX_BATCH;
    ``DEFAULT_BATCH`` when a layer's size is unknown (an input of any size).
    """

    def measure() -> int:
        largest = 0
        for layer in features.feature_model(model).model.layers:
            try:
                shapes = [tuple(t.shape) for t in keras.tree.flatten(layer.output)]
            except (AttributeError, ValueError):  # a layer called more than once has no single output
                continue
            for shape in shapes:
                if any(d is None for d in shape[1:]):
                    return DEFAULT_BATCH
                largest = max(largest, 4 * int(np.prod(shape[1:], dtype=np.int64)))
        return int(np.clip(CHUNK_BYTES // max(largest, 1), 1, MAX_BATCH))

    return per_model(model, ("attribution.batch_for",), measure, limit=1)


# --------------------------------------------------------------------------- layers, targets, scores


def cam_layer(model: keras.Model, layer: str | None, kind: str = "cam") -> str:
    """The path of a CAM method's layer: ``layer`` resolved, or the default block output; must be 4-D."""
    path = blocks.default_target_layer(model) if layer is None else graph.resolve_layer(model, layer)
    shape = engine(model, kind, path).layer_shape
    if len(shape) != 4:
        raise AttributionError(
            f"Layer '{path}' outputs shape {shape}; CAM methods need a spatial layer "
            "(batch, height, width, channels), such as a convolution."
        )
    return path


def _check_target(binary: bool, classes: int, target: int | None) -> int:
    if target is None:
        return TOP
    limit = 2 if binary else classes
    if not 0 <= int(target) < limit:
        raise AttributionError(f"target must be a class index in 0..{limit - 1}, got {target}.")
    return int(target)


def forward(
    model: keras.Model, batch_nhwc: np.ndarray, layer: str, *, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The compiled forward pass to ``layer`` in chunks: (layer outputs (N, ...), scores (N, K))."""
    eng = engine(model, "forward", layer)
    batch_size = batch_size or batch_for(model)
    chunks = []
    for i in range(0, len(batch_nhwc), batch_size):
        chunks.append(eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32)))
        advance(len(batch_nhwc[i : i + batch_size]))
    acts, scores = (np.concatenate([np.asarray(c[j]) for c in chunks]) for j in range(2))
    return acts, scores


def scores(model: keras.Model, batch_nhwc: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """Pre-softmax scores of a batch, float32 (N, K), through the compiled forward pass, in chunks.

    The same scores as ``predict.scores`` within float rounding: BatchNormalization is folded here.
    ``batch_size`` None: ``batch_for(model)``.
    """
    fn = engine(model, "forward").fn
    batch_size = batch_size or batch_for(model)
    parts = []
    for i in range(0, len(batch_nhwc), batch_size):
        chunk = batch_nhwc[i : i + batch_size]
        parts.append(np.asarray(fn(tf.constant(chunk, tf.float32))[-1]))
        advance(len(chunk))
    return np.concatenate(parts)


def target_scores(
    model: keras.Model, batch_nhwc: np.ndarray, target: int, *, batch_size: int | None = None
) -> np.ndarray:
    """The pre-softmax score of ``target`` for every image of a batch (N,) (binary: signed logit)."""
    out = scores(model, batch_nhwc, batch_size=batch_size)
    if engine(model, "forward").binary:
        return np.where(target == 1, out[:, 0], -out[:, 0])
    return out[:, target]


def resolve_target(model: keras.Model, image: np.ndarray, target: int | None = None) -> int:
    """``target`` checked, or the top class of the image when None (binary: 1 when the logit > 0)."""
    s = predict.scorer(model)
    chosen = _check_target(s.binary, s.classes, target)
    if chosen != TOP:
        return chosen
    scores = predict.scores(model, as_image(model, image)[None], on_chunk=advance)
    return int(s.top_classes(scores)[0])


# --------------------------------------------------------------------------- gradients and CAMs


def input_gradients(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    *,
    batch_size: int | None = None,
    rewrite: Rewrite | None = None,
    reduce: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> np.ndarray:
    """d(target score)/d(input) for every image of a batch, float32 (N, H, W, C).

    ``target=None`` takes each image's top class; ``rewrite`` as in ``engine``; chunks of ``batch_size``
    (None: ``batch_for(model)``). ``reduce`` (e.g. ``max_abs_over_channels``) is applied to each chunk
    on TensorFlow's threads before it comes back, and the result is its output instead.
    """
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "input_grad", rewrite=rewrite)
    batch_size = batch_size or batch_for(model)
    t = tf.constant(_check_target(eng.binary, eng.classes, target), tf.int32)
    parts = []
    for i in range(0, len(batch_nhwc), batch_size):
        grads = eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32), t)[0]
        parts.append(np.asarray(grads if reduce is None else reduce(grads)))
        advance(len(batch_nhwc[i : i + batch_size]))
    return np.concatenate(parts)


def max_abs_over_channels(grads_nhwc: tf.Tensor) -> tf.Tensor:
    """max_c |g| (N, H, W): Saliency's and Guided Backprop's map of a gradient."""
    return tf.reduce_max(tf.abs(grads_nhwc), axis=-1)


def upsample(map_hw: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a layer-sized map to the input size (no-op when already that size)."""
    return map_hw.astype(np.float32) if map_hw.shape == tuple(size_hw) else resize_map(map_hw, size_hw)


Combine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (acts_nhwk, grads_nhwk) -> cams_nhw


def cam_maps(
    model: keras.Model, batch_nhwc: np.ndarray, combine: Combine, *, target: int | None = None, layer: str | None = None
) -> np.ndarray:
    """The CAM pipeline: forward + backward to ``layer``, ``combine``, ReLU, upsample; raw maps (N, H, W)."""
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "cam", cam_layer(model, layer))
    t = tf.constant(_check_target(eng.binary, eng.classes, target), tf.int32)
    acts, grads, _, _ = eng.fn(tf.constant(batch_nhwc, tf.float32), t)
    advance(len(batch_nhwc))
    cams = np.maximum(combine(np.asarray(acts, np.float64), np.asarray(grads, np.float64)), 0.0)
    size = batch_nhwc.shape[1:3]
    return np.stack([upsample(c, size) for c in cams]).astype(np.float32)
