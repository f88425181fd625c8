"""Saliency (Simonyan et al., 2014): the largest |d score / d pixel| over the colour channels."""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import input_gradients, max_abs_over_channels
from vizcore.attribution.factory import method


def saliency_maps(model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None) -> np.ndarray:
    """Raw saliency maps of a batch, float32 (N, H, W): max over channels of |gradient|."""
    return input_gradients(model, batch_nhwc, target, reduce=max_abs_over_channels)


SALIENCY = method(
    "saliency",
    saliency_maps,
    display="absolute",
    uses_layer=False,
    cost=one_gradient,
    about="max |gradient| over channels",
)
saliency = SALIENCY.fn
