"""Occlusion (Zeiler & Fergus, 2014): how much the target score drops when a patch is covered.

A ``patch`` x ``patch`` square of value ``fill`` slides with ``stride`` (the last row and column
of windows touch the far edges); every occluded image runs in batches. A pixel's raw value is
the mean drop S(x) - S(occluded) over the windows that cover it; the heatmap shows the drops
(positive part): regions whose removal hurts the class.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.attribution.base import DEFAULT_BATCH, AttributionError, Cost, Option, method, resolve_target, target_scores


def _positions(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    return starts if starts[-1] == max(size - patch, 0) else starts + [size - patch]


def _geometry(height: int, width: int, patch: int | None, stride: int | None) -> tuple[int, int, list[int], list[int]]:
    patch = patch or max(2, round(min(height, width) / 8))
    stride = stride or max(1, patch // 2)
    if patch < 1 or stride < 1:
        raise AttributionError(f"patch and stride must be >= 1, got {patch} and {stride}.")
    patch = min(patch, height, width)
    return patch, stride, _positions(height, patch, stride), _positions(width, patch, stride)


def occlusion_cost(height: int, width: int, patch: int | None = None, stride: int | None = None) -> int:
    """Images Occlusion runs through the model: one per window, plus the unoccluded image."""
    _, _, rows, cols = _geometry(height, width, patch, stride)
    return len(rows) * len(cols) + 1


def _drops(model: keras.Model, x: np.ndarray, target: int | None, patch, stride, fill, batch_size: int) -> np.ndarray:
    """Mean score drop of the windows covering each pixel of one image, float32 (H, W)."""
    h, w, _ = x.shape
    patch, stride, rows, cols = _geometry(h, w, patch, stride)
    value = x.mean(axis=(0, 1)) if fill == "mean" else np.float32(fill)
    t = resolve_target(model, x, target)
    windows = [(r, c) for r in rows for c in cols]
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
    fill: float | str = 0.0,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Signed raw maps, float32 (N, H, W): mean score drop of the windows covering each pixel.

    ``patch`` None: 1/8 of the shorter side; ``stride`` None: half the patch; ``fill``: a value
    or 'mean' (each channel's mean over the image).
    """
    if isinstance(fill, str) and fill != "mean":
        raise AttributionError(f"fill must be a number or 'mean', got '{fill}'.")
    return np.stack([_drops(model, x, target, patch, stride, fill, batch_size) for x in batch_nhwc])


OCCLUSION = method(
    "occlusion",
    occlusion_maps,
    display="relu",
    uses_layer=False,
    cost=lambda model, size_hw, layer, *, patch, stride, **options: Cost(occlusion_cost(*size_hw, patch, stride)),
    options=(
        Option("patch", "int", None, "square side in pixels; None: 1/8 of the image", min=1),
        Option("stride", "int", None, "step between windows; None: half the patch", min=1),
        Option("fill", "float", 0.0, "value of the covered pixels (or 'mean')"),
    ),
    about="score drop when a patch is covered; one forward pass per window",
)
occlusion = OCCLUSION.fn
