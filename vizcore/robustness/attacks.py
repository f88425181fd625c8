"""FGSM and PGD in the L∞ ball, batched and compiled, on any image model's pre-softmax scores.

ε and the step are fractions of the input range's width, per input channel: on [0, 1] ε 0.1 moves a
value by 0.1, on [-1, 1] by 0.2, on a Caffe-style range (BGR minus the ImageNet mean, width 255) by
25.5; always ε·255 levels of the 0..255 image. The range is the model's own preprocessing
(a ``vizcore.data.images.PREPROCESS_MODES`` key such as 'caffe'), an explicit ``(low, high)`` or a
``featurevis.ranges.InputRange``. Results are clipped to it.

The loss is cross-entropy on the pre-softmax scores (``models.features.feature_model``, the model is never
changed): softmax cross-entropy for several units, binary cross-entropy on the logit for one
sigmoid (or linear) unit, whose classes are 0 and 1. ``y=None`` attacks the model's own prediction
(as ART does), so no true label leaks in. Untargeted attacks ascend the loss of the label;
targeted PGD descends the loss of the target.

The compiled functions live in ``vizcore.cache.per_model`` (one trace per model: any batch size).

Example:
    >>> x_adv = fgsm(model, x_nhwc, eps=0.1)                       # [0, 1] inputs
    >>> x_adv = pgd(model, x_nhwc, eps=0.03, steps=40, input_range="caffe")
    >>> x_adv = pgd(model, x_nhwc, eps=0.1, steps=20, target=3)    # make it say 3
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.cache import per_model
from vizcore.errors import ConvLensError, RobustnessError
from vizcore.featurevis import ranges
from vizcore.models import features, graph, heads
from vizcore.models import predict as prediction
from vizcore.models.batches import as_batch

Progress = Callable[[int, int], "bool | None"]  # (done, total) -> True to cancel
RangeLike = Any  # (low, high) | a PREPROCESS_MODES key | ranges.InputRange
MADRY_STEP = 2.5  # step=None: 2.5 * ε / steps (Madry et al. 2018), so the last steps can still cross the ball
PIXELS_PER_BATCH = 2**20  # images per compiled call: about this many input values (28x28: 512; 224x224x3: 6)


class AttackCancelled(ConvLensError):
    """The ``on_progress`` callback asked a running attack to stop."""


def no_gradient_message(name: str) -> str:
    return (
        f"Model '{name}' gives no gradient from its scores to its input (a layer such as rounding or a cast "
        "cuts it), so gradient attacks cannot run on it."
    )


# --------------------------------------------------------------------------- ranges and checks


@dataclass(frozen=True, eq=False)
class Bounds:
    """The input range per model channel: ``low``, ``high`` float32 (C,); ``bgr`` when channel 0 is blue."""

    low: np.ndarray
    high: np.ndarray
    bgr: bool = False

    @property
    def width(self) -> np.ndarray:
        return self.high - self.low


def bounds(channels: int, input_range: RangeLike = (0.0, 1.0)) -> Bounds:
    """The range an attack stays in, per channel, from a mode name, ``(low, high)`` or an InputRange.

    Example:
        >>> bounds(3, "caffe").width.tolist()
        [255.0, 255.0, 255.0]
    """
    try:
        if isinstance(input_range, ranges.InputRange):
            r = input_range
        elif isinstance(input_range, str):
            r = ranges.input_range(channels, input_range)
        else:
            r = ranges.input_range(channels, value_range=tuple(input_range))
    except (TypeError, ValueError) as err:
        raise RobustnessError(f"The input range {input_range!r} cannot be used: {err}") from err
    if len(r.low) != channels:
        raise RobustnessError(f"The input range has {len(r.low)} channels; the model takes {channels}.")
    return Bounds(np.asarray(r.low, np.float32), np.asarray(r.high, np.float32), r.bgr)


def check_eps(eps: float, what: str = "ε") -> float:
    """ε (or a step) as a float in 0..1, a fraction of the input range's width."""
    value = float(eps)
    if not 0.0 <= value <= 1.0 or not np.isfinite(value):
        raise RobustnessError(f"{what} must be between 0 and 1 (a fraction of the input range's width), got {eps}.")
    return value


