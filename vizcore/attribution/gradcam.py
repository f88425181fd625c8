"""Grad-CAM (Selvaraju et al., 2017): weight each channel by the spatial mean of its gradient.

    cam = ReLU(sum_k mean_ij(dS/dA_k) * A_k), upsampled to the input and normalized.

Example:
    >>> heatmap_hw = gradcam(model, image_hwc, target=3, layer="conv2")
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import batch_form, cam_maps, normalize_map, single


def combine(acts_nhwk: np.ndarray, grads_nhwk: np.ndarray) -> np.ndarray:
    """The Grad-CAM step: channel weights alpha_k = mean of the gradient; returns (N, h, w)."""
    alpha_nk = grads_nhwk.mean(axis=(1, 2))
    return np.einsum("nk,nhwk->nhw", alpha_nk, acts_nhwk)


def gradcam_batch(model: keras.Model, batch_nhwc: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw (un-normalized, >= 0) Grad-CAM maps of a batch, float32 (N, H, W); target None: each image's top class."""
    return cam_maps(model, batch_nhwc, combine, target=target, layer=layer)


def gradcam_raw(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw Grad-CAM map of one image, float32 (H, W), before normalization."""
    return single(gradcam_batch, model, image, target=target, layer=layer)


@batch_form(gradcam_batch)
def gradcam(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Grad-CAM heatmap of one image, float32 (H, W) in [0, 1]; layer None: the last conv layer."""
    return normalize_map(gradcam_raw(model, image, target=target, layer=layer))
