"""Saliency (Simonyan et al., 2014): the largest |d score / d pixel| over the colour channels."""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import batch_form, input_gradients, normalize_map, single


def saliency_batch(model: keras.Model, batch_nhwc: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw saliency maps of a batch, float32 (N, H, W): max over channels of |gradient|. ``layer`` is ignored."""
    return np.abs(input_gradients(model, batch_nhwc, target)).max(axis=-1)


def saliency_raw(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw saliency map of one image, float32 (H, W)."""
    return single(saliency_batch, model, image, target=target)


@batch_form(saliency_batch)
def saliency(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Saliency heatmap of one image, float32 (H, W) in [0, 1]."""
    return normalize_map(saliency_raw(model, image, target=target))
