"""Canvas drawings become MNIST-like digits: 20 px box, centred by mass, white on black."""

from __future__ import annotations

import numpy as np
import pytest

from vizcore.data.canvas import canvas_ink, canvas_is_empty, canvas_to_image


def _transparent(h: int = 280, w: int = 280) -> np.ndarray:
    return np.zeros((h, w, 4), np.uint8)


def _disk(canvas: np.ndarray, cy: int, cx: int, r: int, rgb=(255, 255, 255)) -> np.ndarray:
    yy, xx = np.mgrid[: canvas.shape[0], : canvas.shape[1]]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    canvas[inside, :3] = rgb
    canvas[inside, 3] = 255
    return canvas


def _extent(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(image[..., 0].any(axis=1))
    cols = np.flatnonzero(image[..., 0].any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    m = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    return (yy * m).sum() / m.sum(), (xx * m).sum() / m.sum()


def test_empty_canvas_is_all_zeros_and_says_so():
    for empty in (None, _transparent(), np.zeros((200, 200, 4), np.uint8) + np.array([0, 0, 0, 255], np.uint8)):
        out = canvas_to_image(empty)
        assert out.shape == (28, 28, 1) and out.dtype == np.uint8 and not out.any()
        assert canvas_is_empty(empty)
    assert not canvas_is_empty(_disk(_transparent(), 50, 50, 10))


def test_off_centre_blob_is_centred_and_scaled_to_20_px():
    out = canvas_to_image(_disk(_transparent(), 60, 200, 30))  # top right, 61 px across
    assert out.shape == (28, 28, 1) and out.max() == 255
    assert _extent(out) == (20, 20)
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    assert out[0].max() == 0 and out[:, 0].max() == 0  # a 4 px black margin, as in MNIST


def test_tall_stroke_keeps_its_aspect_ratio():
    canvas = _transparent()
    canvas[40:240, 100:140] = (255, 255, 255, 255)  # 200 x 40 bar, like a "1"
    out = canvas_to_image(canvas)
    h, w = _extent(out)
    assert h == 20 and w == 4
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_background_and_colour_do_not_matter():
    reference = canvas_to_image(_disk(_transparent(), 100, 90, 25))
    black = _disk(np.zeros((280, 280, 4), np.uint8) + np.array([0, 0, 0, 255], np.uint8), 100, 90, 25)
    white = _disk(np.full((280, 280, 4), 255, np.uint8), 100, 90, 25, rgb=(0, 0, 0))  # black ink on white
    red = _disk(_transparent(), 100, 90, 25, rgb=(200, 0, 0))  # coloured ink: alpha carries it
    for canvas in (black, white, red, black[..., :3]):
        np.testing.assert_array_equal(canvas_to_image(canvas), reference)


def test_other_sizes_scale_the_box():
    out = canvas_to_image(_disk(_transparent(), 140, 140, 50), size=56)
    assert out.shape == (56, 56, 1) and _extent(out) == (40, 40)


def test_ink_from_alpha_and_bad_shapes():
    canvas = _transparent(4, 4)
    canvas[1, 2] = (255, 255, 255, 128)
    ink = canvas_ink(canvas)
    assert ink.shape == (4, 4) and ink[1, 2] == pytest.approx(128 / 255) and ink.sum() == pytest.approx(128 / 255)
    with pytest.raises(ValueError, match="RGBA"):
        canvas_ink(np.zeros((4, 4), np.uint8))
