"""Feature maps as pictures: one layer's maps as a grid of tiles, and the overview's columns, one per layer.

NumPy only (uint8 images through ``render``): switching the shown layer or the scaling is a few
milliseconds once ``vizcore.inspect.activations`` has computed the maps.

Example:
    >>> grid = feature_grid(acts["conv2"], scale="map")           # uint8 HxWx3, one tile per channel
    >>> ov = overview(acts, activations.activation_layers(model), scale="global").composite()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vizcore.present import render

SCALES = ("map", "layer", "global")
SIGNED_PAD, UNSIGNED_PAD = 40, 255  # grid gaps: dark grey by a diverging map (white = 0), else white


def as_chw(maps: np.ndarray) -> np.ndarray:
    """(h, w, c) maps or a (units,) vector -> float32 (c, h, w); a vector becomes 1x1 maps."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:
        return maps[:, None, None]
    if maps.ndim != 3:
        raise ValueError(f"expected (h, w, c) feature maps or a (units,) vector, got shape {maps.shape}")
    return maps.transpose(2, 0, 1)


def _is_signed(cmap: str) -> bool:
    return cmap.split("_")[0] == "RdBu"


def activation_bounds(acts: Mapping[str, np.ndarray], layers: Sequence[str] | None = None) -> tuple[float, float]:
    """(min, max) over the given layers (default: all in ``acts``): the bounds of ``scale='global'``."""
    arrays = [np.asarray(acts[k]) for k in (acts if layers is None else layers)]
    return float(min(a.min() for a in arrays)), float(max(a.max() for a in arrays))


