"""Is a heatmap faithful? Deletion/insertion curves, baselines, a randomization check, pointing game.

* ``deletion_curve`` / ``insertion_curve`` (Petsiuk et al., RISE 2018): remove (insert) pixels in
  the order of the map, most important first, and follow the target's probability; a faithful map
  gives a low deletion AUC and a high insertion AUC. All steps run as batched forward passes.
* ``random_map`` and ``sobel_map``: maps with the method signature that know nothing of the
  model, the bar any method should clear.
* ``randomization_check`` (Adebayo et al., 2018): re-initialise the top layers of a COPY of the
  model, each weight with its layer's own initializer; a map that barely changes (Spearman near 1)
  does not depend on what the model learned.
* ``pointing_game`` (Zhang et al., 2018): how often the map's maximum lies on the object's box,
  with the paper's 15-pixel tolerance at 224 px, scaled to the input.

The checks that run a method take its keyword ``options`` (Occlusion's patch, IG's steps, ...), so
they score the same map a page shows.

Example:
    >>> heatmap_hw = gradcam(model, x_hwc)
    >>> (deletion_curve(model, x_hwc, heatmap_hw, steps=20).auc
    ...  < deletion_curve(model, x_hwc, random_map(model, x_hwc)).auc)
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from vizcore.attribution.engines import resolve_target
from vizcore.attribution.factory import Method, normalize_map
from vizcore.attribution.progress import advance
from vizcore.data.datasets import ImageDataset
from vizcore.errors import AttributionError
from vizcore.models import graph, predict
from vizcore.models.batches import as_image

CURVE_STEPS = 20  # default number of equal shares of pixels a deletion or insertion curve moves

# --------------------------------------------------------------------------- deletion and insertion


@dataclass(frozen=True, eq=False)
class Curve:
    """A deletion or insertion curve: ``probabilities[i]`` after a ``fractions[i]`` share of pixels."""

    fractions: np.ndarray  # (steps + 1,) from 0 to 1
    probabilities: np.ndarray  # (steps + 1,) target-class probability
    auc: float  # trapezoid area under the curve, in [0, 1]


def _blur(image_hwc: np.ndarray) -> np.ndarray:
    """Three box blurs (about a gaussian, sigma ~ side / 16), edges repeated."""
    radius = max(1, min(image_hwc.shape[:2]) // 16)
    out = image_hwc.astype(np.float64)
    for _ in range(3):
        for axis in (0, 1):
            pad = [(radius, radius) if a == axis else (0, 0) for a in range(3)]
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
            n = out.shape[axis]
            out = (
                np.take(c, np.arange(2 * radius + 1, n + 2 * radius + 1), axis=axis)
                - np.take(c, np.arange(n), axis=axis)
            ) / (2 * radius + 1)
    return out.astype(np.float32)


def _canvas(image_hwc: np.ndarray, baseline: float | str | np.ndarray) -> np.ndarray:
    if isinstance(baseline, str):
        if baseline == "blur":
            return _blur(image_hwc)
        if baseline == "mean":
            return np.broadcast_to(image_hwc.mean(axis=(0, 1)), image_hwc.shape).astype(np.float32)
        raise AttributionError(f"baseline must be a number, an array, 'blur' or 'mean', got '{baseline}'.")
    return np.broadcast_to(np.asarray(baseline, np.float32), image_hwc.shape).astype(np.float32)


def _curve(model, start_hwc, end_hwc, heatmap_hw, target, steps, batch_size) -> Curve:
    """Move pixels from ``start`` to ``end`` in the map's order (highest first), ``steps`` equal shares."""
    h, w, _ = start_hwc.shape
    if np.shape(heatmap_hw) != (h, w):
        raise AttributionError(f"heatmap of shape {np.shape(heatmap_hw)} does not match the {h}x{w} image.")
    if steps < 1:
        raise AttributionError(f"steps must be >= 1, got {steps}.")
    order = np.argsort(-np.nan_to_num(np.asarray(heatmap_hw, np.float64)).ravel(), kind="stable")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * h * w).astype(int)
    rank_hw = np.empty(h * w, dtype=int)
    rank_hw[order] = np.arange(h * w)
    rank_hw = rank_hw.reshape(h, w)
    moved_nhw = rank_hw[None] < counts[:, None, None]  # (steps + 1, H, W)
    batch = np.where(moved_nhw[..., None], end_hwc[None], start_hwc[None]).astype(np.float32)
    probs = predict.probabilities(model, batch, batch_size=batch_size, on_chunk=advance)[:, target]
    return Curve(fractions, probs, float(np.trapezoid(probs, fractions)))


