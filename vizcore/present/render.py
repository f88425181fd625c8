"""Images for people: colormaps, scaling, overlays and montages, all as uint8 NumPy arrays.

Big grids are composited here as one image (NumPy, Pillow for resizing) instead of hundreds of
Plotly subplots. Nothing here knows about Keras.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

EPS = 1e-12

# Anchor colours of each colormap (evenly spaced), interpolated to 256 entries.
_ANCHORS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "viridis": (
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (109, 205, 89),
        (180, 222, 44),
        (253, 231, 37),
    ),
    "inferno": (
        (0, 0, 4),
        (31, 12, 72),
        (85, 15, 109),
        (136, 34, 106),
        (186, 54, 85),
        (227, 89, 51),
        (249, 140, 10),
        (249, 201, 50),
        (252, 255, 164),
    ),
    "jet": (
        (0, 0, 128),
        (0, 0, 255),
        (0, 128, 255),
        (0, 255, 255),
        (128, 255, 128),
        (255, 255, 0),
        (255, 128, 0),
        (255, 0, 0),
        (128, 0, 0),
    ),
    "gray": ((0, 0, 0), (255, 255, 255)),
    "RdBu": (
        (103, 0, 31),
        (178, 24, 43),
        (214, 96, 77),
        (244, 165, 130),
        (253, 219, 199),
        (247, 247, 247),
        (209, 229, 240),
        (146, 197, 222),
        (67, 147, 195),
        (33, 102, 172),
        (5, 48, 97),
    ),
}
COLORMAPS = tuple(_ANCHORS)
DIVERGING = "RdBu_r"  # blue negative, white zero, red positive


def _lut(name: str) -> np.ndarray:
    reverse = name.endswith("_r")
    anchors = np.asarray(_ANCHORS[name[:-2] if reverse else name], dtype=np.float64)
    if reverse:
        anchors = anchors[::-1]
    xs = np.linspace(0, 1, len(anchors))
    grid = np.linspace(0, 1, 256)
    return np.stack([np.interp(grid, xs, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


_LUTS: dict[str, np.ndarray] = {}


def lut(name: str) -> np.ndarray:
    """The 256x3 uint8 lookup table of a colormap (names in COLORMAPS, '_r' reverses)."""
    if name not in _LUTS:
        base = name[:-2] if name.endswith("_r") else name
        if base not in _ANCHORS:
            raise ValueError(f"Unknown colormap '{name}'; choose one of {COLORMAPS}.")
        _LUTS[name] = _lut(name)
    return _LUTS[name]


def normalize(values: np.ndarray, *, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Scale to [0, 1] between lo and hi (default: the array's min and max); constant -> zeros."""
    values = np.asarray(values, dtype=np.float32)
    lo = float(np.min(values)) if lo is None else lo
    hi = float(np.max(values)) if hi is None else hi
    span = hi - lo
    if not np.isfinite(span) or span < EPS:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip((values - lo) / span, 0.0, 1.0).astype(np.float32)


def symmetric_normalize(values: np.ndarray, *, bound: float | None = None) -> np.ndarray:
    """Scale to [0, 1] with zero at 0.5 (for diverging colormaps); bound defaults to max |value|."""
    values = np.asarray(values, dtype=np.float32)
    bound = float(np.max(np.abs(values))) if bound is None else bound
    if bound < EPS:
        return np.full_like(values, 0.5, dtype=np.float32)
    return np.clip(0.5 + 0.5 * values / bound, 0.0, 1.0).astype(np.float32)


def colorize(unit_values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """Map values in [0, 1] (any shape) to uint8 RGB (shape + (3,))."""
    idx = np.clip(np.nan_to_num(np.asarray(unit_values, dtype=np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return lut(cmap)[idx]


def to_rgb(image_hwc: np.ndarray) -> np.ndarray:
    """A uint8 HxWx1 or HxWx3 (or HxW) image as HxWx3."""
    image = np.asarray(image_hwc)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image.astype(np.uint8)


def resize(image: np.ndarray, size_hw: tuple[int, int], *, smooth: bool = True) -> np.ndarray:
    """Resize a uint8 HxW or HxWxC image (smooth: bilinear, else nearest, which keeps pixels crisp)."""
    h, w = size_hw
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST))
    return out[..., None] if squeeze else out


def resize_map(map_hw: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float HxW map (values kept as floats)."""
    pil = Image.fromarray(np.asarray(map_hw, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def overlay(image_hwc: np.ndarray, heatmap_hw: np.ndarray, *, cmap: str = "inferno", alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heatmap (resized to the image) over a uint8 image; returns uint8 HxWx3.

    Example:
        >>> overlay(display_hwc, gradcam_hw, cmap="jet", alpha=0.45).shape
        (28, 28, 3)
    """
    base = to_rgb(image_hwc).astype(np.float32)
    h, w = base.shape[:2]
    heat = heatmap_hw if heatmap_hw.shape == (h, w) else resize_map(heatmap_hw, (h, w))
    colour = colorize(np.clip(heat, 0, 1), cmap).astype(np.float32)
    return np.clip((1 - alpha) * base + alpha * colour, 0, 255).round().astype(np.uint8)


def montage(
    tiles: Sequence[np.ndarray] | np.ndarray, *, columns: int | None = None, pad: int = 1, pad_value: int = 255
) -> np.ndarray:
    """Lay equal-sized uint8 tiles (N,h,w[,3]) out on one grid image, row-major.

    Returns:
        uint8 array (rows*(h+pad)-pad, columns*(w+pad)-pad[, 3]).
    """
    tiles = np.asarray(tiles)
    n = len(tiles)
    if n == 0:
        raise ValueError("montage needs at least one tile")
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    h, w = tiles.shape[1:3]
    extra = tiles.shape[3:]
    out = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, *extra), pad_value, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return out


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor (crisp pixels for tiny maps)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def to_png(image: np.ndarray) -> bytes:
    """Encode a uint8 image as PNG bytes (for downloads)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()
