"""SmoothGrad (Smilkov et al., 2017): average a method's maps over noisy copies of the image.

``smoothgrad(method)`` returns a method. Methods with a batch form (Saliency, Gradient x Input,
Grad-CAM, Grad-CAM++, LayerCAM) run all noisy copies as ONE batch; their raw maps are averaged
(signed methods: magnitudes) and normalized once. Any other method runs once per copy and its
normalized maps are averaged.

Example:
    >>> smooth = smoothgrad(saliency, samples=16, noise=0.15)
    >>> heatmap_hw = smooth(model, image_hwc, target=3)
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import BATCH_FORMS, AttributionError, Method, as_image, normalize_map, resolve_target


def noisy_copies(image_hwc: np.ndarray, samples: int, noise: float, seed: int) -> np.ndarray:
    """``samples`` copies plus gaussian noise, sigma = noise * (max - min of the image); (S, H, W, C)."""
    if samples < 1 or noise < 0:
        raise AttributionError(f"samples must be >= 1 and noise >= 0, got {samples} and {noise}.")
    sigma = noise * float(image_hwc.max() - image_hwc.min())
    rng = np.random.default_rng(seed)
    return (image_hwc[None] + sigma * rng.standard_normal((samples, *image_hwc.shape))).astype(np.float32)


def smoothgrad(method: Method, samples: int = 16, noise: float = 0.15, seed: int = 0) -> Method:
    """Wrap ``method`` in SmoothGrad; the returned method also takes ``samples``, ``noise`` and ``seed``."""
    form = BATCH_FORMS.get(method)

    def smoothed(
        model: keras.Model,
        image: np.ndarray,
        *,
        target: int | None = None,
        layer: str | None = None,
        samples: int = samples,
        noise: float = noise,
        seed: int = seed,
        **options,
    ) -> np.ndarray:
        x = as_image(model, image)
        t = resolve_target(model, x, target)  # the clean image's class for every copy
        batch_nhwc = noisy_copies(x, samples, noise, seed)
        if form is not None:
            batch_fn, signed = form
            maps = batch_fn(model, batch_nhwc, target=t, layer=layer, **options)
            maps = np.abs(maps) if signed else maps
        else:
            maps = np.stack([method(model, xi, target=t, layer=layer, **options) for xi in batch_nhwc])
        return normalize_map(maps.mean(axis=0))

    name = getattr(method, "__name__", "method")
    smoothed.__name__ = smoothed.__qualname__ = f"smoothgrad_{name}"
    smoothed.__doc__ = f"SmoothGrad of {name}: float32 (H, W) in [0, 1]."
    return smoothed
