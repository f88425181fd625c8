"""The shared pipeline of every attribution method: compiled forward/backward, targets, normalization.

A method file overrides one step and leaves the rest here:

* ``cam_maps`` runs the compiled forward + backward to a layer and hands ``(activations,
  gradients)`` to the method's ``combine`` step (Grad-CAM, Grad-CAM++, LayerCAM), then applies
  ReLU and upsamples to the input size;
* ``input_gradients`` gives d(score)/d(input) for a batch (Saliency, Gradient x Input,
  Integrated Gradients, and so SmoothGrad);
* ``forward`` / ``target_scores`` / ``probabilities`` run batches forward in chunks (Score-CAM,
  Occlusion, the metrics);
* ``normalize_map`` is the one normalization every public method ends in.

The score of a target is the pre-softmax score (``graph.feature_model``); a single sigmoid unit
is binary: target 1 -> +logit, target 0 -> -logit, top class 1 when the logit is > 0.

Compiled functions are cached per model in ``CACHE``, a ``weakref.WeakKeyDictionary`` keyed by
the model object. A value holds the ``tf.function`` and the sub-model it calls (which shares the
model's layers and variables) but never the model object itself, so when the last reference to
the model goes, its entry (and the traced graphs) goes with it. Each entry is traced once (fixed
input signature: any batch size, the target as a tensor). A lock makes the cache safe for
Streamlit's threads. The model is never changed.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore import blocks, graph
from vizcore.errors import ConvLensError
from vizcore.render import resize_map

Method = Callable[..., np.ndarray]  # (model, image_hwc, *, target=None, layer=None, **options) -> heatmap_hw
EPS = 1e-6  # relative: a map whose span is below EPS * its magnitude is treated as constant
TOP = -1  # the target passed to compiled functions for "each image's top class"
DEFAULT_BATCH = 32


class AttributionError(ConvLensError, ValueError):
    """A request an attribution method cannot honour (bad target, non-spatial layer, wrong image)."""


# --------------------------------------------------------------------------- normalization


def normalize_map(map_hw: np.ndarray) -> np.ndarray:
    """The shared normalization: min-max to [0, 1] with an epsilon; a constant map becomes zeros.

    Non-finite values are replaced by 0 first, so the result is always finite.

    Example:
        >>> normalize_map(np.array([[0.0, 2.0], [1.0, 2.0]])).tolist()
        [[0.0, 1.0], [0.5, 1.0]]
    """
    m = np.nan_to_num(np.asarray(map_hw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo <= EPS * max(abs(lo), abs(hi)):  # constant, all zeros included
        return np.zeros(m.shape, dtype=np.float32)
    return np.clip((m - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- compiled functions


@dataclass(frozen=True)
class Engine:
    """What is cached for one model and one (kind, layer): never a reference to the model itself."""

    fn: Any  # a tf.function with a fixed input signature
    classes: int  # number of score units
    binary: bool  # one sigmoid unit
    height: int | None
    width: int | None
    channels: int
    head: str
    layer_shape: tuple[int | None, ...] = ()  # output shape of the layer, () when none


CACHE: weakref.WeakKeyDictionary[keras.Model, dict[tuple[str, str | None], Engine]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


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


_STEPS = {"cam": _cam_step, "input_grad": _input_grad_step, "forward": _forward_step}


def _build(fm: graph.FeatureModel, kind: str, spec: graph.InputSpec) -> Engine:
    sub = fm.model  # the sub-model only: nothing below may reach the original model
    classes = int(sub.outputs[-1].shape[-1])
    binary = fm.head == "sigmoid" and classes == 1
    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32)]
    if kind != "forward":
        signature.append(tf.TensorSpec((), tf.int32))  # the target; TOP = each image's top class
    # A partial, not a closure: TensorFlow then counts traces per engine instead of per code
    # object, so one trace for each of many models is not reported as "excessive retracing".
    fn = tf.function(functools.partial(_STEPS[kind], sub, binary), input_signature=signature)
    layer_shape = tuple(sub.outputs[0].shape) if fm.layers else ()
    return Engine(fn, classes, binary, spec.height, spec.width, spec.channels, fm.head, layer_shape)


def engine(model: keras.Model, kind: str, layer: str | None = None) -> Engine:
    """The cached compiled function of ``kind`` ('cam', 'input_grad', 'forward') for a model and layer."""
    key = (kind, layer)
    with _LOCK:
        per_model = CACHE.get(model)
        if per_model is None:
            per_model = CACHE[model] = {}
        if key not in per_model:
            fm = graph.feature_model(model, (layer,) if layer else ())
            per_model[key] = _build(fm, kind, graph.input_spec(model))
        return per_model[key]


# --------------------------------------------------------------------------- inputs, layers, targets


def as_image(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Check one image against the model's input and return it as float32 HxWxC (HxW is HxWx1)."""
    spec = graph.input_spec(model)
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2 and spec.channels == 1:
        x = x[..., None]
    ok = x.ndim == 3 and x.shape[-1] == spec.channels and all(
        want is None or want == got for want, got in zip(spec.size, x.shape[:2])
    )
    if not ok:
        want = f"{spec.height or 'H'}x{spec.width or 'W'}x{spec.channels}"
        raise AttributionError(f"Model '{model.name}' takes one {want} image; got an array of shape {x.shape}.")
    return x


def as_batch(model: keras.Model, batch_nhwc: np.ndarray) -> np.ndarray:
    """Check a batch of images against the model's input and return it as float32 NHWC."""
    batch = np.asarray(batch_nhwc, dtype=np.float32)
    if batch.ndim != 4 or len(batch) == 0:
        raise AttributionError(f"Expected a non-empty batch (N, H, W, C); got an array of shape {batch.shape}.")
    as_image(model, batch[0])
    return batch


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


