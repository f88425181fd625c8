"""A digit drawn on a canvas, made into an MNIST-like image.

MNIST digits were made by scaling each digit so that its longer side is 20 pixels (anti-aliased)
and placing it in a 28x28 field with its centre of mass at the centre. ``canvas_to_image`` does the
same to the RGBA array a drawing canvas returns (streamlit-drawable-canvas: strokes of any colour
on a transparent background, or on an opaque background such as black):

* transparent background (some alpha < 255): the ink is the alpha channel;
* opaque background: the ink is how far each pixel's colour is from the border's median colour
  (the largest difference over R, G, B), so white-on-black and black-on-white both work.

The result is a white digit on black, uint8 ``(size, size, 1)``, its brightest pixel 255.

Example:
    >>> digit = canvas_to_image(result.image_data)        # uint8 (28, 28, 1)
    >>> if not canvas_is_empty(result.image_data):
    ...     x = digit.astype("float32") / 255.0           # the bundled MNIST models' range
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INK_FLOOR = 0.05  # ink below this (of full scale) counts as background: canvas noise, faint edges
MNIST_SIZE, MNIST_BOX = 28, 20


def canvas_ink(rgba_hw4: np.ndarray | None) -> np.ndarray:
    """How much ink each pixel holds, float32 (H, W) in [0, 1] (see the module docstring).

    Args:
        rgba_hw4: uint8 (H, W, 4) RGBA, (H, W, 3) RGB (treated as opaque), float in [0, 1], or
            None (no drawing yet, as streamlit-drawable-canvas returns before the first stroke).
    """
    if rgba_hw4 is None:
        return np.zeros((0, 0), dtype=np.float32)
    image = np.asarray(rgba_hw4)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"canvas must be (H, W, 4) RGBA or (H, W, 3) RGB, got shape {image.shape}")
    image = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    rgb = image[..., :3]
    if image.shape[-1] == 4 and float(image[..., 3].min()) < 1.0:
        return np.clip(image[..., 3], 0.0, 1.0)
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(ring, axis=0)
    return np.clip(np.abs(rgb - background).max(axis=-1), 0.0, 1.0)


def canvas_is_empty(rgba_hw4: np.ndarray | None) -> bool:
    """True when nothing was drawn: no pixel holds ink above ``INK_FLOOR`` (or no canvas yet)."""
    ink = canvas_ink(rgba_hw4)
    return ink.size == 0 or float(ink.max()) <= INK_FLOOR


def canvas_to_image(rgba_hw4: np.ndarray | None, *, size: int = MNIST_SIZE) -> np.ndarray:
    """Turn a canvas drawing into an MNIST-like digit: white on black, 20 px box, centred by mass.

    Steps: ink (module docstring) -> crop to the bounding box of ink above ``INK_FLOOR`` -> resize
    (bilinear, anti-aliased) so the longer side is ``round(size * 20 / 28)`` px -> stretch so the
    brightest pixel is 255 -> place so the centre of mass is at the field's centre ((size-1)/2,
    rounded to whole pixels), moved back inside the field if a lopsided digit would be cut.

    Args:
        rgba_hw4: the canvas's uint8 RGBA array (or RGB, or None).
        size: side of the square output (28 for MNIST).

    Returns:
        uint8 (size, size, 1); all zeros for an empty canvas (test with ``canvas_is_empty``).
    """
    out = np.zeros((size, size), dtype=np.float32)
    ink = canvas_ink(rgba_hw4)
    if ink.size == 0 or float(ink.max()) <= INK_FLOOR:
        return out.astype(np.uint8)[..., None]
    ink = np.where(ink > INK_FLOOR, ink, 0.0).astype(np.float32)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    box = max(1, round(size * MNIST_BOX / MNIST_SIZE))
    new_h, new_w = (box, max(1, round(w * box / h))) if h >= w else (max(1, round(h * box / w)), box)
    pil = Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.BILINEAR)
    digit = np.clip(np.asarray(pil, dtype=np.float32), 0.0, None)
    digit /= max(float(digit.max()), 1e-12)
    total = float(digit.sum())
    cy = float((digit.sum(axis=1) * np.arange(new_h)).sum() / total)
    cx = float((digit.sum(axis=0) * np.arange(new_w)).sum() / total)
    centre = (size - 1) / 2.0
    top = int(np.clip(round(centre - cy), 0, size - new_h))
    left = int(np.clip(round(centre - cx), 0, size - new_w))
    out[top : top + new_h, left : left + new_w] = digit
    return np.rint(out * 255.0).astype(np.uint8)[..., None]
