"""Evaluate any model on a dataset: accuracy, top-k, per-class precision and recall, confident mistakes.

``evaluate`` gives the confusion matrix, the probabilities (``vizcore.models.predict``) and the
mistakes; ``report`` adds what a report needs (top-k, precision, recall). The Train page evaluates
a finished run with ``evaluate``; the Dataset page and ``python -m vizcore.precompute`` report.
``prepare`` turns a dataset's [0, 1] images into what a ``LoadedModel`` takes (its size, channels,
value range and fit), the same way a single uploaded image is prepared.

Example:
    >>> rep = report(loaded.model, prepare(loaded, ds.x_nhwc).x_nhwc, ds.y, ds.class_names)
    >>> rep.accuracy, rep.top_k[5], rep.precision.shape, rep.cell(4, 9)[:3]
    (0.97, 0.999, (10,), array([412, 77, 1040]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vizcore.data import images
from vizcore.data.datasets import ImageDataset
from vizcore.models import predict


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


def evaluate(model, dataset: ImageDataset, *, batch_size: int = 256) -> Evaluation:
    """Run ``model`` over ``dataset`` (inference mode; the model is not changed).

    Example:
        >>> ev = evaluate(model, val)
        >>> ev.accuracy, ev.confusion.shape, ev.mistakes()[0]
        (0.97, (10, 10), Mistake(index=412, true=4, predicted=9, confidence=0.98))
    """
    chunk = 16 * batch_size  # uint8 images are cast a chunk at a time, never the whole set at once
    probs = np.concatenate(
        [
            predict.probabilities(model, dataset.floats(slice(i, i + chunk)), batch_size=batch_size)
            for i in range(0, max(1, len(dataset)), chunk)
        ]
    ).astype(np.float32)
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


@dataclass(frozen=True, eq=False)
class Prepared:
    """A dataset's images made ready for a model: ``x_nhwc`` float32 in its range, ``display_nhwc`` uint8,
    same pixels."""

    x_nhwc: np.ndarray
    display_nhwc: np.ndarray


def prepare(loaded, x_nhwc: np.ndarray) -> Prepared:
    """NHWC images (float32 in [0, 1], or uint8 0..255 as keras.datasets are kept) prepared for ``loaded``
    (a ``models.LoadedModel``): size, channels, range, fit."""
    spec = loaded.spec
    x = np.asarray(x_nhwc)
    size = (spec.height or x.shape[1], spec.width or x.shape[2])
    options = {"keep_aspect": loaded.fit == "pad", "crop": loaded.fit == "crop"}
    uint8 = x if x.dtype == np.uint8 else np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
    done = [images.preprocess(im, size=size, channels=spec.channels, mode=loaded.preprocess, **options) for im in uint8]
    if not done:
        return Prepared(np.zeros((0, *size, spec.channels), np.float32), np.zeros((0, *size, spec.channels), np.uint8))
    return Prepared(np.stack([p.image_hwc for p in done]).astype(np.float32), np.stack([p.display_hwc for p in done]))


def labels_for(dataset_names: Sequence[str], model_names: Sequence[str], y: np.ndarray) -> np.ndarray | None:
    """A dataset's labels as the model's class indices: by name when every dataset class is one of the
    model's, else by position when the counts agree; None when they cannot be matched."""
    model_names = list(model_names)
    if set(dataset_names) <= set(model_names):
        return np.array([model_names.index(c) for c in dataset_names], np.int64)[np.asarray(y)]
    if len(dataset_names) == len(model_names):
        return np.asarray(y, np.int64)
    return None


def top_k_accuracy(probabilities: np.ndarray, true: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the k most probable (ties broken by class order)."""
    probabilities, true = np.asarray(probabilities), np.asarray(true)
    if len(true) == 0:
        return float("nan")
    k = min(int(k), probabilities.shape[1])
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == true[:, None]).any(axis=1)))


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall (NaN where undefined) and support (true count) from a confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.int64)
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), np.nan)
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return precision, recall, support


@dataclass(frozen=True, eq=False)
class Report:
    """How a model does on a dataset: ``evaluation`` (``evaluate``) plus top-k, precision and recall.

    Attributes:
        top_k: {k: accuracy} for each k asked.
        precision, recall: float64 (K,), NaN where a class is never predicted / has no image.
        support: int64 (K,) images per true class.
    """

    evaluation: Evaluation
    top_k: dict[int, float]
    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    @property
    def confusion(self) -> np.ndarray:
        return self.evaluation.confusion

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the images of class ``true`` predicted as ``predicted``, most confident first."""
        ev = self.evaluation
        idx = np.flatnonzero((ev.true == true) & (ev.predicted == predicted))
        return idx[np.argsort(-ev.probabilities[idx, predicted], kind="stable")]

    def mistakes(self, limit: int | None = None) -> np.ndarray:
        """Indices of the misclassified images, most confident first."""
        return self.evaluation.misclassified[:limit]


def report(
    model,
    x_nhwc: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    *,
    ks: Sequence[int] = (1, 5),
    batch_size: int = 256,
) -> Report:
    """Run ``model`` over prepared images (see ``prepare``) with true labels ``y``; the model is not changed."""
    dataset = ImageDataset(
        x_nhwc=np.asarray(x_nhwc, np.float32),
        y=np.asarray(y, np.int64),
        class_names=tuple(class_names),
        name="evaluation",
    )
    return report_of(evaluate(model, dataset, batch_size=batch_size), ks=ks)


def report_of(ev: Evaluation, *, ks: Sequence[int] = (1, 5)) -> Report:
    """The Report of an ``Evaluation`` already made (``evaluate`` or ``evaluation_of``)."""
    precision, recall, support = precision_recall(ev.confusion)
    return Report(ev, {int(k): top_k_accuracy(ev.probabilities, ev.true, k) for k in ks}, precision, recall, support)
