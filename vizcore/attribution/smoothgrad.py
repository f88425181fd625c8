"""SmoothGrad (Smilkov et al., 2017): average a method's maps over noisy copies of the image.

``smoothgrad(method)`` returns a method. All noisy copies of an image go through the wrapped
method's batch form as ONE batch; their maps, shown as the method shows them (|raw| for a signed
method), are averaged and normalized once. The result is itself built by ``method``, so it has a
batch form, a cost (``samples`` times the wrapped one) and options (the wrapped ones plus
``samples``, ``noise`` and ``seed``).

Example:
    >>> smooth = smoothgrad(saliency, samples=16, noise=0.15)
    >>> heatmap_hw = smooth(model, image_hwc, target=3)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import resolve_target
from vizcore.attribution.factory import Method, MethodInfo, Option, method
from vizcore.errors import AttributionError


def noisy_copies(image_hwc: np.ndarray, samples: int, noise: float, seed: int) -> np.ndarray:
    """``samples`` copies plus gaussian noise, sigma = noise * (max - min of the image); (S, H, W, C)."""
    if samples < 1 or noise < 0:
        raise AttributionError(f"samples must be >= 1 and noise >= 0, got {samples} and {noise}.")
    sigma = noise * float(image_hwc.max() - image_hwc.min())
    # drawn by TensorFlow (float32, on its threads; seeded, so the same seed gives the same copies)
    draws = tf.random.stateless_normal((samples, *image_hwc.shape), seed=(seed, 0), dtype=tf.float32)
    return np.asarray(tf.constant(image_hwc, tf.float32)[None] + sigma * draws)


def smoothgrad(wrapped: Method | MethodInfo, samples: int = 16, noise: float = 0.15, seed: int = 0) -> Method:
    """Wrap a method (built by ``method``) in SmoothGrad; the result also takes ``samples``, ``noise`` and ``seed``."""
    inner = wrapped if isinstance(wrapped, MethodInfo) else getattr(wrapped, "info", None)
    if not isinstance(inner, MethodInfo):
        raise AttributionError(f"smoothgrad wraps a method built by attribution.method; got {wrapped!r}.")

    def smooth_maps(
        model: keras.Model,
        batch_nhwc: np.ndarray,
        target: int | None,
        layer: str | None,
        *,
        samples: int = samples,
        noise: float = noise,
        seed: int = seed,
        **options,
    ) -> np.ndarray:
        out = []
        for x in batch_nhwc:
            t = resolve_target(model, x, target)  # the clean image's class for every copy
            copies = noisy_copies(x, samples, noise, seed)
            out.append(inner.shown(inner.batch(model, copies, target=t, layer=layer, **options)).mean(axis=0))
        return np.stack(out)

    def cost(
        model: keras.Model,
        size_hw: tuple[int, int],
        layer: str | None,
        *,
        samples: int,
        noise: float,
        seed: int,
        **options,
    ) -> Cost:
        once = inner.cost_of(model, size_hw, layer=layer, **options)
        return Cost(samples * once.count, once.unit)

    name = inner.fn.__name__
    smooth_options = (
        Option("samples", "int", samples, "noisy copies, run as one batch", min=1, max=64),
        Option("noise", "float", noise, "noise sigma as a fraction of the image's value range", min=0.0, max=0.5),
        Option("seed", "int", seed, "seed of the noise: the same seed gives the same map", min=0),
    )
    return method(
        f"smoothgrad_{name}",
        smooth_maps,
        display=inner.display,
        uses_layer=inner.uses_layer,
        cost=cost,
        options=inner.options + smooth_options,
        about=f"{name} averaged over noisy copies",
    ).fn
