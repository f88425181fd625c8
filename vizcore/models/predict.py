"""Predictions of any model: pre-activation scores and class probabilities, batched, one head rule.

The scores are the outputs of ``features.feature_model`` (pre-softmax, whatever the head); the
probabilities follow ``heads.probabilities`` (one sigmoid or linear unit is one binary logit: two
classes, [P(class 0), P(class 1)]). The compiled forward pass is kept per model in
``vizcore.cache.per_model`` (traced once for any batch size; it holds the sub-model, never the
model), and a batch runs through it in chunks of ``batch_size``. The model is never changed.

Example:
    >>> probabilities(model, batch_nhwc).shape      # float64 (N, K); a binary head gives (N, 2)
    (8, 10)
    >>> top_k(model, x_hwc, 3)
    [(7, 0.98), (2, 0.01), (3, 0.004)]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore import profile
from vizcore.cache import per_model
from vizcore.models import features, graph, heads
from vizcore.models.batches import as_image

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Scorer:
    """What is cached for one model: the compiled pass to the scores and the head, never the model itself."""

    fn: Any  # a tf.function: float32 (N, H, W, C) -> scores (N, K)
    head: str  # 'softmax', 'sigmoid' or 'linear' (graph.head_type)
    classes: int  # score units
    binary: bool  # one binary logit (heads.is_binary): targets 0 and 1

    def top_classes(self, scores_nk: np.ndarray) -> np.ndarray:
        """int64 (N,) the predicted class of each row of scores (binary: 1 when the logit is > 0)."""
        scores_nk = np.asarray(scores_nk)
        if self.binary:
            return (scores_nk[:, 0] > 0).astype(np.int64)
        return np.argmax(scores_nk, axis=1).astype(np.int64)


def _scores_step(sub: keras.Model, x: tf.Tensor) -> tf.Tensor:
    outs = sub(x, training=False)
    return outs[-1] if isinstance(outs, (list, tuple)) else outs


def scorer(model: keras.Model) -> Scorer:
    """The cached compiled forward pass of ``model`` to its pre-activation scores."""

    def build() -> Scorer:
        fm = features.feature_model(model)
        spec = graph.input_spec(model)
        signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32)]
        # A partial, not a closure: TensorFlow then counts traces per model instead of per code
        # object, so one trace for each of many models is not reported as "excessive retracing".
        fn = tf.function(functools.partial(_scores_step, fm.model), input_signature=signature)
        classes = int(fm.model.outputs[-1].shape[-1])
        return Scorer(fn, fm.head, classes, heads.is_binary(fm.head, classes))

    return per_model(model, ("predict.scorer",), build, limit=1)


def scores(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_chunk: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Pre-activation scores of a batch, float32 (N, K), run in chunks of ``batch_size``.

    ``on_chunk(images)`` is called after each chunk with the number of images it ran (for progress).
    """
    s = scorer(model)
    x = np.asarray(batch_nhwc, np.float32)
    parts = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        parts.append(np.asarray(s.fn(tf.constant(chunk))))
        if on_chunk is not None:
            on_chunk(len(chunk))
    return np.concatenate(parts) if parts else np.zeros((0, s.classes), np.float32)


def probabilities(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_chunk: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Class probabilities of a batch by ``heads.probabilities``, float64 (N, K) (binary head: (N, 2))."""
    out = scores(model, batch_nhwc, batch_size=batch_size, on_chunk=on_chunk)
    return heads.probabilities(out, scorer(model).head)


def image_probabilities(model: keras.Model, image_hwc: np.ndarray) -> np.ndarray:
    """Class probabilities of ONE image (checked by ``batches.as_image``), float64 (K,) (binary: (2,)).

    Where the profile compiles no single pass (hosted), an eager pass with a bounded peak
    (``features.FeatureModel.predict_lean``): no compiled forward function is kept for the network.
    """
    if profile.current().compile_single_passes:
        return probabilities(model, as_image(model, image_hwc)[None])[0]
    fm = per_model(model, "predict.lean_forward", lambda: features.feature_model(model), limit=1)
    _, scores_nk = fm.predict_lean(as_image(model, image_hwc)[None])
    return heads.probabilities(scores_nk, fm.head)[0]


def top_k(model: keras.Model, image_hwc: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one image as ``(class index, probability)``, best first.

    Example:
        >>> top_k(loaded.model, x_hwc, 3)
        [(7, 0.98), (2, 0.01), (3, 0.004)]
    """
    probs = image_probabilities(model, image_hwc)
    order = np.argsort(-probs, kind="stable")[: max(0, k)]
    return [(int(i), float(probs[i])) for i in order]
