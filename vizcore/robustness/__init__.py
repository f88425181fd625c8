"""Robustness: adversarial examples on any Keras image model, and how far its answer, explanations and activations move.

Batched, compiled attacks in the L∞ ball, on the pre-softmax scores (binary sigmoid heads too):

* ``fgsm(model, x_nhwc, y=None, *, eps, input_range=(0.0, 1.0)) -> x_adv``
* ``pgd(model, x_nhwc, y=None, *, eps, step=None, steps=40, random_start=True, target=None, seed=0,
  input_range=(0.0, 1.0)) -> x_adv``
* ``sweep(model, x_nhwc, y, epsilons, *, attack="fgsm", input_range=(0.0, 1.0), **attack_options) -> accuracies``
* ``minimal_epsilon(model, x_nhwc, y=None, *, attack="fgsm", max_eps=0.3, ...) -> ε per image``

ε and the step are fractions of the input range's width (ε·255 levels of the 0..255 image on every
model); ``input_range`` is the model's preprocessing mode ('unit', 'symmetric', 'caffe', 'torch',
'raw'), ``(low, high)`` or an InputRange. ``y=None`` attacks the model's own prediction. Results are
clipped to the range. Every long call takes ``on_progress(done, total) -> bool | None``; True cancels
(``AttackCancelled``). Bad requests raise ``vizcore.errors.RobustnessError`` with one sentence.

For the page: ``activation_change`` (relative L2 per block and the channels that moved most),
``topk_overlap`` of two attribution maps, ``perturbation_image``.

Example:
    >>> from vizcore import robustness
    >>> x_adv = robustness.fgsm(loaded.model, x_nhwc, eps=0.1, input_range=loaded.preprocess)
    >>> robustness.sweep(loaded.model, x_nhwc, y, (0.0, 0.1, 0.2))
    array([0.973, 0.611, 0.154])
"""

from vizcore.errors import RobustnessError
from vizcore.robustness.attacks import (
    AttackCancelled,
    Bounds,
    bounds,
    engine,
    fgsm,
    pgd,
    predict,
    scores,
)
from vizcore.robustness.compare import (
    LayerChange,
    activation_change,
    layer_change,
    perturbation_image,
    topk_overlap,
    warm_activation_change,
)
from vizcore.robustness.sweep import ATTACKS, minimal_epsilon, survivors, sweep

__all__ = [
    "ATTACKS",
    "AttackCancelled",
    "Bounds",
    "LayerChange",
    "RobustnessError",
    "activation_change",
    "warm_activation_change",
    "bounds",
    "engine",
    "fgsm",
    "layer_change",
    "minimal_epsilon",
    "perturbation_image",
    "pgd",
    "predict",
    "scores",
    "survivors",
    "sweep",
    "topk_overlap",
]
