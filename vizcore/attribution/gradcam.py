"""Grad-CAM (Selvaraju et al., 2017): weight each channel by the spatial mean of its gradient.

    cam = ReLU(sum_k mean_ij(dS/dA_k) * A_k), upsampled to the input and normalized.

Example:
    >>> heatmap_hw = gradcam(model, image_hwc, target=3, layer="conv2")
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import cam_maps
from vizcore.attribution.factory import method


def combine(acts_nhwk: np.ndarray, grads_nhwk: np.ndarray) -> np.ndarray:
    """The Grad-CAM step: channel weights alpha_k = mean of the gradient; returns (N, h, w)."""
    alpha_nk = grads_nhwk.mean(axis=(1, 2))
    return np.einsum("nk,nhwk->nhw", alpha_nk, acts_nhwk)


def gradcam_maps(model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None) -> np.ndarray:
    """Raw (>= 0) Grad-CAM maps of a batch, float32 (N, H, W); layer None: the last conv layer."""
    return cam_maps(model, batch_nhwc, combine, target=target, layer=layer)


GRADCAM = method(
    "gradcam",
    gradcam_maps,
    display="relu",
    uses_layer=True,
    cost=one_gradient,
    about="channel weights = mean gradient; 1 forward + backward",
)
gradcam = GRADCAM.fn
