"""Guided Grad-CAM (Selvaraju et al., 2017): Guided Backpropagation times the upsampled Grad-CAM.

    map = max_c |guided_gradient_c| * gradcam   (Grad-CAM >= 0, so it equals max_c |gb_c * cam|)

Fine pixel detail from Guided Backpropagation, class discrimination from Grad-CAM.

Example:
    >>> heatmap_hw = guided_gradcam(model, image_hwc, target=3, layer="conv2")
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import Cost
from vizcore.attribution.factory import method
from vizcore.attribution.gradcam import gradcam_maps
from vizcore.attribution.guided_backprop import guided_backprop_maps


def guided_gradcam_maps(
    model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None
) -> np.ndarray:
    """Raw (>= 0) Guided Grad-CAM maps of a batch, float32 (N, H, W); layer None: the default CAM layer."""
    return gradcam_maps(model, batch_nhwc, target, layer) * guided_backprop_maps(model, batch_nhwc, target, None)


GUIDED_GRADCAM = method(
    "guided_gradcam",
    guided_gradcam_maps,
    display="absolute",
    uses_layer=True,
    cost=lambda model, size_hw, layer, **options: Cost(2, "gradient"),
    about="Guided Backpropagation x Grad-CAM; 1 backward + 1 guided backward",
)
guided_gradcam = GUIDED_GRADCAM.fn