def check_steps(steps: int) -> int:
    if int(steps) != steps or int(steps) < 1:
        raise RobustnessError(f"PGD needs at least one step, got {steps}.")
    return int(steps)


def step_size(eps: float, steps: int, step: float | None = None) -> float:
    """The step of PGD as a fraction of the range: ``step``, or 2.5 * ε / steps when None."""
    if step is None:
        return MADRY_STEP * eps / steps
    value = check_eps(step, "The PGD step")
    if value <= 0.0:
        raise RobustnessError(f"The PGD step must be above 0, got {step}.")
    return value


# --------------------------------------------------------------------------- compiled functions


@dataclass(frozen=True)
class Engine:
    """What is cached per model: the compiled gradient over a sub-model that shares its layers (never the model).

    Only the gradient is traced (a gradient graph of a 224 px network takes seconds to trace): the steps
    around it are a few elementwise ops, run eagerly, and scores come from ``models.predict.scores``,
    the forward pass the pages already trace for the probabilities.
    """

    gradient_sign: Any  # (x, labels) -> sign(d loss / d x), float32 like x
    binary: bool
    classes: int  # classes of a prediction (a binary head: 2)


def _loss(scores: tf.Tensor, labels: tf.Tensor, binary: bool) -> tf.Tensor:
    """Cross-entropy of each image's label (N,), on pre-softmax scores."""
    if binary:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, scores.dtype), logits=scores[:, 0])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores)


