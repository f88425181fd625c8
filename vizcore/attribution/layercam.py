"""LayerCAM (Jiang et al., 2021): each activation weighted by its own positive gradient.

    cam = ReLU(sum_k ReLU(dS/dA_k) * A_k)   (element-wise, no spatial averaging)

Works on early layers too, where Grad-CAM's averaged weights blur the map.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import batch_form, cam_maps, normalize_map, single


def combine(acts_nhwk: np.ndarray, grads_nhwk: np.ndarray) -> np.ndarray:
    """The LayerCAM step: positive gradients as element-wise weights; returns (N, h, w)."""
    return (np.maximum(grads_nhwk, 0.0) * acts_nhwk).sum(axis=-1)


def layercam_batch(model: keras.Model, batch_nhwc: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw LayerCAM maps of a batch, float32 (N, H, W)."""
    return cam_maps(model, batch_nhwc, combine, target=target, layer=layer)


def layercam_raw(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Raw LayerCAM map of one image, float32 (H, W)."""
    return single(layercam_batch, model, image, target=target, layer=layer)


@batch_form(layercam_batch)
def layercam(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """LayerCAM heatmap of one image, float32 (H, W) in [0, 1]."""
    return normalize_map(layercam_raw(model, image, target=target, layer=layer))
