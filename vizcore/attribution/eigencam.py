"""EigenCAM (Muhammad & Yeasin, 2020): the layer's activations on their first principal component.

The activations A (h*w, k) of a layer, each channel's spatial mean subtracted as pytorch-grad-cam
does (``center=False``: the paper's plain SVD), are projected on their first right-singular
vector v1 (A v1, computed from the smaller of the Gram matrices A A^T and A^T A).
An SVD's sign is arbitrary: it is fixed so the map correlates positively with the mean
activation over channels. ReLU, then upsampled to the input. No gradients and no target: the map
is the same for every class, and it works on any model.

Example:
    >>> heatmap_hw = eigencam(model, image_hwc, layer="conv2")
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import cam_layer, forward, upsample
from vizcore.attribution.factory import Option, method


def first_component(acts_hwk: np.ndarray, *, center: bool = True) -> np.ndarray:
    """Projection (h, w) of the activations on their first principal direction, sign fixed."""
    h, w, k = acts_hwk.shape
    a = np.nan_to_num(acts_hwk.reshape(h * w, k).astype(np.float64))
    if center:
        a = a - a.mean(axis=0)
    if a.shape[0] <= a.shape[1]:  # A v1 = s1 u1: the top eigenvector of the smaller Gram matrix is enough
        eigvals, u = np.linalg.eigh(a @ a.T)
        projection = u[:, -1] * np.sqrt(max(eigvals[-1], 0.0))
    else:
        projection = a @ np.linalg.eigh(a.T @ a)[1][:, -1]
    mean_map = acts_hwk.reshape(h * w, k).mean(axis=1)
    if np.dot(projection - projection.mean(), mean_map - mean_map.mean()) < 0:
        projection = -projection
    return projection.reshape(h, w)


def eigencam_maps(
    model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None, *, center: bool = True
) -> np.ndarray:
    """Raw (>= 0) EigenCAM maps of a batch, float32 (N, H, W); ``target`` is not used."""
    acts_nhwk = forward(model, batch_nhwc, cam_layer(model, layer, kind="forward"))[0]
    size = batch_nhwc.shape[1:3]
    return np.stack([upsample(np.maximum(first_component(a, center=center), 0.0), size) for a in acts_nhwk])


EIGENCAM = method(
    "eigencam",
    eigencam_maps,
    display="relu",
    uses_layer=True,
    cost=lambda model, size_hw, layer, **options: Cost(1),
    options=(
        Option(
            "center",
            "choice",
            True,
            "subtract each channel's mean first (pytorch-grad-cam); off: the paper's SVD",
            choices=(True, False),
        ),
    ),
    about="first principal component of the activations; 1 forward pass, no gradients, same map for every class",
)
eigencam = EIGENCAM.fn
