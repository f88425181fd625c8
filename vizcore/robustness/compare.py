"""How far an adversarial twin moved from its original: the perturbation, the activations, an explanation.

* ``perturbation_image``: the change, amplified to fill 0..255 around grey, with its scale;
* ``activation_change``: per layer (block outputs by default) the relative L2 change of the
  activations, ||a' - a|| / ||a||, as Bluff shows it, and the channels that moved most; both images
  go through the model in one pass (``activations.get_activations_batch``);
* ``topk_overlap``: the share of an attribution map's top-k pixels that stay in the top-k.

Example:
    >>> changes = activation_change(model, x_hwc, x_adv_hwc, k=3)
    >>> [(c.layer, round(c.relative, 2), c.channels.tolist()) for c in changes][:2]
    [('conv1', 0.21, [7, 30, 2]), ('conv2', 0.47, [12, 5, 40])]
    >>> topk_overlap(heat_hw, heat_adv_hw, fraction=0.1)
    0.62
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from vizcore.inspect import activations
from vizcore.models import batches
from vizcore.robustness.attacks import Bounds


@dataclass(frozen=True, eq=False)
class LayerChange:
    """One layer's change between an image and its adversarial twin.

    Attributes:
        layer: the layer path.
        relative: ||a' - a||_2 / ||a||_2 over the whole layer (inf when a is zero and a' is not; 0 when both are).
        channels: int64 (k,) the channels (units of a vector) whose values moved most (L2 of their change), most first.
        moved: float64 (k,) that L2 change over the layer's ||a||_2 (their squares sum to at most ``relative``²).
        before, after: float64 (k,) those channels' mean activation on the original and on the twin.
    """

    layer: str
    relative: float
    channels: np.ndarray
    moved: np.ndarray
    before: np.ndarray
    after: np.ndarray


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


def layer_change(layer: str, a: np.ndarray, b: np.ndarray, *, k: int = 5) -> LayerChange:
    """The change from ``a`` to ``b``, one image's outputs of ``layer``: (h, w, c) maps or (units,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    channels_a, channels_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])  # (positions, C)
    norm = float(np.linalg.norm(a))
    per_channel = np.linalg.norm(channels_b - channels_a, axis=0)
    top = np.argsort(-per_channel, kind="stable")[: min(k, len(per_channel))]
    return LayerChange(
        layer,
        _ratio(float(np.linalg.norm(b - a)), norm),
        top.astype(np.int64),
        per_channel[top] / norm if norm > 0 else np.full(len(top), math.inf),
        channels_a[:, top].mean(axis=0),
        channels_b[:, top].mean(axis=0),
    )


def activation_change(
    model: keras.Model,
    image_hwc: np.ndarray,
    adversarial_hwc: np.ndarray,
    layers: Sequence[str] | None = None,
    *,
    k: int = 5,
) -> tuple[LayerChange, ...]:
    """The change of every layer in ``layers`` (default: ``activations.block_columns``, one per block), one pass.

    Returns:
        one LayerChange per layer, in the order of ``layers``.
    """
    pair = np.stack([batches.as_image(model, image_hwc), batches.as_image(model, adversarial_hwc)])
    names = activations.block_columns(model) if layers is None else tuple(layers)
    acts = activations.get_activations_batch(model, pair, names)
    return tuple(layer_change(path, out[0], out[1], k=k) for path, out in acts.items())


def warm_activation_change(
    model: keras.Model, image_hwc: np.ndarray, adversarial_hwc: np.ndarray, layers: Sequence[str] | None = None
) -> bool:
    """Trace now the compiled pass the next ``activation_change`` of these layers will use (``activations.warm``)."""
    pair = np.stack([batches.as_image(model, image_hwc), batches.as_image(model, adversarial_hwc)])
    return activations.warm(model, pair, activations.block_columns(model) if layers is None else tuple(layers))


def topk_overlap(map_a_hw: np.ndarray, map_b_hw: np.ndarray, *, k: int | None = None, fraction: float = 0.1) -> float:
    """Share of the ``k`` highest pixels of map a that are among the ``k`` highest of map b (0..1).

    ``k`` defaults to ``ceil(fraction * pixels)``; ties are broken by pixel order, the same in both maps.

    Example:
        >>> topk_overlap(np.arange(4.0).reshape(2, 2), np.array([[0, 1], [3, 2.0]]), k=2)
        1.0
    """
    a, b = np.asarray(map_a_hw, np.float64).ravel(), np.asarray(map_b_hw, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape, got {np.shape(map_a_hw)} and {np.shape(map_b_hw)}.")
    k = max(1, math.ceil(fraction * a.size)) if k is None else int(k)
    if not 1 <= k <= a.size:
        raise ValueError(f"k must be in 1..{a.size}, got {k}.")
    top_a = np.argsort(-a, kind="stable")[:k]
    top_b = np.argsort(-b, kind="stable")[:k]
    return len(np.intersect1d(top_a, top_b)) / k


def perturbation_image(image_hwc: np.ndarray, adversarial_hwc: np.ndarray, bounds: Bounds) -> tuple[np.ndarray, float]:
    """The change shown as uint8 around grey (128 = none), amplified so the largest change reaches black or white.

    Returns:
        (uint8 (H, W, C) in RGB order, the amplification: one 0..255 level of change is that many levels shown).
    """
    levels = (np.asarray(adversarial_hwc, np.float64) - np.asarray(image_hwc, np.float64)) / bounds.width * 255.0
    if bounds.bgr:
        levels = levels[..., ::-1]
    peak = float(np.abs(levels).max())
    scale = 127.5 / peak if peak > 0 else 1.0
    return np.rint(np.clip(127.5 + levels * scale, 0.0, 255.0)).astype(np.uint8), scale
