"""Training input: the split, the tf.data pipelines with seeded augmentation, and compatibility checks.

Augmentation uses Keras preprocessing layers inside the tf.data pipeline, so it never becomes
part of the model that is saved or explained. Batches are gathered from shuffled indices, so a
large dataset is neither copied into a shuffle buffer nor into the graph.

Example:
    >>> train, val = split_for_training(load_mnist_sample(), TrainConfig(validation_fraction=0.2))
    >>> check_compat(models.lenet5(), train, TrainConfig(batch_size=64))
    []
"""

from __future__ import annotations

import math

import numpy as np

from vizcore.data.datasets import ImageDataset, stratified_split
from vizcore.errors import NotAnImageModelError
from vizcore.models.graph import conv_layers, head_type, input_spec, layer_table
from vizcore.training.config import TrainConfig


def split_for_training(dataset: ImageDataset, config: TrainConfig) -> tuple[ImageDataset, ImageDataset | None]:
    """(train, validation) by a stratified split with the config's fraction and seed; no validation at 0."""
    if config.validation_fraction <= 0:
        return dataset, None
    train_idx, val_idx = stratified_split(dataset.y, validation_fraction=config.validation_fraction, seed=config.seed)
    return dataset.subset(train_idx), dataset.subset(val_idx)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Batches per epoch; the last one may be smaller."""
    return max(1, math.ceil(n_images / batch_size))


def output_units(model) -> int:
    """Units of the model's output (classes; 1 for a single sigmoid unit)."""
    return int(layer_table(model)[-1].output_shape[-1] or 1)


def _size_text(height: int | None, width: int | None) -> str:
    return f"{'any' if width is None else width}x{'any' if height is None else height}"


def check_compat(
    model,
    dataset: ImageDataset,
    config: TrainConfig | None = None,
    *,
    val: ImageDataset | None = None,
    split: bool | None = None,
) -> list[str]:
    """Why ``model`` cannot be trained on ``dataset`` with ``config``, one sentence each; empty when it can.

    Args:
        model: the model to train.
        dataset: the training data, or the whole dataset when ``val`` is None and the config's
            validation fraction will split it.
        config: the settings (batch size, epochs, ...); None checks the data only.
        val: validation data, checked against the model too.
        split: whether ``dataset`` will still be split by the config's validation fraction (for
            the batch-size check); None: when ``val`` is None.

    Returns:
        Messages for: a model that is not an image CNN, a different image size or number of
        channels, a different number of classes, labels out of range, empty or single-class
        data, and settings that cannot work (see ``TrainConfig.problems``, and a batch size
        larger than the training images).
    """
    out: list[str] = []
    try:
        spec = input_spec(model)
    except NotAnImageModelError as err:
        return [str(err)]
    if not conv_layers(model):
        out.append(f"Model '{model.name}' has no convolution layer; ConvLens trains CNNs.")
    units, head = output_units(model), head_type(model)
    for label, data in (("training", dataset), ("validation", val)):
        if data is None:
            continue
        if len(data) == 0:
            out.append(f"The {label} data is empty.")
            continue
        h, w, c = data.image_shape
        if (spec.height not in (None, h)) or (spec.width not in (None, w)):
            out.append(
                f"The {label} images are {w}x{h} but model '{model.name}' takes {_size_text(spec.height, spec.width)} "
                "images: resize the data to the model's size, or pick or build a model for this size."
            )
        if spec.channels != c:
            kinds = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}
            out.append(
                f"Model '{model.name}' takes {kinds.get(spec.channels, f'{spec.channels}-channel')} images but the "
                f"{label} images are {kinds.get(c, f'{c}-channel')}: convert the data or choose another model."
            )
        if data.y.size and (int(data.y.min()) < 0 or int(data.y.max()) >= data.num_classes):
            out.append(
                f"The {label} labels must be 0..{data.num_classes - 1}, one per class name; "
                f"found {int(data.y.min())}..{int(data.y.max())}."
            )
    if val is not None and (val.num_classes != dataset.num_classes or val.image_shape != dataset.image_shape):
        out.append(
            f"The validation data ({val.num_classes} classes, "
            f"{val.image_shape[1]}x{val.image_shape[0]}x{val.image_shape[2]}) "
            f"does not match the training data ({dataset.num_classes} classes, "
            f"{dataset.image_shape[1]}x{dataset.image_shape[0]}x{dataset.image_shape[2]})."
        )
    if head == "sigmoid" and units > 1:
        out.append(
            f"Model '{model.name}' ends in {units} independent sigmoid units (multi-label); "
            "ConvLens trains one-label classifiers."
        )
    elif head == "sigmoid" and dataset.num_classes != 2:
        out.append(
            f"Model '{model.name}' has a single sigmoid output (2 classes) "
            f"but the data has {dataset.num_classes} classes."
        )
    elif head != "sigmoid" and units != dataset.num_classes:
        names = ", ".join(dataset.class_names[:5]) + (", ..." if dataset.num_classes > 5 else "")
        out.append(
            f"Model '{model.name}' has {units} outputs but the data has {dataset.num_classes} classes ({names}): "
            f"build the model with num_classes={dataset.num_classes}."
        )
    if len(dataset) and len(np.unique(dataset.y)) < 2:
        out.append("The training data holds a single class; a classifier needs at least 2.")
    if config is not None:
        out += config.problems()
        n_train = len(dataset)
        will_split = val is None if split is None else split
        if will_split and 0 < config.validation_fraction < 1 and len(dataset) > 1:
            n_train = len(
                stratified_split(dataset.y, validation_fraction=config.validation_fraction, seed=config.seed)[0]
            )
        if config.batch_size > n_train > 0:
            out.append(
                f"The batch size ({config.batch_size}) is larger than the {n_train} training images; "
                f"choose at most {n_train}."
            )
    return out


def _labels(y: np.ndarray, head: str) -> np.ndarray:
    return y.astype(np.float32)[:, None] if head == "sigmoid" else y.astype(np.int32)


def augmenter(config: TrainConfig):
    """The Keras preprocessing layers of the config's augmentation, seeded; None when it has none."""
    import keras

    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip(config.flip_mode, seed=config.seed + 11))
    if config.shift > 0:
        layers.append(
            keras.layers.RandomTranslation(
                config.shift, config.shift, fill_mode="constant", interpolation="nearest", seed=config.seed + 12
            )
        )
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="constant", seed=config.seed + 13))
    if not layers:
        return None

    def augment(x_nhwc):
        for layer in layers:
            x_nhwc = layer(x_nhwc, training=True)
        return x_nhwc

    return augment


def make_dataset(dataset: ImageDataset, config: TrainConfig, *, head: str = "softmax", training: bool = True):
    """A batched ``tf.data.Dataset`` of (images, labels); shuffled and augmented when ``training``."""
    import tensorflow as tf

    x = tf.constant(np.ascontiguousarray(dataset.x_nhwc))  # uint8 stays uint8: cast per batch below
    y = tf.constant(_labels(dataset.y, head))
    index = tf.data.Dataset.range(len(dataset))
    if training:
        index = index.shuffle(len(dataset), seed=config.seed, reshuffle_each_iteration=True)

    def batch(i):
        xb = tf.gather(x, i)
        return (tf.cast(xb, tf.float32) / 255.0 if xb.dtype == tf.uint8 else xb), tf.gather(y, i)

    ds = index.batch(config.batch_size).map(batch)
    augment = augmenter(config) if training else None
    if augment is not None:
        ds = ds.map(lambda xb, yb: (augment(xb), yb))  # sequential: the seeded layers stay reproducible
    return ds.prefetch(2)
