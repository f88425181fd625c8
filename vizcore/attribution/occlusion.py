"""Occlusion (Zeiler & Fergus, 2014): how much the target score drops when a patch is covered.

A ``patch`` x ``patch`` square of value ``fill`` slides with ``stride`` (the last row and column
of windows touch the far edges); every occluded image runs in batches. A pixel's raw value is
the mean drop S(x) - S(occluded) over the windows that cover it; the heatmap shows the drops
(positive part): regions whose removal hurts the class. A stride larger than the patch would
leave pixels that no window covers, so it is refused.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import batch_for, resolve_target, target_scores
from vizcore.attribution.factory import Option, method
from vizcore.errors import AttributionError


def _positions(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    return starts if starts[-1] == max(size - patch, 0) else starts + [size - patch]


def _geometry(height: int, width: int, patch: int | None, stride: int | None) -> tuple[int, int, list[int], list[int]]:
    """Patch, stride and window starts; every pixel lies in at least one window."""
    if (patch is not None and patch < 1) or (stride is not None and stride < 1):
        raise AttributionError(f"patch and stride must be >= 1, got {patch} and {stride}.")
    if patch is None:
        patch = max(2, round(min(height, width) / 8), stride or 0)
    stride = stride or max(1, patch // 2)
    if stride > patch:
        raise AttributionError(
            f"Occlusion's stride {stride} is larger than its patch {patch}, which would leave pixels "
            f"that no window covers; use a stride of at most {patch}."
        )
    patch = min(patch, height, width)
    stride = min(stride, patch)  # a patch cut to the image keeps the windows touching
    return patch, stride, _positions(height, patch, stride), _positions(width, patch, stride)


def occlusion_cost(height: int, width: int, patch: int | None = None, stride: int | None = None) -> int:
    """Images Occlusion runs through the model: one per window, plus the unoccluded image."""
    _, _, rows, cols = _geometry(height, width, patch, stride)
    return len(rows) * len(cols) + 1


FILLS = ("zero", "mean")  # named fills; any number works too


def fill_value(image_hwc: np.ndarray, fill: float | str) -> np.ndarray:
    """What covers an occluded pixel: 'zero', 'mean' (each channel's mean over the image) or a number; (C,) or ()."""
    if isinstance(fill, str):
        if fill not in FILLS:
            raise AttributionError(f"fill must be a number, 'zero' or 'mean', got '{fill}'.")
        return image_hwc.mean(axis=(0, 1)).astype(np.float32) if fill == "mean" else np.float32(0.0)
    if not np.isfinite(fill):
        raise AttributionError(f"fill must be a finite number, got {fill}.")
    return np.float32(fill)


def _drops(
    model: keras.Model, x: np.ndarray, target: int | None, patch, stride, fill, batch_size: int | None
) -> np.ndarray:
    """Mean score drop of the windows covering each pixel of one image, float32 (H, W)."""
    h, w, _ = x.shape
    patch, stride, rows, cols = _geometry(h, w, patch, stride)
    value = fill_value(x, fill)
    t = resolve_target(model, x, target)
    windows = [(r, c) for r in rows for c in cols]
    batch_size = batch_size or batch_for(model)
    scores = []
    for start in range(0, len(windows), batch_size):  # build and score one batch of occluded images at a time
        chunk = windows[start : start + batch_size]
        batch = np.repeat(x[None], len(chunk), axis=0)
        for i, (r, c) in enumerate(chunk):
            batch[i, r : r + patch, c : c + patch] = value
        scores.append(target_scores(model, batch, t, batch_size=batch_size))
    drops = target_scores(model, x[None], t)[0] - np.concatenate(scores)
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for (r, c), drop in zip(windows, drops):
        total[r : r + patch, c : c + patch] += drop
        count[r : r + patch, c : c + patch] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)


def occlusion_maps(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    layer: str | None,
    *,
    patch: int | None = None,
    stride: int | None = None,
    fill: float | str = "zero",
    batch_size: int | None = None,
) -> np.ndarray:
    """Signed raw maps, float32 (N, H, W): mean score drop of the windows covering each pixel.

    ``patch`` None: 1/8 of the shorter side (at least the stride); ``stride`` None: half the patch,
    never more than the patch; ``fill``: 'zero', 'mean' (each channel's mean over the image) or a value.
    """
    return np.stack([_drops(model, x, target, patch, stride, fill, batch_size) for x in batch_nhwc])


OCCLUSION = method(
    "occlusion",
    occlusion_maps,
    display="relu",
    uses_layer=False,
    cost=lambda model, size_hw, layer, *, patch, stride, **options: Cost(occlusion_cost(*size_hw, patch, stride)),
    options=(
        Option("patch", "int", None, "square side in pixels; None: 1/8 of the image", min=1),
        Option(
            "stride", "int", None, "step between windows, at most the patch; None: half the patch", min=1, max="patch"
        ),
        Option("fill", "choice", "zero", "what covers the patch: zeros, or the image's mean colour", choices=FILLS),
    ),
    about="score drop when a patch is covered; one forward pass per window",
)
occlusion = OCCLUSION.fn