def deletion_curve(
    model: keras.Model,
    image: np.ndarray,
    heatmap_hw: np.ndarray,
    *,
    target: int | None = None,
    steps: int = CURVE_STEPS,
    baseline: float | str | np.ndarray = 0.0,
    batch_size: int = 32,
) -> Curve:
    """Replace pixels by ``baseline`` (a value, an HxWxC array, 'blur' or 'mean'), most important first.

    A low AUC is good: the probability falls fast when the highlighted pixels go.
    """
    x = as_image(model, image)
    t = resolve_target(model, x, target)
    return _curve(model, x, _canvas(x, baseline), heatmap_hw, t, steps, batch_size)


def insertion_curve(
    model: keras.Model,
    image: np.ndarray,
    heatmap_hw: np.ndarray,
    *,
    target: int | None = None,
    steps: int = CURVE_STEPS,
    baseline: float | str | np.ndarray = "blur",
    batch_size: int = 32,
) -> Curve:
    """Start from ``baseline`` (default a blurred copy) and put pixels back, most important first.

    A high AUC is good: the probability rises fast when the highlighted pixels return.
    """
    x = as_image(model, image)
    t = resolve_target(model, x, target)
    return _curve(model, _canvas(x, baseline), x, heatmap_hw, t, steps, batch_size)


# --------------------------------------------------------------------------- baselines


def random_map(
    model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None, seed: int = 0
) -> np.ndarray:
    """A seeded uniform random map, float32 (H, W) in [0, 1]; ignores the model."""
    h, w = as_image(model, image).shape[:2]
    return normalize_map(np.random.default_rng(seed).random((h, w)))


