"""Integrated Gradients (Sundararajan et al., 2017): gradients averaged along a straight path.

    IG_i = (x_i - b_i) * integral_0^1 dS/dx_i (b + a (x - b)) da   (trapezoid rule, ``steps`` points)

Completeness: the raw map sums to S(x) - S(b) up to the quadrature error. All ``steps`` path
images are differentiated in batches of ``batch_size``.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import AttributionError, as_image, input_gradients, normalize_map, resolve_target

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


def integrated_gradients_raw(
    model: keras.Model,
    image: np.ndarray,
    *,
    target: int | None = None,
    layer: str | None = None,
    baseline: str | float | np.ndarray = "black",
    steps: int = 32,
    batch_size: int = 32,
) -> np.ndarray:
    """Signed attributions summed over channels, float32 (H, W); ``sum()`` ~ S(x) - S(baseline)."""
    if steps < 2:
        raise AttributionError(f"steps must be >= 2, got {steps}.")
    x = as_image(model, image)
    base = make_baseline(x, baseline)
    t = resolve_target(model, x, target)  # the image's class, not each path point's
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    path_nhwc = base[None] + alphas[:, None, None, None] * (x - base)[None]
    grads = input_gradients(model, path_nhwc, t, batch_size=batch_size).astype(np.float64)
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2.0  # trapezoid rule on [0, 1]
    mean_grad_hwc = np.tensordot(weights, grads, axes=1)
    return ((x - base) * mean_grad_hwc).sum(axis=-1).astype(np.float32)


def integrated_gradients(
    model: keras.Model,
    image: np.ndarray,
    *,
    target: int | None = None,
    layer: str | None = None,
    baseline: str | float | np.ndarray = "black",
    steps: int = 32,
    batch_size: int = 32,
) -> np.ndarray:
    """Integrated Gradients heatmap (|raw| normalized), float32 (H, W) in [0, 1]."""
    raw = integrated_gradients_raw(model, image, target=target, baseline=baseline, steps=steps, batch_size=batch_size)
    return normalize_map(np.abs(raw))
