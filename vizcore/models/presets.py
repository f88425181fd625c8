"""Presets: the classic small CNNs the app builds untrained (LeNet-5, the Keras MNIST and CIFAR CNNs, Tiny VGG)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

# --------------------------------------------------------------------------- presets


def _head(x, num_classes: int):
    """Split head: a ``logits`` Dense and a separate activation, so gradients can use the scores."""
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Activation("sigmoid" if num_classes == 1 else "softmax", name="probs")(x)


def lenet5(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, classes."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 5, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(84, activation="relu", name="fc2")(x)
    return keras.Model(inputs, _head(x, num_classes), name="lenet5")


def mnist_cnn(input_shape=(28, 28, 1), num_classes: int = 10, dense_units: int = 128) -> keras.Model:
    """The Keras MNIST CNN: conv 32@3x3, conv 64@3x3, pool, dropout, dense, dropout, classes."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Dropout(0.25, name="dropout1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = keras.layers.Dropout(0.5, name="dropout2")(x)
    return keras.Model(inputs, _head(x, num_classes), name="mnist_cnn")


def cifar_cnn(input_shape=(32, 32, 3), num_classes: int = 10) -> keras.Model:
    """The Keras/TensorFlow CIFAR-10 CNN: conv 32, pool, conv 64, pool, conv 64 (3x3), dense 64."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="fc")(x)
    return keras.Model(inputs, _head(x, num_classes), name="cifar_cnn")


def tiny_vgg(input_shape=(64, 64, 3), num_classes: int = 10) -> keras.Model:
    """Tiny VGG (the CNN Explainer network): two blocks of two conv 10@3x3 + pool, dense."""
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for block in (1, 2):
        x = keras.layers.Conv2D(10, 3, activation="relu", name=f"conv{block}_1")(x)
        x = keras.layers.Conv2D(10, 3, activation="relu", name=f"conv{block}_2")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="tiny_vgg")


@dataclass(frozen=True)
class Preset:
    """A named architecture the app can build untrained."""

    label: str
    build: Callable[..., keras.Model]
    input_shape: tuple[int, int, int]
    description: str


PRESETS: dict[str, Preset] = {
    "lenet5": Preset("LeNet-5", lenet5, (28, 28, 1), "LeCun et al. 1998, for 28x28 digits; 61k parameters."),
    "mnist_cnn": Preset("MNIST CNN", mnist_cnn, (28, 28, 1), "The Keras MNIST example; 1.2M parameters."),
    "cifar_cnn": Preset(
        "CIFAR CNN", cifar_cnn, (32, 32, 3), "The Keras/TensorFlow CIFAR-10 tutorial CNN; 122k parameters."
    ),
    "tiny_vgg": Preset(
        "Tiny VGG", tiny_vgg, (64, 64, 3), "The CNN Explainer network for 64x64 colour images; 9k parameters."
    ),
}


def build_preset(name: str, *, num_classes: int = 10, input_shape: tuple[int, int, int] | None = None) -> keras.Model:
    """Build a preset, untrained. ``input_shape`` defaults to the preset's own."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset '{name}'; choose one of {sorted(PRESETS)}.")
    preset = PRESETS[name]
    return preset.build(input_shape=input_shape or preset.input_shape, num_classes=num_classes)
