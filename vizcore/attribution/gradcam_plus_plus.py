"""Grad-CAM++ (Chattopadhyay et al., 2018): pixel-weighted positive gradients as channel weights.

With the exponential-score closed form (as in pytorch-grad-cam), second and third derivatives
become powers of the first:

    a_ij^k = g^2 / (2 g^2 + sum_ab A_ab^k * g^3),   w_k = sum_ij a_ij^k * ReLU(g_ij^k)
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import cam_maps
from vizcore.attribution.factory import method


def combine(acts_nhwk: np.ndarray, grads_nhwk: np.ndarray) -> np.ndarray:
    """The Grad-CAM++ step: alpha-weighted positive gradients as channel weights; returns (N, h, w)."""
    g2 = grads_nhwk**2
    g3 = g2 * grads_nhwk
    sum_acts = acts_nhwk.sum(axis=(1, 2), keepdims=True)  # (N, 1, 1, K)
    denom = 2.0 * g2 + sum_acts * g3
    alpha = np.divide(g2, denom, out=np.zeros_like(g2), where=(grads_nhwk != 0) & (denom != 0))
    weights_nk = (alpha * np.maximum(grads_nhwk, 0.0)).sum(axis=(1, 2))
    return np.einsum("nk,nhwk->nhw", weights_nk, acts_nhwk)


def gradcam_plus_plus_maps(
    model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None
) -> np.ndarray:
    """Raw (>= 0) Grad-CAM++ maps of a batch, float32 (N, H, W)."""
    return cam_maps(model, batch_nhwc, combine, target=target, layer=layer)


GRADCAM_PLUS_PLUS = method(
    "gradcam_plus_plus",
    gradcam_plus_plus_maps,
    display="relu",
    uses_layer=True,
    cost=one_gradient,
    about="pixel-weighted positive gradients; 1 forward + backward",
)
gradcam_plus_plus = GRADCAM_PLUS_PLUS.fn
