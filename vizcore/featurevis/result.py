"""What one optimization returns: the images, every loss term at every step, and how far each image got."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vizcore.featurevis.ranges import InputRange
from vizcore.featurevis.settings import Settings

DEAD_TOLERANCE = 1e-6  # of the batch's largest reached activation: scale-free (untrained nets have tiny ones)


@dataclass(frozen=True, eq=False)  # eq=False: arrays inside
class FeatureVis:
    """The result of one optimization.

    Attributes:
        images_nhwc: float32 (N, H, W, C) in the model's input range; image i is for ``targets[i]``.
        targets: the filter (or class) of each image; with k images per target, each target
            appears k times in a row.
        loss_terms: name -> float32 (steps, N), the value of each term at each step, for every
            image: each objective term by its name (maximized, e.g. 'channel'), 'diversity' when
            used, each regularizer's penalty by its name (minimized, unweighted, e.g. 'tv'), and
            'loss', the minimized total: -objective + sum(weight * penalty) + diversity weight * diversity.
            Values are measured on the transformed image the step saw.
        start: float32 (N,), the objective of each initial image (no transforms).
        reached: float32 (N,), the objective of each final image (no transforms): for filters,
            the channel's mean activation, border excluded, comparable to ``real_activation``.
        responsive: bool (N,), the objective's gradient on the image was non-zero at some step
            (for some transform draw): the optimization could move the image.
        steps: steps run (after the CONVLENS_MAX_STEPS cap).
        seed: the seed.
        settings: the settings used: for an early layer at its fitted size, ``texture_settings`` of those given.
        input_range: the map between [0, 1] and the model's inputs (``to_unit`` for display).
    """

    images_nhwc: np.ndarray
    targets: tuple[int, ...]
    loss_terms: Mapping[str, np.ndarray]
    start: np.ndarray
    reached: np.ndarray
    responsive: np.ndarray
    steps: int
    seed: int
    settings: Settings
    input_range: InputRange

    @property
    def dead(self) -> np.ndarray:
        """bool (N,): the optimization truly could not raise the objective from zero.

        Dead means all three: its gradient on the image was zero at every step and transform draw
        (with the redirected ReLU of the first steps), the reached value did not rise above the
        start, and it is zero. "Zero" and "rise" are relative to the batch: DEAD_TOLERANCE times
        the largest reached value, so an untrained network whose activations are all around 1e-5
        does not look dead.
        """
        scale = float(np.max(np.abs(self.reached))) if self.reached.size else 0.0
        tol = DEAD_TOLERANCE * max(scale, 1e-6)
        return ~self.responsive & (self.reached <= self.start + tol) & (np.abs(self.reached) <= tol)

    def curves(self) -> dict[str, np.ndarray]:
        """name -> (steps,), each loss term averaged over the images (what a plot shows)."""
        return {name: values.mean(axis=1) for name, values in self.loss_terms.items()}
