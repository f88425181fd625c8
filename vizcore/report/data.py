"""The report's calls into the engine that are not the Dataset view's.

The report's images and dataset results come from ``vizcore.precompute.view.DataView`` (the Dataset view's
own images, keys and labels; results from the precomputed store when it holds them, else computed there).
``robust_accuracy``, ``adversarial_example`` and ``top_overlap`` are the calls into ``vizcore.robustness``.

Example:
    >>> view = DataView.open(loaded, datasets.load_mnist_sample(), 1000)
    >>> robust_accuracy(loaded, view.x_nhwc[:100], view.y[:100], (0.0, 0.1))
    array([1.  , 0.92])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vizcore import robustness
from vizcore.models import LoadedModel


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
