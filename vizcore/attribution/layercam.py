"""LayerCAM (Jiang et al., 2021): each activation weighted by its own positive gradient.

    cam = ReLU(sum_k ReLU(dS/dA_k) * A_k)   (element-wise, no spatial averaging)

Works on early layers too, where Grad-CAM's averaged weights blur the map.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import cam_maps
from vizcore.attribution.factory import method


def combine(acts_nhwk: np.ndarray, grads_nhwk: np.ndarray) -> np.ndarray:
    """The LayerCAM step: positive gradients as element-wise weights; returns (N, h, w)."""
    return (np.maximum(grads_nhwk, 0.0) * acts_nhwk).sum(axis=-1)


def layercam_maps(model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None) -> np.ndarray:
    """Raw (>= 0) LayerCAM maps of a batch, float32 (N, H, W)."""
    return cam_maps(model, batch_nhwc, combine, target=target, layer=layer)


LAYERCAM = method(
    "layercam",
    layercam_maps,
    display="relu",
    uses_layer=True,
    cost=one_gradient,
    about="element-wise positive gradients; good on early layers",
)
layercam = LAYERCAM.fn
