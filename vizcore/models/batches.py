"""The one check of an input against a model: one image (HxWxC) or a batch (NxHxWxC).

Example:
    >>> as_image(model, np.zeros((28, 28), np.float32)).shape   # grayscale HxW becomes HxWx1
    (28, 28, 1)
    >>> as_batch(model, np.zeros((4, 28, 28, 3), np.float32))
    InputShapeError: Model 'lenet' takes 28x28x1 images; got a batch of shape (4, 28, 28, 3).
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore.errors import InputShapeError
from vizcore.models import graph


def _fits(spec: graph.InputSpec, shape_hwc: tuple[int, ...]) -> bool:
    want = (spec.height, spec.width, spec.channels)
    return len(shape_hwc) == 3 and all(w is None or w == g for w, g in zip(want, shape_hwc))


def _shown(spec: graph.InputSpec) -> str:
    return f"{spec.height or 'H'}x{spec.width or 'W'}x{spec.channels}"


def as_image(model: keras.Model, image_hwc: np.ndarray) -> np.ndarray:
    """One image checked against the model's input, as float32 HxWxC (HxW is HxWx1 for a grayscale model).

    Raises:
        InputShapeError: the array is not one image of the model's size and channels.
    """
    spec = graph.input_spec(model)
    x = np.asarray(image_hwc, dtype=np.float32)
    if x.ndim == 2 and spec.channels == 1:
        x = x[..., None]
    if not _fits(spec, x.shape):
        raise InputShapeError(f"Model '{model.name}' takes one {_shown(spec)} image; got an array of shape {x.shape}.")
    return x


def as_batch(model: keras.Model, batch_nhwc: np.ndarray) -> np.ndarray:
    """A non-empty batch checked against the model's input, as float32 NHWC.

    Raises:
        InputShapeError: the array is not a non-empty (N, H, W, C) batch of the model's size and channels.
    """
    spec = graph.input_spec(model)
    batch = np.asarray(batch_nhwc, dtype=np.float32)
    if batch.ndim != 4 or len(batch) == 0 or not _fits(spec, batch.shape[1:]):
        raise InputShapeError(
            f"Model '{model.name}' takes a non-empty batch of {_shown(spec)} images (N, H, W, C); "
            f"got an array of shape {batch.shape}."
        )
    return batch
