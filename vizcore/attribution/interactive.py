"""Interactive occlusion: grey out boxes of an image and see the class probabilities and Grad-CAM at once.

One compiled forward + backward pass of the occluded image gives both: the pre-softmax scores
(turned into probabilities as ``heads.probabilities`` says) and the Grad-CAM of the target class.

Example:
    >>> out = occlude_boxes(model, x_hwc, [(4, 4, 12, 12)], target=7)
    >>> out.probabilities_k[7], out.heatmap_hw.shape
    (0.41, (28, 28))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.engines import cam_layer, engine, resolve_target, upsample
from vizcore.attribution.factory import normalize_map
from vizcore.attribution.gradcam import combine
from vizcore.errors import AttributionError
from vizcore.models import heads
from vizcore.models.batches import as_image

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1) in input pixels, half-open


@dataclass(frozen=True)
class Occluded:
    """The occluded image, its class probabilities and the Grad-CAM of ``target`` on it."""

    image_hwc: np.ndarray  # float32, the boxes filled
    probabilities_k: np.ndarray  # float64 (K,) (binary head: (2,))
    heatmap_hw: np.ndarray  # float32 [0, 1], Grad-CAM at the input size
    target: int
    layer: str


def clip_box(box: Sequence[float], size_hw: tuple[int, int]) -> Box | None:
    """A box (y0, x0, y1, x1) ordered, rounded and clipped to the image; None when it covers no pixel."""
    y0, x0, y1, x1 = (float(v) for v in box)
    h, w = size_hw
    y0, y1 = sorted((y0, y1))
    x0, x1 = sorted((x0, x1))
    out = (
        int(np.clip(np.floor(y0), 0, h)),
        int(np.clip(np.floor(x0), 0, w)),
        int(np.clip(np.ceil(y1), 0, h)),
        int(np.clip(np.ceil(x1), 0, w)),
    )
    return out if out[2] > out[0] and out[3] > out[1] else None


def occlude(image_hwc: np.ndarray, boxes: Sequence[Box], fill: float | str = 0.0) -> np.ndarray:
    """A copy of the image with every box set to ``fill`` (a value, or 'mean': each channel's mean)."""
    if isinstance(fill, str) and fill != "mean":
        raise AttributionError(f"fill must be a number or 'mean', got '{fill}'.")
    x = np.array(image_hwc, dtype=np.float32, copy=True)
    value = x.mean(axis=(0, 1)) if fill == "mean" else np.float32(fill)
    for box in boxes:
        b = clip_box(box, x.shape[:2])
        if b is not None:
            x[b[0] : b[2], b[1] : b[3]] = value
    return x


def occlude_boxes(
    model: keras.Model,
    image_hwc: np.ndarray,
    boxes: Sequence[Box],
    *,
    target: int | None = None,
    layer: str | None = None,
    fill: float | str = 0.0,
) -> Occluded:
    """Occlude ``boxes`` and return the probabilities and the Grad-CAM of ``target`` in one pass.

    ``target=None`` takes the top class of the unoccluded image (one extra forward pass: pass the
    class to keep an update to one call). ``layer=None``: the default CAM layer.
    """
    x = as_image(model, image_hwc)
    t = resolve_target(model, x, target)
    path = cam_layer(model, layer)
    eng = engine(model, "cam", path)
    occluded = occlude(x, boxes, fill)
    acts, grads, scores, _ = eng.fn(tf.constant(occluded[None]), tf.constant(t, tf.int32))
    cam = np.maximum(combine(np.asarray(acts, np.float64), np.asarray(grads, np.float64)), 0.0)[0]
    probs = heads.probabilities(np.asarray(scores), eng.head)[0]
    return Occluded(occluded, probs, normalize_map(upsample(cam, x.shape[:2])), t, path)
