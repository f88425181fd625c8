"""The report's images and the dataset results it shows, taken where the app keeps them.

``open_images`` chooses and prepares the images as the Dataset view does (the same evenly spaced pick,
the same key, the same labels), and ``dataset_result`` reads a result from the precomputed store
(``python -m vizcore.precompute``) when it holds it, else computes it with the Dataset view's own
function: ``evaluation.report`` or ``examples.top_examples``. No dataset computation is written here.
``robust_accuracy``, ``adversarial_example`` and ``top_overlap`` are the calls into ``vizcore.robustness``.

Example:
    >>> images = open_images(loaded, datasets.load_mnist_sample(), limit=1000)
    >>> dataset_result(loaded, images, "report").accuracy
    0.981
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vizcore import robustness
from vizcore.data.datasets import ImageDataset
from vizcore.inspect import evaluation, examples
from vizcore.models import LoadedModel
from vizcore.precompute.store import K, Store, pick


@dataclass(frozen=True, eq=False)
class Images:
    """A dataset as the report uses it: the images the Dataset view would use, prepared for the model.

    Attributes:
        name: the dataset's name as the app and ``python -m vizcore.precompute`` call it ('mnist_sample').
        key: the Dataset view's key of these images ('mnist_sample:5000'): the precomputed store's folder.
        total: images in the whole dataset.
        pick: int64 (N,) indices of the images used, into the whole dataset.
        x_nhwc: float32 (N, H, W, C) in the model's input range.
        display_nhwc: uint8 (N, H, W, C), the same pixels for people.
        y: int64 (N,) the model's class of each image, or None when the dataset's classes are not the model's.
        dataset: the images used, with the dataset's own labels and class names.
        store: the precomputed results of this model on these images, or None.
    """

    name: str
    key: str
    total: int
    pick: np.ndarray
    x_nhwc: np.ndarray
    display_nhwc: np.ndarray
    y: np.ndarray | None
    dataset: ImageDataset
    store: Store | None

    def __len__(self) -> int:
        return len(self.x_nhwc)


def open_images(
    loaded: LoadedModel, dataset: ImageDataset, *, limit: int | None = None, name: str | None = None
) -> Images:
    """The images of ``dataset`` the Dataset view would use for ``loaded`` with this ``limit`` (None: all that fit).

    Args:
        name: the dataset's name in the app ('mnist_sample', 'photos', 'zip:<sha1>'); default ``dataset.name``.
    """
    name = name or dataset.name
    chosen = pick(len(dataset), dataset.image_shape, loaded.spec, len(dataset) if limit is None else int(limit))
    ds = dataset.subset(chosen) if len(chosen) < len(dataset) else dataset
    prepared = evaluation.prepare(loaded, ds.x_nhwc)
    y = None if name == "photos" else evaluation.labels_for(ds.class_names, loaded.class_names, ds.y)
    key = f"{name}:{len(chosen)}"
    return Images(
        name, key, len(dataset), chosen, prepared.x_nhwc, prepared.display_nhwc, y, ds, Store.find(loaded.key, key)
    )


def dataset_result(loaded: LoadedModel, images: Images, kind: str, **params):
    """A Dataset view result of ``loaded`` on ``images``: precomputed when the store holds it, else computed.

    Args:
        kind: 'report' (needs ``images.y``) or 'examples' (``layer=``), the store's kinds.
    Returns:
        ``evaluation.Report`` or ``examples.TopExamples``.
    """
    found = images.store.get(kind, **params) if images.store is not None else None
    if kind == "examples" and found is not None and found.k != min(K, len(images)):
        found = None
    if found is not None:
        return found
    if kind == "report":
        return evaluation.report(loaded.model, images.x_nhwc, images.y, loaded.class_names)
    if kind == "examples":
        return examples.top_examples(loaded.model, params["layer"], images.x_nhwc, k=min(K, len(images)))
    raise ValueError(f"The report takes no dataset result {kind!r}.")


def precomputed_filters(images: Images, layer: str) -> np.ndarray | None:
    """Every filter's gradient-ascent image of ``layer`` (uint8) when ``python -m vizcore.precompute`` saved them."""
    return images.store.get("featurevis", layer=layer) if images.store is not None else None


def robust_accuracy(
    loaded: LoadedModel,
    x_nhwc: np.ndarray,
    y: np.ndarray | None,
    epsilons: Sequence[float],
    on_progress: Callable[[int, int], bool | None] | None = None,
) -> np.ndarray:
    """FGSM accuracy of ``loaded`` at each ε (``vizcore.robustness.sweep``; y None: against its own predictions)."""
    return robustness.sweep(
        loaded.model, x_nhwc, y, epsilons, attack="fgsm", input_range=loaded.preprocess, on_progress=on_progress
    )


@dataclass(frozen=True, eq=False)
class Adversarial:
    """One image attacked with FGSM at its smallest ε that changes the answer (``vizcore.robustness``).

    Attributes:
        row: the image's row among the attacked images.
        eps: ε, a fraction of the input range's width.
        x_adv_hwc: the adversarial image in the model's range.
        perturbation: uint8 (H, W, C), the change around grey, amplified ``scale`` times.
    """

    row: int
    eps: float
    x_adv_hwc: np.ndarray
    perturbation: np.ndarray
    scale: float


def adversarial_example(
    loaded: LoadedModel, x_nhwc: np.ndarray, y: np.ndarray | None, *, max_eps: float
) -> Adversarial | None:
    """Of the images ``x_nhwc`` (labels ``y``; None: the model's own answers), the one whose minimal FGSM ε is
    the median of those found up to ``max_eps``, attacked at that ε; None when no image changes."""
    found = robustness.minimal_epsilon(
        loaded.model, x_nhwc, y, attack="fgsm", max_eps=max_eps, input_range=loaded.preprocess
    )
    finite = np.flatnonzero(np.isfinite(found) & (found > 0))
    if not len(finite):
        return None
    row = int(finite[np.argsort(found[finite], kind="stable")[len(finite) // 2]])
    eps = float(found[row])
    labels = None if y is None else y[row : row + 1]
    x_adv = robustness.fgsm(loaded.model, x_nhwc[row : row + 1], labels, eps=eps, input_range=loaded.preprocess)[0]
    bounds = robustness.bounds(x_nhwc.shape[-1], loaded.preprocess)
    perturbation, scale = robustness.perturbation_image(x_nhwc[row], x_adv, bounds)
    return Adversarial(row, eps, x_adv, perturbation, scale)


def top_overlap(map_a_hw: np.ndarray, map_b_hw: np.ndarray) -> float:
    """Share of the top 10% pixels of one map among the top 10% of the other (``robustness.topk_overlap``)."""
    return float(robustness.topk_overlap(map_a_hw, map_b_hw))