def sobel_map(
    model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None
) -> np.ndarray:
    """Edge strength of the image (Sobel magnitude of the channel mean), float32 (H, W) in [0, 1]."""
    gray = np.pad(as_image(model, image).astype(np.float64).mean(axis=-1), 1, mode="edge")
    h, w = gray.shape[0] - 2, gray.shape[1] - 2

    def win(dr: int, dc: int) -> np.ndarray:  # gray shifted by (dr, dc), cropped to (h, w)
        return gray[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

    gx = (win(-1, 1) + 2 * win(0, 1) + win(1, 1)) - (win(-1, -1) + 2 * win(0, -1) + win(1, -1))
    gy = (win(1, -1) + 2 * win(1, 0) + win(1, 1)) - (win(-1, -1) + 2 * win(-1, 0) + win(-1, 1))
    return normalize_map(np.hypot(gx, gy))


BASELINE_MAPS: Mapping[str, Method] = MappingProxyType({"Random": random_map, "Edges (Sobel)": sobel_map})


# --------------------------------------------------------------------------- randomization check


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the flattened values; ties get their average rank (like scipy's 'average')."""
    _, inverse, counts = np.unique(np.ravel(values), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-sized arrays; NaN when either is constant."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.shape != rb.shape:
        raise ValueError(f"arrays differ in size: {np.size(a)} and {np.size(b)}")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


@dataclass(frozen=True, eq=False)
class Randomization:
    """The outcome of ``randomization_check``."""

    spearman: float  # rank correlation of the two maps; NaN when one of them is constant
    original_hw: np.ndarray
    randomized_hw: np.ndarray
    layers: tuple[str, ...]  # the re-initialised layers, output side first


def weight_initializer(layer: keras.layers.Layer, weight: Any) -> keras.initializers.Initializer | None:
    """The layer's own initializer of one weight (``kernel`` -> ``kernel_initializer``,
    ``depthwise_kernel`` -> ``depthwise_initializer``), or None when the layer names none."""
    name = weight.name.split("/")[-1].split(":")[0]
    extra = ("depthwise_initializer",) if name == "kernel" else ()  # DepthwiseConv2D calls its kernel 'kernel'
    for attr in (f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer", *extra):
        found = getattr(layer, attr, None)
        if found is not None:
            return keras.initializers.get(found)
    return None


def _seeded(initializer: keras.initializers.Initializer, seed: int) -> keras.initializers.Initializer:
    """A copy of a random initializer with a fixed seed (one without a seed, such as Zeros, as it is)."""
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    return type(initializer).from_config({**config, "seed": seed})


def reinitialise_top(model: keras.Model, top_layers: int, seed: int = 0) -> tuple[str, ...]:
    """Re-initialise IN PLACE the last ``top_layers`` layers that hold a kernel; returns their paths.

    Each weight is drawn from its layer's own initializer (``kernel_initializer``, ``bias_initializer``,
    ...), seeded, as Adebayo et al. do; a weight whose layer names no initializer falls back to
    Glorot uniform (2-D and up) or zeros (a bias). Use ``randomized_copy`` to leave the model alone.
    """
    weighted = [
        (path, layer)
        for path, layer, _ in graph.iter_layers(model)
        if not isinstance(layer, keras.Model) and any(len(w.shape) >= 2 for w in layer.weights)
    ]
    chosen = weighted[::-1][: max(0, top_layers)]
    rng = np.random.default_rng(seed)
    for _, layer in chosen:
        new = []
        for var, value in zip(layer.weights, layer.get_weights()):
            init = weight_initializer(layer, var)
            if init is None and value.ndim >= 2:
                init = keras.initializers.GlorotUniform()
            elif init is None and "bias" in var.name:
                init = keras.initializers.Zeros()
            if init is not None:
                drawn = _seeded(init, int(rng.integers(2**31 - 1)))(value.shape, dtype=value.dtype)
                value = np.asarray(keras.ops.convert_to_numpy(drawn), dtype=value.dtype)
            new.append(value)
        layer.set_weights(new)
    return tuple(path for path, _ in chosen)


def randomized_copy(model: keras.Model, top_layers: int, seed: int = 0) -> tuple[keras.Model, tuple[str, ...]]:
    """A clone of ``model`` (same weights) whose last ``top_layers`` kernel layers are re-initialised.

    The given model is never changed. Returns the copy and the re-initialised layer paths, output side first.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy, reinitialise_top(copy, top_layers, seed)


def randomization_check(
    model: keras.Model,
    image: np.ndarray,
    method: Method,
    target: int | None = None,
    layer: str | None = None,
    top_layers: int = 1,
    seed: int = 0,
    *,
    options: Mapping[str, Any] | None = None,
) -> Randomization:
    """Compare a method's map on the model and on a copy whose top layers are re-initialised.

    The copy comes from ``randomized_copy``; the given model is never changed. The target is resolved
    on the original model and used for both maps; ``options`` are the method's keyword options.
    """
    x = as_image(model, image)
    t = resolve_target(model, x, target)
    opts = dict(options or {})
    original = method(model, x, target=t, layer=layer, **opts)
    copy, names = randomized_copy(model, top_layers, seed)
    randomized = method(copy, x, target=t, layer=layer, **opts)
    return Randomization(spearman(original, randomized), original, randomized, names)


# --------------------------------------------------------------------------- pointing game


POINTING_TOLERANCE = 15.0  # pixels at 224 x 224 (Zhang et al., 2018), scaled to the input


def pointing_tolerance(height: int, width: int) -> float:
    """The paper's 15 px at 224, scaled to the input: 15 * min(H, W) / 224."""
    return POINTING_TOLERANCE * min(height, width) / 224.0


def pointing_hit(heatmap_hw: np.ndarray, box: tuple[int, int, int, int], tolerance: float) -> bool:
    """Whether the map points at the box: a maximum pixel lies within ``tolerance`` px of it.

    ``box`` is (x0, y0, x1, y1), x1 and y1 exclusive; the distance is Euclidean, from a pixel to the
    nearest pixel of the box. Ties: a hit when ANY pixel equal to the maximum is that close (no
    centroid of the tied points is taken). A flat map (every pixel the maximum) points nowhere: a miss.
    """
    heat = np.nan_to_num(np.asarray(heatmap_hw, np.float64))
    if heat.max() == heat.min():
        return False
    x0, y0, x1, y1 = (int(v) for v in box)
    rows, cols = np.nonzero(heat == heat.max())
    dx = np.maximum(0, np.maximum(x0 - cols, cols - (x1 - 1)))
    dy = np.maximum(0, np.maximum(y0 - rows, rows - (y1 - 1)))
    return bool(np.any(np.hypot(dx, dy) <= tolerance))


def pointing_game(
    model: keras.Model,
    dataset: ImageDataset,
    method: Method,
    n: int | None = None,
    *,
    layer: str | None = None,
    tolerance: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> float:
    """Share of the first ``n`` images whose map points at the object's box (``pointing_hit``).

    Each map explains the image's true label, made with the method's ``options``. Boxes are
    (x0, y0, x1, y1) with x1, y1 exclusive; ``tolerance`` None: ``pointing_tolerance`` of the images.
    """
    if dataset.boxes is None:
        raise AttributionError(f"Dataset '{dataset.name}' has no object boxes; the pointing game needs them.")
    n = len(dataset) if n is None else min(n, len(dataset))
    if n < 1:
        raise AttributionError("The pointing game needs at least one image.")
    tol = pointing_tolerance(*dataset.x_nhwc.shape[1:3]) if tolerance is None else float(tolerance)
    opts = dict(options or {})
    hits = 0
    for x, label, box in zip(dataset.x_nhwc[:n], dataset.y[:n], dataset.boxes[:n]):
        hits += pointing_hit(method(model, x, target=int(label), layer=layer, **opts), box, tol)
    return hits / n