def _gradient_sign(sub: keras.Model, binary: bool, x: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape() as tape:
        tape.watch(x)
        outs = sub(x, training=False)
        scores = outs[-1] if isinstance(outs, (list, tuple)) else outs
        loss = tf.reduce_sum(_loss(scores, labels, binary))  # a sum: each image's gradient is its own
    grad = tape.gradient(loss, x)
    if grad is None:  # found while tracing (autograph off, so the typed error is not wrapped)
        raise RobustnessError(no_gradient_message(sub.name.removesuffix("_features")))
    return tf.sign(grad)


def engine(model: keras.Model) -> Engine:
    """The compiled gradient of a model (cached per model; traced once for any batch size)."""

    def build() -> Engine:
        fm = features.feature_model(model)
        spec = graph.input_spec(model)
        classes = int(fm.model.outputs[-1].shape[-1])
        binary = heads.is_binary(fm.head, classes)
        signature = [
            tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ]
        # a partial, not a closure: one trace per engine (see attribution.engines)
        fn = tf.function(
            functools.partial(_gradient_sign, fm.model, binary), input_signature=signature, autograph=False
        )
        return Engine(fn, binary, 2 if binary else classes)

    return per_model(model, "robustness.engine", build, limit=1)


def fgsm_step(
    eng: Engine, x: tf.Tensor, labels: tf.Tensor, delta: tf.Tensor, low: tf.Tensor, high: tf.Tensor
) -> tf.Tensor:
    """x + delta * sign(gradient), clipped to the range; ``delta`` (N, 1, 1, C) absolute."""
    return tf.clip_by_value(x + delta * eng.gradient_sign(x, labels), low, high)


def pgd_step(
    eng: Engine,
    x_adv: tf.Tensor,
    x0: tf.Tensor,
    labels: tf.Tensor,
    step: tf.Tensor,
    radius: tf.Tensor,
    low: tf.Tensor,
    high: tf.Tensor,
) -> tf.Tensor:
    """One step as ART takes it: move by ``step`` (negative: targeted), clip to the range, project onto the ball."""
    x_adv = tf.clip_by_value(x_adv + step * eng.gradient_sign(x_adv, labels), low, high)
    return x0 + tf.clip_by_value(x_adv - x0, -radius, radius)


def batch_size_for(x_nhwc: np.ndarray, batch_size: int | None = None) -> int:
    """Images per compiled call: ``batch_size``, or about ``PIXELS_PER_BATCH`` input values (at least 1)."""
    if batch_size is not None:
        return max(1, int(batch_size))
    return int(np.clip(PIXELS_PER_BATCH // max(1, int(np.prod(x_nhwc.shape[1:]))), 1, 512))


# --------------------------------------------------------------------------- predictions and labels


def scores(model: keras.Model, x_nhwc: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """Pre-softmax scores of a batch, float32 (N, K) (``models.predict.scores``)."""
    x = as_batch(model, x_nhwc)
    return prediction.scores(model, x, batch_size=batch_size_for(x, batch_size))


def predict(model: keras.Model, x_nhwc: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """The predicted class of every image, int64 (N,) (a binary head: 1 when the logit is > 0)."""
    s = scores(model, x_nhwc, batch_size=batch_size)
    return (s[:, 0] > 0).astype(np.int64) if engine(model).binary else np.argmax(s, axis=1).astype(np.int64)


def labels_of(
    model: keras.Model, x_nhwc: np.ndarray, y: Any, *, what: str = "y", batch_size: int | None = None
) -> np.ndarray:
    """``y`` checked as one class per image (an int is broadcast), or the model's predictions when None; int32 (N,)."""
    if y is None:
        return predict(model, x_nhwc, batch_size=batch_size).astype(np.int32)
    classes = engine(model).classes
    labels = np.broadcast_to(np.asarray(y), (len(x_nhwc),)) if np.ndim(y) == 0 else np.asarray(y)
    if labels.shape != (len(x_nhwc),) or not np.all((labels >= 0) & (labels < classes) & (labels == np.round(labels))):
        raise RobustnessError(
            f"{what} must be one class index in 0..{classes - 1} per image ({len(x_nhwc)}), got {y!r}."
        )
    return labels.astype(np.int32)


# --------------------------------------------------------------------------- the attacks


class Tracker:
    """Counts images times gradients for ``on_progress(done, total)``; a True answer raises AttackCancelled."""

    def __init__(self, on_progress: Progress | None, total: int) -> None:
        self.sink, self.total, self.done = on_progress, max(1, int(total)), 0
        self.add(0)

    def add(self, images: int) -> None:
        self.done = min(self.total, self.done + images)
        if self.sink is not None and self.sink(self.done, self.total):
            raise AttackCancelled("Cancelled.")


def amounts(values_n: np.ndarray, width_c: np.ndarray) -> np.ndarray:
    """Fractions of the range (N,) -> absolute amounts (N, 1, 1, C)."""
    return (np.asarray(values_n, np.float32)[:, None] * width_c[None, :])[:, None, None, :].astype(np.float32)


def perturb(
    model: keras.Model,
    x_nhwc: np.ndarray,
    labels: np.ndarray,
    eps_n: np.ndarray,
    *,
    bounds: Bounds,
    steps: int | None = None,
    step_n: np.ndarray | None = None,
    targeted: bool = False,
    noise_nhwc: np.ndarray | None = None,
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> np.ndarray:
    """The attack loop under ``fgsm``, ``pgd``, ``sweep`` and ``minimal_epsilon``: every image its own ε.

    Args:
        x_nhwc: a checked float32 batch; labels: int32 (N,), the label to move away from (or the target).
        eps_n: ε of each image (N,), fractions of the range's width; bounds: the range.
        steps: None for FGSM, else the PGD steps, with ``step_n`` (N,) fractions.
        targeted: descend the labels' loss instead of ascending it (PGD).
        noise_nhwc: PGD's random start in [-1, 1] (scaled by each ε), or None to start at x.
        on_progress: ``(done, total)`` in images times gradients; True cancels (``AttackCancelled``).
    Returns:
        float32 (N, H, W, C), clipped to the range.
    """
    eng, size = engine(model), batch_size_for(x_nhwc, batch_size)
    low, high = tf.constant(bounds.low), tf.constant(bounds.high)
    radius_all = amounts(eps_n, bounds.width)
    tracker = Tracker(on_progress, len(x_nhwc) * (steps or 1))
    out = []
    for i in range(0, len(x_nhwc), size):
        x0 = tf.constant(x_nhwc[i : i + size])
        y = tf.constant(labels[i : i + size], tf.int32)
        radius = tf.constant(radius_all[i : i + size])
        if steps is None:
            out.append(np.asarray(fgsm_step(eng, x0, y, radius, low, high)))
            tracker.add(len(x0))
            continue
        step = tf.constant(amounts(step_n[i : i + size], bounds.width) * (-1.0 if targeted else 1.0))
        x_adv = x0 if noise_nhwc is None else tf.clip_by_value(x0 + noise_nhwc[i : i + size] * radius, low, high)
        for _ in range(steps):
            x_adv = pgd_step(eng, x_adv, x0, y, step, radius, low, high)
            tracker.add(len(x0))
        out.append(np.asarray(tf.clip_by_value(x_adv, low, high)))  # x0 + a clipped change can be one ulp outside
    return np.concatenate(out)


def fgsm(
    model: keras.Model,
    x_nhwc: np.ndarray,
    y: Any = None,
    *,
    eps: float,
    input_range: RangeLike = (0.0, 1.0),
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> np.ndarray:
    """The fast gradient sign method: x + ε · sign(∇ loss), clipped to the range (Goodfellow et al. 2015).

    Args:
        model: any Keras image model (not changed).
        x_nhwc: float32 (N, H, W, C) in the model's input range.
        y: the class of each image (N,) or one int; None: the model's own predictions.
        eps: a fraction of the range's width, 0..1.
        input_range: a mode name ('unit', 'symmetric', 'caffe', ...), ``(low, high)`` or an InputRange.
    Returns:
        float32 (N, H, W, C) adversarial images.
    Raises:
        RobustnessError: ε outside 0..1, a bad label, a model with no gradient to its input.
    """
    eps = check_eps(eps)
    x = as_batch(model, x_nhwc)
    labels = labels_of(model, x, y, batch_size=batch_size)
    return perturb(
        model,
        x,
        labels,
        np.full(len(x), eps, np.float32),
        bounds=bounds(x.shape[-1], input_range),
        batch_size=batch_size,
        on_progress=on_progress,
    )


def start_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """PGD's random start: uniform in [-1, 1] (times ε), float32, the same for a seed and shape."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def pgd(
    model: keras.Model,
    x_nhwc: np.ndarray,
    y: Any = None,
    *,
    eps: float,
    step: float | None = None,
    steps: int = 40,
    random_start: bool = True,
    target: Any = None,
    seed: int = 0,
    input_range: RangeLike = (0.0, 1.0),
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> np.ndarray:
    """Projected gradient descent in the L∞ ball (Madry et al. 2018), as ART's ProjectedGradientDescent.

    Each step moves by ``step`` along the gradient's sign, clips to the range and projects back onto
    the ball of radius ε around x.

    Args:
        y: the class to move away from (N,) or one int; None: the model's own predictions.
        eps, step: fractions of the range's width, 0..1; ``step=None``: 2.5 * ε / steps.
        steps: iterations, at least 1.
        random_start: start at a uniform point of the ball (``seed``), else at x.
        target: a class (or one per image) to reach instead: targeted PGD; it must differ from the
            model's prediction.
    Returns:
        float32 (N, H, W, C) adversarial images, in the range.
    Raises:
        RobustnessError: ε or step outside 0..1, zero steps, a target the model already predicts,
            a model with no gradient to its input.
    """
    eps, steps = check_eps(eps), check_steps(steps)
    step = step_size(eps, steps, step)
    x = as_batch(model, x_nhwc)
    if target is None:
        labels, targeted = labels_of(model, x, y, batch_size=batch_size), False
    else:
        labels, targeted = labels_of(model, x, target, what="target", batch_size=batch_size), True
        same = np.flatnonzero(predict(model, x, batch_size=batch_size) == labels)
        if len(same):
            which = f"image {same[0]}" if len(x) > 1 else "this image"
            raise RobustnessError(
                f"The target class {int(labels[same[0]])} is already the model's prediction for "
                f"{which}; choose another target."
            )
    noise = start_noise(x.shape, seed) if random_start else None
    n = len(x)
    return perturb(
        model,
        x,
        labels,
        np.full(n, eps, np.float32),
        bounds=bounds(x.shape[-1], input_range),
        steps=steps,
        step_n=np.full(n, step, np.float32),
        targeted=targeted,
        noise_nhwc=noise,
        batch_size=batch_size,
        on_progress=on_progress,
    )
