"""Gradient x Input (Shrikumar et al., 2016): gradient times pixel value, summed over channels.

The raw map is signed (sum over channels of x * dS/dx); the heatmap shows its magnitude.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import batch_form, input_gradients, normalize_map, single


def gradient_x_input_batch(model: keras.Model, batch_nhwc: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Signed raw maps of a batch, float32 (N, H, W). ``layer`` is ignored."""
    batch_nhwc = np.asarray(batch_nhwc, dtype=np.float32)
    return (input_gradients(model, batch_nhwc, target) * batch_nhwc).sum(axis=-1)


def gradient_x_input_raw(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Signed raw map of one image, float32 (H, W)."""
    return single(gradient_x_input_batch, model, image, target=target)


@batch_form(gradient_x_input_batch, signed=True)
def gradient_x_input(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
    """Gradient x Input heatmap (|raw| normalized), float32 (H, W) in [0, 1]."""
    return normalize_map(np.abs(gradient_x_input_raw(model, image, target=target)))
