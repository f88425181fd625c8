"""Is a heatmap faithful? Deletion/insertion curves, baselines, a randomization check, pointing game.

* ``deletion_curve`` / ``insertion_curve`` (Petsiuk et al., RISE 2018): remove (insert) pixels in
  the order of the map, most important first, and follow the target's probability; a faithful map
  gives a low deletion AUC and a high insertion AUC. All steps run as batched forward passes.
* ``random_map`` and ``sobel_map``: maps with the method signature that know nothing of the
  model, the bar any method should clear.
* ``randomization_check`` (Adebayo et al., 2018): re-initialise the top layers of a COPY of the
  model; a map that barely changes (Spearman near 1) does not depend on what the model learned.
* ``pointing_game`` (Zhang et al., 2016): how often the map's maximum lies inside the object's box.

Example:
    >>> heatmap_hw = gradcam(model, x_hwc)
    >>> deletion_curve(model, x_hwc, heatmap_hw, steps=20).auc < deletion_curve(model, x_hwc, random_map(model, x_hwc)).auc
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import keras
import numpy as np

from vizcore import graph
from vizcore.attribution.base import AttributionError, Method, normalize_map, probabilities, resolve_target
from vizcore.batches import as_image
from vizcore.data import ImageDataset

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
            out = (np.take(c, np.arange(2 * radius + 1, n + 2 * radius + 1), axis=axis) - np.take(c, np.arange(n), axis=axis)) / (2 * radius + 1)
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
    probs = probabilities(model, batch, batch_size=batch_size)[:, target]
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


def random_map(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None, seed: int = 0) -> np.ndarray:
    """A seeded uniform random map, float32 (H, W) in [0, 1]; ignores the model."""
    h, w = as_image(model, image).shape[:2]
    return normalize_map(np.random.default_rng(seed).random((h, w)))


def sobel_map(model: keras.Model, image: np.ndarray, *, target: int | None = None, layer: str | None = None) -> np.ndarray:
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


def _glorot(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def reinitialise_top(model: keras.Model, top_layers: int, seed: int = 0) -> tuple[str, ...]:
    """Re-initialise IN PLACE the last ``top_layers`` layers with kernels (Keras defaults: Glorot, zero bias)."""
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
            if value.ndim >= 2:
                value = _glorot(value.shape, rng)
            elif "bias" in var.name:
                value = np.zeros_like(value)
            new.append(value)
        layer.set_weights(new)
    return tuple(path for path, _ in chosen)


def randomization_check(
    model: keras.Model,
    image: np.ndarray,
    method: Method,
    target: int | None = None,
    layer: str | None = None,
    top_layers: int = 1,
    seed: int = 0,
) -> Randomization:
    """Compare a method's map on the model and on a copy whose top layers are re-initialised.

    The copy is ``keras.models.clone_model`` + ``set_weights``; the given model is never changed.
    The target is resolved on the original model and used for both maps.
    """
    x = as_image(model, image)
    t = resolve_target(model, x, target)
    original = method(model, x, target=t, layer=layer)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    names = reinitialise_top(copy, top_layers, seed)
    randomized = method(copy, x, target=t, layer=layer)
    return Randomization(spearman(original, randomized), original, randomized, names)


# --------------------------------------------------------------------------- pointing game


def pointing_game(model: keras.Model, dataset: ImageDataset, method: Method, n: int | None = None, *, layer: str | None = None) -> float:
    """Share of the first ``n`` images whose map's maximum (first argmax) lies in the object's box.

    Each map explains the image's true label. Boxes are (x0, y0, x1, y1) with x1, y1 exclusive.
    """
    if dataset.boxes is None:
        raise AttributionError(f"Dataset '{dataset.name}' has no object boxes; the pointing game needs them.")
    n = len(dataset) if n is None else min(n, len(dataset))
    if n < 1:
        raise AttributionError("The pointing game needs at least one image.")
    hits = 0
    for x, label, (x0, y0, x1, y1) in zip(dataset.x_nhwc[:n], dataset.y[:n], dataset.boxes[:n]):
        heatmap_hw = method(model, x, target=int(label), layer=layer)
        row, col = np.unravel_index(int(np.argmax(heatmap_hw)), heatmap_hw.shape)
        hits += bool(x0 <= col < x1 and y0 <= row < y1)
    return hits / n
