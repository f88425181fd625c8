"""Colormaps, scaling, overlays and montages."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vizcore.present import render


def test_normalize_and_constant_maps_have_no_nan():
    np.testing.assert_allclose(render.normalize(np.array([2.0, 4.0, 6.0])), [0.0, 0.5, 1.0])
    assert np.all(render.normalize(np.full((3, 3), 7.0)) == 0)
    np.testing.assert_allclose(render.symmetric_normalize(np.array([-2.0, 0.0, 1.0])), [0.0, 0.5, 0.75])
    assert np.all(render.symmetric_normalize(np.zeros(4)) == 0.5)


def test_colormap_ends_and_reverse():
    v = render.colorize(np.array([0.0, 1.0]), "viridis")
    assert tuple(v[0]) == (68, 1, 84) and tuple(v[1]) == (253, 231, 37)
    d = render.colorize(np.array([0.0, 0.5, 1.0]), render.DIVERGING)
    assert d[0, 2] > d[0, 0] and d[2, 0] > d[2, 2]  # blue for negative, red for positive
    assert np.all(d[1] > 240)  # white at zero
    with pytest.raises(ValueError, match="viridis"):
        render.lut("rainbowish")


def test_overlay_blends_and_resizes():
    image = np.zeros((8, 8, 1), dtype=np.uint8)
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[0, 0] = 1.0
    out = render.overlay(image, heat, cmap="gray", alpha=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > 100 and out[7, 7, 0] == 0
    assert np.all(render.overlay(image, heat, alpha=0.0) == 0)


def test_montage_layout():
    tiles = np.stack([np.full((2, 3), i * 10, dtype=np.uint8) for i in range(5)])
    grid = render.montage(tiles, columns=3, pad=1, pad_value=255)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert grid[0, 0] == 0 and grid[0, 4] == 10 and grid[3, 4] == 40
    assert grid[2, 0] == 255 and grid[4, 9] == 255  # padding, and the empty sixth cell


def test_resize_map_and_png_roundtrip():
    m = render.resize_map(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32), (4, 4))
    assert m.shape == (4, 4) and m.dtype == np.float32 and 0 < m[1, 1] < 1
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    back = np.asarray(Image.open(io.BytesIO(render.to_png(img))))
    np.testing.assert_array_equal(back, img)
    assert render.upscale(img, 2).shape == (6, 8)
