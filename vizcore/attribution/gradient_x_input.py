"""Gradient x Input (Shrikumar et al., 2016): gradient times pixel value, summed over channels.

The raw map is signed (sum over channels of x * dS/dx); the heatmap shows its magnitude.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import one_gradient
from vizcore.attribution.engines import input_gradients
from vizcore.attribution.factory import method


def gradient_x_input_maps(
    model: keras.Model, batch_nhwc: np.ndarray, target: int | None, layer: str | None
) -> np.ndarray:
    """Signed raw maps of a batch, float32 (N, H, W)."""
    return (input_gradients(model, batch_nhwc, target) * batch_nhwc).sum(axis=-1)


GRADIENT_X_INPUT = method(
    "gradient_x_input",
    gradient_x_input_maps,
    display="absolute",
    uses_layer=False,
    cost=one_gradient,
    about="|gradient x pixel|, summed over channels",
)
gradient_x_input = GRADIENT_X_INPUT.fn