def _check_target(eng: Engine, target: int | None) -> int:
    if target is None:
        return TOP
    limit = 2 if eng.binary else eng.classes
    if not 0 <= int(target) < limit:
        raise AttributionError(f"target must be a class index in 0..{limit - 1}, got {target}.")
    return int(target)


def forward(model: keras.Model, batch_nhwc: np.ndarray, layer: str | None = None, *, batch_size: int = DEFAULT_BATCH) -> tuple[np.ndarray, ...]:
    """Run the compiled forward pass in chunks; returns (layer outputs,) + (scores (N, K),)."""
    eng = engine(model, "forward", layer)
    chunks = [eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32)) for i in range(0, len(batch_nhwc), batch_size)]
    return tuple(np.concatenate([np.asarray(c[j]) for c in chunks]) for j in range(len(chunks[0])))


def target_scores(model: keras.Model, batch_nhwc: np.ndarray, target: int, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """The pre-softmax score of ``target`` for every image of a batch (N,) (binary: signed logit)."""
    scores = forward(model, batch_nhwc, batch_size=batch_size)[-1]
    if engine(model, "forward").binary:
        return np.where(target == 1, scores[:, 0], -scores[:, 0])
    return scores[:, target]


def resolve_target(model: keras.Model, image: np.ndarray, target: int | None = None) -> int:
    """``target`` checked, or the top class of the image when None (binary: 1 when the logit > 0)."""
    eng = engine(model, "forward")
    chosen = _check_target(eng, target)
    if chosen != TOP:
        return chosen
    scores = forward(model, as_image(model, image)[None])[-1][0]
    return int(scores[0] > 0) if eng.binary else int(np.argmax(scores))


def probabilities(model: keras.Model, batch_nhwc: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Class probabilities (N, K) as the head says, float64.

    softmax head: softmax of the scores; sigmoid: per-unit sigmoid, and one unit is binary:
    (N, 2) = [1 - p, p]; linear head: softmax when it has several units, the raw score when one.
    """
    eng = engine(model, "forward")
    scores = forward(model, np.asarray(batch_nhwc, np.float32), batch_size=batch_size)[-1].astype(np.float64)
    if eng.head == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-scores))
        return np.concatenate([1.0 - p, p], axis=1) if eng.binary else p
    if eng.head == "softmax" or eng.classes > 1:
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return scores  # one linear unit: a regression score, returned as it is


def predict_scores(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Probabilities of one image, float64 (K,) (binary sigmoid: (2,) = [P(class 0), P(class 1)])."""
    return probabilities(model, as_image(model, image)[None])[0]


def top_k(model: keras.Model, image: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one image as ``(class index, probability)``, best first.

    Example:
        >>> top_k(loaded.model, x_hwc, 3)
        [(7, 0.98), (2, 0.01), (3, 0.004)]
    """
    probs = predict_scores(model, image)
    order = np.argsort(-probs, kind="stable")[: max(0, k)]
    return [(int(i), float(probs[i])) for i in order]


# --------------------------------------------------------------------------- gradients and CAMs


def input_gradients(model: keras.Model, batch_nhwc: np.ndarray, target: int | None, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """d(target score)/d(input) for every image of a batch, float32 (N, H, W, C).

    ``target=None`` takes each image's top class.
    """
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "input_grad")
    t = tf.constant(_check_target(eng, target), tf.int32)
    parts = [np.asarray(eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32), t)[0]) for i in range(0, len(batch_nhwc), batch_size)]
    return np.concatenate(parts)


def upsample(map_hw: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a layer-sized map to the input size (no-op when already that size)."""
    return map_hw.astype(np.float32) if map_hw.shape == tuple(size_hw) else resize_map(map_hw, size_hw)


Combine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (acts_nhwk, grads_nhwk) -> cams_nhw


def cam_maps(model: keras.Model, batch_nhwc: np.ndarray, combine: Combine, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """The CAM pipeline: forward + backward to ``layer``, ``combine``, ReLU, upsample; raw maps (N, H, W)."""
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "cam", cam_layer(model, layer))
    t = tf.constant(_check_target(eng, target), tf.int32)
    acts, grads, _, _ = eng.fn(tf.constant(batch_nhwc, tf.float32), t)
    cams = np.maximum(combine(np.asarray(acts, np.float64), np.asarray(grads, np.float64)), 0.0)
    size = batch_nhwc.shape[1:3]
    return np.stack([upsample(c, size) for c in cams]).astype(np.float32)


# --------------------------------------------------------------------------- batch forms (for SmoothGrad)

def single(batch_fn: Callable[..., np.ndarray], model: keras.Model, image: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Run a ``*_batch`` function on one image; returns its map (H, W)."""
    return batch_fn(model, as_image(model, image)[None], **kwargs)[0]


BatchForm = Callable[..., np.ndarray]  # (model, batch_nhwc, *, target, layer, **options) -> raw maps (N, H, W)
BATCH_FORMS: dict[Method, tuple[BatchForm, bool]] = {}  # method -> (its *_batch function, signed)


def batch_form(form: BatchForm, *, signed: bool = False) -> Callable[[Method], Method]:
    """Register the ``*_batch`` function of a method (raw maps of a whole batch; ``signed``: shown as |raw|)."""

    def register(method: Method) -> Method:
        BATCH_FORMS[method] = (form, signed)
        return method

    return register


@dataclass(frozen=True)
class Option:
    """One extra keyword option of a method, for a UI widget (its type is the type of ``default``)."""

    name: str
    kind: str  # "int", "float" or "choice"
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class MethodInfo:
    """What a page needs to know about a method: the function, whether it takes a layer, its options."""

    fn: Method
    uses_layer: bool
    options: tuple[Option, ...] = ()
    about: str = ""
