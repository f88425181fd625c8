"""The base's side of teaching: which layer feeds the head, the images as the base takes them, one pass for features.

The feature layer is the base's last block output (``blocks.default_target_layer``: ``out_relu``
for MobileNetV2, a Teachable Machine model's nested ``.../out_relu``, ``conv5_block3_out`` for
ResNet50), average-pooled over positions, so the head sees one vector per image (1,280 numbers
for MobileNetV2). The pass runs eagerly in batches: each image goes through the base once.

Example:
    >>> path = feature_layer(loaded.model)                       # 'out_relu'
    >>> part = feature_part(trainable_copy(loaded.model), path)  # image -> (N, 1280)
    >>> pixels, notes = fit_images(loaded, dataset)              # uint8 at 224x224, centre-cropped for TM
    >>> feats = extract(part, pixels, loaded.preprocess, np.arange(len(pixels)))
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from vizcore.data import images
from vizcore.data.datasets import ImageDataset
from vizcore.errors import NotAnImageModelError, TransferError
from vizcore.models import blocks, graph

POOL = "teach_pool"  # the pooling layer added after a feature map


def feature_layer(model: keras.Model, layer: str | None = None) -> str:
    """The path of the layer whose output (pooled when it is a map) feeds the head.

    Args:
        model: the base.
        layer: a path or unique plain name to use instead of the automatic choice.

    Raises:
        TransferError: the base has no spatial features (no convolution on an image input), or the
            chosen layer's output is neither a map nor a vector.
        LayerNotFoundError: ``layer`` is not in the model.
    """
    try:
        graph.input_spec(model)
        default = blocks.default_target_layer(model)
    except NotAnImageModelError:
        raise TransferError(
            f"Model '{model.name}' has no spatial features to teach from (no convolution layer on an "
            "image input); pick a CNN such as MobileNetV2 as the base."
        ) from None
    if layer is None:
        return default
    path = graph.resolve_layer(model, layer)
    rank = len(graph.trace(model)[path].output.shape)
    if rank not in (2, 4):
        raise TransferError(f"Layer '{path}' gives {rank - 1}-D outputs; the head needs a feature map or a vector.")
    return path


def feature_part(model: keras.Model, layer: str) -> keras.Model:
    """image -> (N, D): ``layer``'s output, average-pooled over positions when it is a map.

    The sub-model shares ``model``'s layers (pass a private copy when they will be trained).
    """
    traced = graph.trace(model)
    out = traced[layer].output
    if len(out.shape) == 4:
        out = keras.layers.GlobalAveragePooling2D(name=POOL)(out)
    return keras.Model(traced.input, out, name=f"{model.name}_features")


def _counted(notes: list[str], count: int, text: str) -> None:
    if count:
        notes.append(text.format(k=count, s="s" if count != 1 else "", were="were" if count != 1 else "was"))


def fit_images(base, dataset: ImageDataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """The dataset's images as ``base`` (a ``models.LoadedModel``) takes them, before the value mapping.

    Each image is fitted to the base's input size by its ``fit`` (Teachable Machine's centre crop,
    a stretch or a pad) and channels; the value range is applied per batch (``images.to_model_range``).

    Returns:
        (uint8 (N, H, W, C), notes): one sentence per kind of change, e.g. grey images made colour.
    """
    spec = base.spec
    h, w = spec.height or dataset.image_shape[0], spec.width or dataset.image_shape[1]
    out = np.empty((len(dataset), h, w, spec.channels), np.uint8)
    grey = colour = fitted = 0
    for i in range(len(dataset)):  # as base.prepare, at a fixed size also for a base that takes any size
        prepared = images.preprocess(
            dataset.pixels(i),
            size=(h, w),
            channels=spec.channels,
            mode=base.preprocess,
            keep_aspect=base.fit == "pad",
            crop=base.fit == "crop",
        )
        out[i] = prepared.display_hwc
        grey += any(n.startswith("repeated the grayscale") for n in prepared.notes)
        colour += any(n.startswith("converted colour") for n in prepared.notes)
        fitted += any(n.startswith(("resized", "centre-cropped", "padded")) for n in prepared.notes)
    notes: list[str] = []
    _counted(
        notes,
        grey,
        "{k} grey image{s} {were} converted to colour (the grey channel repeated), as this colour base takes colour.",
    )
    _counted(notes, colour, "{k} colour image{s} {were} converted to grey, as this base takes one channel.")
    how = {"crop": "centre-cropped and resized", "pad": "padded and resized"}.get(base.fit, "resized")
    _counted(notes, fitted, f"{{k}} image{{s}} {{were}} {how} to the base's {w}x{h} input.")
    return out, tuple(notes)


class Augmenter:
    """Seeded random flips, small crops (zoom in up to 15%) and turns (up to ±15°) of uint8-valued batches.

    Example:
        >>> Augmenter(seed=0)(pixels_nhwc).shape == pixels_nhwc.shape
        True
    """

    def __init__(self, seed: int = 0) -> None:
        self.layers = (
            keras.layers.RandomFlip("horizontal", seed=seed + 21),
            keras.layers.RandomZoom((-0.15, 0.0), fill_mode="reflect", seed=seed + 22),
            keras.layers.RandomRotation(15 / 360, fill_mode="reflect", seed=seed + 23),
        )

    def apply(self, pixels_nhwc):
        """A tensor of float32 values in 0..255, the same shape (works inside a tf.data map)."""
        x = keras.ops.cast(pixels_nhwc, "float32")
        for layer in self.layers:
            x = layer(x, training=True)
        return keras.ops.clip(x, 0.0, 255.0)

    def __call__(self, pixels_nhwc) -> np.ndarray:
        """``apply`` as a NumPy array."""
        return keras.ops.convert_to_numpy(self.apply(pixels_nhwc))


def extract(
    part: keras.Model,
    pixels_nhwc: np.ndarray,
    mode: str,
    indices: np.ndarray,
    *,
    batch: int = 32,
    augment: Augmenter | None = None,
    on_batch: Callable[[int], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray | None:
    """Features (len(indices), D) of the images at ``indices``: one pass of ``part``, in batches, inference mode.

    Args:
        part: ``feature_part``'s model.
        pixels_nhwc: uint8 images at the base's size (``fit_images``).
        mode: the base's value range (``images.PREPROCESS_MODES``).
        augment: draw each image through it first (an augmented copy).
        on_batch: called with the number of images of each batch done.
        should_stop: asked before each batch; True ends the pass and returns None.
    """
    out = []
    for start in range(0, len(indices), batch):
        if should_stop is not None and should_stop():
            return None
        chunk = pixels_nhwc[indices[start : start + batch]]
        x = augment(chunk) if augment is not None else chunk
        out.append(keras.ops.convert_to_numpy(part(images.to_model_range(x, mode), training=False)))
        if on_batch is not None:
            on_batch(len(chunk))
    width = int(part.output.shape[-1])
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, width), np.float32)