def _to_unit(
    values_chw: np.ndarray,
    scale: str,
    signed: bool,
    global_bounds: tuple[float, float] | None,
    all_chw: np.ndarray | None = None,
) -> np.ndarray:
    """Scale (c, h, w) values to [0, 1] per map, per layer (``all_chw``) or between global bounds."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    ref = values_chw if all_chw is None else all_chw
    if scale == "global" and global_bounds is None:
        raise ValueError("scale='global' needs global_bounds=activation_bounds(acts)")
    if signed:
        if scale == "map":
            bound = np.max(np.abs(values_chw), axis=(1, 2), keepdims=True)
        elif scale == "layer":
            bound = np.full((1, 1, 1), np.max(np.abs(ref)))
        else:
            bound = np.full((1, 1, 1), max(abs(global_bounds[0]), abs(global_bounds[1])))
        ok = bound > render.EPS
        unit = np.where(ok, 0.5 + 0.5 * values_chw / np.where(ok, bound, 1.0), 0.5)
    else:
        if scale == "map":
            lo = values_chw.min(axis=(1, 2), keepdims=True)
            hi = values_chw.max(axis=(1, 2), keepdims=True)
        elif scale == "layer":
            lo, hi = np.full((1, 1, 1), ref.min()), np.full((1, 1, 1), ref.max())
        else:
            lo, hi = np.full((1, 1, 1), global_bounds[0]), np.full((1, 1, 1), global_bounds[1])
        span = hi - lo
        ok = span > render.EPS
        unit = np.where(ok, (values_chw - lo) / np.where(ok, span, 1.0), 0.0)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def _fit(values_chw: np.ndarray, tile: int) -> np.ndarray:
    """Maps to about ``tile`` px: an integer nearest upscale (crisp) when smaller, nearest downsampling when larger."""
    _, h, w = values_chw.shape
    side = max(h, w)
    if side <= tile:
        f = max(1, round(tile / side))
        return np.repeat(np.repeat(values_chw, f, axis=1), f, axis=2) if f > 1 else values_chw
    out_h, out_w = max(1, round(h * tile / side)), max(1, round(w * tile / side))
    rows = (np.arange(out_h) * h) // out_h
    cols = (np.arange(out_w) * w) // out_w
    return values_chw[:, rows][:, :, cols]


def feature_grid(
    maps_hwc: np.ndarray,
    *,
    scale: str = "map",
    cmap: str = "viridis",
    columns: int | None = None,
    global_bounds: tuple[float, float] | None = None,
    tile: int = 48,
    channels: Sequence[int] | None = None,
    pad: int = 1,
) -> np.ndarray:
    """All feature maps of one layer as one uint8 image: one tile per channel, row-major.

    Args:
        maps_hwc: float (h, w, c) feature maps of one image (or a (units,) vector: 1x1 maps).
        scale: 'map' (each map to its own min..max), 'layer' (one min..max over all the layer's
            channels, also those not shown), 'global' (``global_bounds``, e.g.
            ``activation_bounds(acts)``, shared by every layer).
        cmap: a ``render`` colormap. With a diverging one (``render.DIVERGING``) the scaling is
            symmetric about zero: bound = max |value| per map / layer, or max(|lo|, |hi|) for global.
        columns: tiles per row (default ceil(sqrt(n))).
        tile: target tile side in px: smaller maps are upscaled by a whole factor (crisp pixels),
            larger ones sampled down to it.
        channels: which channels to show, in that order (default: all); tile i is ``channels[i]``.
        pad: pixels between tiles (white; dark grey with a diverging colormap).

    Returns:
        uint8 (H, W, 3).

    Example:
        >>> feature_grid(acts["conv1"], scale="global", global_bounds=activation_bounds(acts)).dtype
        dtype('uint8')
    """
    chw = as_chw(maps_hwc)
    shown = chw if channels is None else chw[np.asarray(channels, dtype=int)]
    signed = _is_signed(cmap)
    unit = _to_unit(shown, scale, signed, global_bounds, all_chw=chw)
    tiles = render.colorize(_fit(unit, tile), cmap)
    return render.montage(tiles, columns=columns, pad=pad, pad_value=SIGNED_PAD if signed else UNSIGNED_PAD)


@dataclass(frozen=True, eq=False)
class OverviewColumn:
    """One layer of the overview: its maps (or units) stacked top to bottom.

    Attributes:
        layer: the layer path ('input' for the input image).
        image: uint8 (H, W, 3).
        shape: the layer's output shape for one image, e.g. (26, 26, 32) or (10,).
        shown: channel (or unit) indices shown, top to bottom; fewer than all when capped.
        cell: pixel height of one tile (maps) or one cell (vectors); the gap between is ``pad``.
    """

    layer: str
    image: np.ndarray
    shape: tuple[int, ...]
    shown: tuple[int, ...]
    cell: int

    @property
    def total(self) -> int:
        return int(self.shape[-1])


@dataclass(frozen=True, eq=False)
class Overview:
    """A CNN-Explainer-like overview: one column per layer, from the input to the prediction."""

    columns: tuple[OverviewColumn, ...]
    pad: int

    def composite(self, *, gap: int = 12, background: int = 255) -> np.ndarray:
        """All columns side by side (tops aligned, ``gap`` px apart) as one uint8 (H, W, 3) image."""
        height = max(c.image.shape[0] for c in self.columns)
        width = sum(c.image.shape[1] for c in self.columns) + gap * (len(self.columns) - 1)
        out = np.full((height, width, 3), background, dtype=np.uint8)
        x = 0
        for c in self.columns:
            h, w = c.image.shape[:2]
            out[:h, x : x + w] = c.image
            x += w + gap
        return out


def overview(
    acts: Mapping[str, np.ndarray],
    layer_order: Sequence[str],
    *,
    input_display_hwc: np.ndarray | None = None,
    scale: str = "layer",
    cmap: str = "viridis",
    global_bounds: tuple[float, float] | None = None,
    tile: int = 40,
    max_maps: int = 16,
    max_units: int = 64,
    pad: int = 2,
) -> Overview:
    """Columns of feature maps, one per layer, for a CNN-Explainer-like view (NumPy only, fast).

    Args:
        acts: from ``get_activations``.
        layer_order: the layers to show, left to right (e.g. ``inspect.activations.activation_layers(model)``).
        input_display_hwc: uint8 image shown as the first column (optional).
        scale: 'map', 'layer' or 'global' as in ``feature_grid``; 'global' defaults to
            ``activation_bounds`` over the 4-D layers of ``layer_order``.
        tile: target side of a map tile (as in ``feature_grid``).
        max_maps: at most this many maps per column (the first ones; ``column.shown`` says which).
        max_units: at most this many cells for a vector layer (dense, global pooling, scores).
        pad: gap between tiles, white.

    Returns:
        Overview; ``.columns[i].image`` per layer, ``.composite()`` for one image.
    """
    if scale == "global" and global_bounds is None:
        maps = [p for p in layer_order if np.ndim(acts[p]) == 3]
        global_bounds = activation_bounds(acts, maps or list(layer_order))
    signed = _is_signed(cmap)
    columns = []
    if input_display_hwc is not None:
        image = render.to_rgb(input_display_hwc)
        fitted = _fit(image.transpose(2, 0, 1).astype(np.float32), tile).transpose(1, 2, 0).astype(np.uint8)
        columns.append(OverviewColumn("input", fitted, tuple(image.shape), (0,), fitted.shape[0]))
    for path in layer_order:
        values = np.asarray(acts[path], dtype=np.float32)
        chw = as_chw(values)
        is_vector = values.ndim == 1
        n = min(len(chw), max_units if is_vector else max_maps)
        unit = _to_unit(chw[:n], scale, signed, global_bounds, all_chw=chw)
        cell = max(6, tile // 4) if is_vector else None
        fitted = np.repeat(np.repeat(unit, cell, axis=1), cell, axis=2) if is_vector else _fit(unit, tile)
        image = render.montage(render.colorize(fitted, cmap), columns=1, pad=pad, pad_value=255)
        columns.append(OverviewColumn(path, image, tuple(values.shape), tuple(range(n)), int(fitted.shape[1])))
    return Overview(tuple(columns), pad)
