"""Transformation robustness: random pad, jitter, scale and rotation applied before every step.

A feature that survives small random shifts, zooms and turns is a real pattern, not an adversarial
high-frequency one. Each transform is a frozen dataclass called on images (N, H, W, C) in [0, 1]
with its random draws (N, n_draws), uniform in [0, 1). The draws are made in NumPy from each
image's own seed, so an image follows the same path alone or inside a batch.

Example:
    >>> t = Jitter(2)
    >>> t(images_nhwc, tf.constant(rng.random((len(images_nhwc), t.n_draws)), tf.float32)).shape
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import tensorflow as tf


def warp(images_nhwc: Any, matrices_n33: Any, output_hw: tuple[int, int] | None = None) -> Any:
    """Resample each image with its own 3x3 matrix mapping output pixels (x, y, 1) to input pixels.

    Bilinear; outside the image the image is mirrored. ``output_hw`` defaults to the input size.
    """
    flat = tf.reshape(matrices_n33, [-1, 9])
    transforms = flat[:, :8] / flat[:, 8:9]
    size = tf.shape(images_nhwc)[1:3] if output_hw is None else tf.constant(output_hw, tf.int32)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images_nhwc,
        transforms=transforms,
        output_shape=size,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _affine(linear_n22: Any, offset_n2: Any) -> Any:
    """(N, 3, 3) from a linear part (N, 2, 2) and an offset (N, 2), in (x, y) order."""
    n = tf.shape(linear_n22)[0]
    top = tf.concat([linear_n22, offset_n2[:, :, None]], axis=2)
    return tf.concat([top, tf.tile(tf.constant([[[0.0, 0.0, 1.0]]]), [n, 1, 1])], axis=1)


def _about_centre(linear_n22: Any, h: int, w: int) -> Any:
    """(N, 3, 3) matrices applying ``linear`` about the centre of an h x w image."""
    centre = tf.constant([(w - 1) / 2.0, (h - 1) / 2.0])  # (x, y)
    return _affine(linear_n22, centre - tf.linalg.matvec(linear_n22, centre[None, :]))


class _Warp:
    """A geometric transform: its 3x3 matrix per image; consecutive ones are applied as one warp."""

    def matrix(self, draws: Any, h: int, w: int) -> Any:
        raise NotImplementedError

    def __call__(self, images_nhwc: Any, draws: Any) -> Any:
        h, w = int(images_nhwc.shape[1]), int(images_nhwc.shape[2])
        return warp(images_nhwc, self.matrix(draws, h, w))


@dataclass(frozen=True)
class Pad:
    """Pad every side by ``pixels`` ('reflect', or 'constant' grey 0.5); the engine crops back at the end.

    Geometric transforms already mirror the image where they look outside it, so 'reflect' only
    gives them more room; 'constant' shows the network a frame, as Lucid does.
    """

    pixels: int
    mode: str = "constant"
    name = "pad"
    n_draws = 0

    def __call__(self, images_nhwc: Any, draws: Any) -> Any:
        p = self.pixels
        if self.mode == "constant":
            return tf.pad(images_nhwc, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=0.5)
        return tf.pad(images_nhwc, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")


@dataclass(frozen=True)
class Jitter(_Warp):
    """Shift by a random multiple of ``step`` pixels in [-pixels, pixels] on each axis.

    A ``step`` equal to the layer's stride in input pixels keeps a pattern finer than the stride
    on the same units (a shift of 1 px at a stride-4 layer moves it between units and averages it out).
    """

    pixels: int
    step: int = 1
    name = "jitter"
    n_draws = 2

    def matrix(self, draws: Any, h: int, w: int) -> Any:
        k = self.pixels // max(1, self.step)
        shift = (tf.floor(draws * (2 * k + 1)) - k) * float(max(1, self.step))  # (N, 2): dx, dy
        return _affine(tf.tile(tf.eye(2)[None], [tf.shape(draws)[0], 1, 1]), shift)


@dataclass(frozen=True)
class Scale(_Warp):
    """Zoom about the centre by a random factor in [low, high]."""

    low: float = 0.95
    high: float = 1.05
    name = "scale"
    n_draws = 1

    def matrix(self, draws: Any, h: int, w: int) -> Any:
        inv = 1.0 / (self.low + (self.high - self.low) * draws[:, 0])
        zero = tf.zeros_like(inv)
        return _about_centre(tf.reshape(tf.stack([inv, zero, zero, inv], axis=1), [-1, 2, 2]), h, w)


@dataclass(frozen=True)
class Rotate(_Warp):
    """Rotate about the centre by a random angle in [-degrees, degrees]."""

    degrees: float = 5.0
    name = "rotate"
    n_draws = 1

    def matrix(self, draws: Any, h: int, w: int) -> Any:
        a = (2.0 * draws[:, 0] - 1.0) * (self.degrees * math.pi / 180.0)
        c, s = tf.cos(a), tf.sin(a)
        return _about_centre(tf.reshape(tf.stack([c, -s, s, c], axis=1), [-1, 2, 2]), h, w)


Transform = Pad | Jitter | Scale | Rotate


def apply_transforms(transforms: tuple[Transform, ...], images_nhwc: Any, draws: Any, h: int, w: int) -> Any:
    """Apply ``transforms`` in order with their draws (N, total draws) and return the central h x w.

    Consecutive geometric transforms are composed into one matrix and resampled once, together
    with the final crop: one interpolation per step instead of one per transform.
    """
    x, k, pending = images_nhwc, 0, None
    for t in transforms:
        d = draws[:, k : k + t.n_draws]
        k += t.n_draws
        if isinstance(t, _Warp):
            m = t.matrix(d, int(x.shape[1]), int(x.shape[2]))
            pending = m if pending is None else tf.matmul(pending, m)
            continue
        if pending is not None:
            x, pending = warp(x, pending), None
        x = t(x, d)
    top, left = (int(x.shape[1]) - h) // 2, (int(x.shape[2]) - w) // 2
    if pending is None:
        return x[:, top : top + h, left : left + w]
    n = tf.shape(pending)[0]
    crop = _affine(tf.tile(tf.eye(2)[None], [n, 1, 1]), tf.tile(tf.constant([[float(left), float(top)]]), [n, 1]))
    return warp(x, tf.matmul(pending, crop), (h, w))
