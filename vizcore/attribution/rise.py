"""RISE (Petsiuk et al., 2018): the average of random masks, each weighted by the class probability it keeps.

``n_masks`` binary ``grid`` x ``grid`` masks (each cell kept with probability ``p``) are upsampled
bilinearly to ``(grid + 1) * cell`` (cell = ceil(size / grid)) and cropped at a random shift below
one cell, as the paper does, so the masks are smooth and not aligned to one grid. The masked
images run through the model in batches; the masks are drawn in NumPy (seeded) and everything per
batch (upsampling, cropping, masking, the forward pass, the probabilities and their weighted sum of
masks) runs in one compiled function (``engines``, kind 'masked'):

    saliency = sum_i P(target | x * M_i) * M_i / (n_masks * p)

Seeded: the same ``seed`` gives the same masks. No gradients.

Example:
    >>> heatmap_hw = rise(model, image_hwc, target=3, n_masks=500)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import batch_for, engine, resolve_target, smooth_masks
from vizcore.attribution.factory import Option, method
from vizcore.attribution.progress import advance
from vizcore.errors import AttributionError


def _cells_and_shifts(
    size_hw: tuple[int, int], n_masks: int, grid: int, p: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The seeded draw of every mask: kept cells float32 (n, grid, grid) and crop shifts int32 (n, 2)."""
    if n_masks < 1 or grid < 1 or not 0.0 < p < 1.0:
        raise AttributionError(f"RISE needs n_masks >= 1, grid >= 1 and 0 < p < 1; got {n_masks}, {grid} and {p}.")
    h, w = int(size_hw[0]), int(size_hw[1])
    rng = np.random.default_rng(seed)
    cells = (rng.random((n_masks, grid, grid)) < p).astype(np.float32)
    shifts = np.stack([rng.integers(0, -(-h // grid), n_masks), rng.integers(0, -(-w // grid), n_masks)], axis=1)
    return cells, shifts.astype(np.int32)


def rise_masks(
    size_hw: tuple[int, int],
    n_masks: int = 1000,
    *,
    grid: int = 7,
    p: float = 0.5,
    seed: int = 0,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Masks ``start:stop`` of the seeded set of ``n_masks``, float32 (m, H, W) in [0, 1]."""
    cells, shifts = _cells_and_shifts(size_hw, n_masks, grid, p, seed)
    masks = smooth_masks(tf.constant(cells[start:stop]), tf.constant(shifts[start:stop]), *map(int, size_hw))
    return np.asarray(masks)


def _one(
    model: keras.Model,
    x: np.ndarray,
    target: int | None,
    n_masks: int,
    grid: int,
    p: float,
    seed: int,
    batch_size: int | None,
) -> np.ndarray:
    t = tf.constant(resolve_target(model, x, target), tf.int32)
    cells, shifts = _cells_and_shifts(x.shape[:2], n_masks, grid, p, seed)
    fn, image = engine(model, "masked").fn, tf.constant(x)
    batch_size = batch_size or batch_for(model)
    total = np.zeros(x.shape[:2])
    for start in range(0, n_masks, batch_size):  # masks, masked images, probabilities and their sum: on the graph
        stop = start + batch_size
        total += np.asarray(fn(image, tf.constant(cells[start:stop]), tf.constant(shifts[start:stop]), t))
        advance(len(cells[start:stop]))
    return (total / (n_masks * p)).astype(np.float32)


def rise_maps(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    layer: str | None,
    *,
    n_masks: int = 1000,
    grid: int = 7,
    p: float = 0.5,
    seed: int = 0,
    batch_size: int | None = None,
) -> np.ndarray:
    """Raw (>= 0) RISE maps of a batch, float32 (N, H, W): the probability-weighted mean mask."""
    return np.stack([_one(model, x, target, n_masks, grid, p, seed, batch_size) for x in batch_nhwc])


RISE = method(
    "rise",
    rise_maps,
    display="relu",
    uses_layer=False,
    cost=lambda model, size_hw, layer, *, n_masks, **options: Cost(n_masks + 1),
    options=(
        Option("n_masks", "int", 1000, "random masks; more is smoother and slower", min=1, max=20000),
        Option("grid", "int", 7, "cells per side of a mask before upsampling", min=2, max=64),
        Option("p", "float", 0.5, "probability that a cell is kept", min=0.05, max=0.95),
        Option("seed", "int", 0, "the same seed gives the same masks", min=0),
    ),
    about="probability-weighted average of random masks; one forward pass per mask",
)
rise = RISE.fn
