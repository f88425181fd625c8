"""Integrated Gradients (Sundararajan et al., 2017): gradients averaged along a straight path.

    IG_i = (x_i - b_i) * integral_0^1 dS/dx_i (b + a (x - b)) da   (trapezoid rule, ``steps`` points)

Completeness: the raw map sums to S(x) - S(b) up to the quadrature error. All ``steps`` path
images are differentiated in batches of ``batch_size`` (None: ``engines.batch_for``).
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import input_gradients, resolve_target
from vizcore.attribution.factory import Option, method
from vizcore.errors import AttributionError

BASELINES = ("black", "zeros")


def make_baseline(image_hwc: np.ndarray, baseline: str | float | np.ndarray = "black") -> np.ndarray:
    """The path's start, float32 like the image.

    'black': each channel's darkest value in the image (0 for a [0, 1] image with black pixels;
    pass an exact array for other value ranges); 'zeros': all 0; a number; or an HxWxC array.
    """
    if isinstance(baseline, str):
        if baseline == "black":
            return np.broadcast_to(image_hwc.min(axis=(0, 1), keepdims=True), image_hwc.shape).astype(np.float32)
        if baseline == "zeros":
            return np.zeros_like(image_hwc)
        raise AttributionError(f"baseline must be one of {BASELINES}, a number or an array, got '{baseline}'.")
    base = np.asarray(baseline, dtype=np.float32)
    try:
        return np.broadcast_to(base, image_hwc.shape).astype(np.float32)
    except ValueError:
        raise AttributionError(f"baseline of shape {base.shape} does not fit the image {image_hwc.shape}.") from None


def _path_integral(
    model: keras.Model, x: np.ndarray, target: int | None, baseline, steps: int, batch_size: int | None
) -> np.ndarray:
    base = make_baseline(x, baseline)
    t = resolve_target(model, x, target)  # the image's class, not each path point's
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    path_nhwc = base[None] + alphas[:, None, None, None] * (x - base)[None]
    grads = input_gradients(model, path_nhwc, t, batch_size=batch_size)  # float32, as computed
    weights = np.full(steps, 1.0 / (steps - 1), np.float32)
    weights[[0, -1]] /= 2.0  # trapezoid rule on [0, 1]
    mean_grad_hwc = np.tensordot(weights, grads, axes=1)
    return ((x - base) * mean_grad_hwc).sum(axis=-1, dtype=np.float32)


def integrated_gradients_maps(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    layer: str | None,
    *,
    baseline: str | float | np.ndarray = "black",
    steps: int = 32,
    batch_size: int | None = None,
) -> np.ndarray:
    """Signed attributions summed over channels, float32 (N, H, W); each map sums to ~ S(x) - S(baseline)."""
    if steps < 2:
        raise AttributionError(f"steps must be >= 2, got {steps}.")
    return np.stack([_path_integral(model, x, target, baseline, steps, batch_size) for x in batch_nhwc])


def integrated_gradients_cost(
    model: keras.Model, size_hw: tuple[int, int], layer: str | None, *, steps: int, **options
) -> Cost:
    """One gradient per point of the path."""
    return Cost(steps, "gradient")


INTEGRATED_GRADIENTS = method(
    "integrated_gradients",
    integrated_gradients_maps,
    display="absolute",
    uses_layer=False,
    cost=integrated_gradients_cost,
    options=(
        Option(
            "baseline",
            "choice",
            "black",
            "the path's start: the image's darkest value per channel, or 0",
            choices=BASELINES,
        ),
        Option("steps", "int", 32, "points on the path (gradients, run in batches)", min=2, max=256),
    ),
    about="gradients along the path from a baseline; raw map sums to S(x) - S(baseline)",
)
integrated_gradients = INTEGRATED_GRADIENTS.fn
