"""``evaluate``: confusion matrix, per-class accuracy and the misclassified examples of a model.

Example:
    >>> ev = evaluate(model, val)
    >>> ev.accuracy, ev.confusion.shape, ev.mistakes()[0]
    (0.97, (10, 10), Mistake(index=412, true=4, predicted=9, confidence=0.98))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vizcore.data.datasets import ImageDataset
from vizcore.models import heads
from vizcore.models.graph import feature_model


@dataclass(frozen=True)
class Mistake:
    """One misclassified image: its index in the dataset, true and predicted class, the predicted probability."""

    index: int
    true: int
    predicted: int
    confidence: float


@dataclass(frozen=True, eq=False)
class Evaluation:
    """How a model does on a dataset.

    Attributes:
        confusion: int64 (K, K), rows the true class, columns the predicted one.
        per_class_accuracy: float64 (K,), recall of each class; NaN for a class with no images.
        accuracy: share of images classified right.
        probabilities: float32 (N, K).
        predicted: int64 (N,).
        misclassified: int64 indices of the wrong ones, most confident mistakes first.
    """

    confusion: np.ndarray
    per_class_accuracy: np.ndarray
    accuracy: float
    probabilities: np.ndarray
    predicted: np.ndarray
    true: np.ndarray
    misclassified: np.ndarray
    class_names: tuple[str, ...]

    def mistakes(self, limit: int | None = None) -> list[Mistake]:
        """The misclassified images as rows, most confident first."""
        idx = self.misclassified[:limit]
        return [
            Mistake(int(i), int(self.true[i]), int(self.predicted[i]), float(self.probabilities[i, self.predicted[i]]))
            for i in idx
        ]


def predict_probabilities(model, x_nhwc: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """float32 (N, K) class probabilities by ``heads.probabilities`` (one sigmoid or linear unit: 2 classes)."""
    fm = feature_model(model)  # the pre-activation scores, whatever the head
    scores = fm.model.predict(np.asarray(x_nhwc, dtype=np.float32), batch_size=batch_size, verbose=0)
    scores = scores[-1] if isinstance(scores, (list, tuple)) else scores
    return heads.probabilities(scores, fm.head).astype(np.float32)


def evaluate(model, dataset: ImageDataset, *, batch_size: int = 256) -> Evaluation:
    """Run ``model`` over ``dataset`` (inference mode; the model is not changed)."""
    chunk = 16 * batch_size  # uint8 images are cast a chunk at a time, never the whole set at once
    probs = np.concatenate(
        [
            predict_probabilities(model, dataset.floats(slice(i, i + chunk)), batch_size=batch_size)
            for i in range(0, max(1, len(dataset)), chunk)
        ]
    )
    return evaluation_of(probs, dataset.y, dataset.class_names)


def evaluation_of(probabilities: np.ndarray, y: np.ndarray, class_names: tuple[str, ...]) -> Evaluation:
    """The Evaluation of class probabilities (N, K) already computed for true labels ``y``."""
    probs = np.asarray(probabilities, np.float32)
    k = max(len(class_names), probs.shape[-1])
    predicted = probs.argmax(axis=-1).astype(np.int64)
    true = np.asarray(y).astype(np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    wrong = np.flatnonzero(predicted != true)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")]
    return Evaluation(
        confusion=confusion,
        per_class_accuracy=per_class,
        accuracy=float(np.mean(predicted == true)) if len(true) else float("nan"),
        probabilities=probs,
        predicted=predicted,
        true=true,
        misclassified=wrong.astype(np.int64),
        class_names=tuple(class_names),
    )
