"""A small base that knows digits 0-4 only (trained once per session on the bundled MNIST sample), and 5-9 to teach."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vizcore import models
from vizcore.data import datasets

WIDTHS = (16, 32, 64, 128)  # four blocks: block1..block4, each conv + BatchNorm + ReLU (+ max pool)


def digits_cnn(classes: int = 5, *, seed: int = 0) -> keras.Model:
    """A 28x28 CNN of four named blocks, GAP, a hidden Dense and a softmax head (blocks.block_of reads 'blockN_')."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for i, width in enumerate(WIDTHS, 1):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        if i < len(WIDTHS):
            x = keras.layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    x = keras.layers.Dense(128, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="digits_0_4")


@pytest.fixture(scope="session")
def mnist():
    return datasets.load_mnist_sample()


@pytest.fixture(scope="session")
def digits_base(mnist) -> models.LoadedModel:
    """Trained on the 2,500-odd sample digits 0-4 only (4 epochs, a few seconds)."""
    low = mnist.y < 5
    model = digits_cnn()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(mnist.x_nhwc[low], mnist.y[low], epochs=4, batch_size=64, verbose=0)
    return models.LoadedModel(model, "test:digits_0_4", "digits 0-4", tuple("01234"), "unit")


def few_digits(mnist, *, per_class: int = 20, seed: int = 0) -> tuple[datasets.ImageDataset, datasets.ImageDataset]:
    """(``per_class`` images of each digit 5-9 to teach from, every other 5-9 digit held out), labels 0-4."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(mnist.y == d))[:per_class] for d in range(5, 10)])
    rest = np.setdiff1d(np.flatnonzero(mnist.y >= 5), pick)
    names = tuple("56789")
    return (
        datasets.ImageDataset(mnist.x_nhwc[pick], mnist.y[pick] - 5, names, "digits 5-9"),
        datasets.ImageDataset(mnist.x_nhwc[rest], mnist.y[rest] - 5, names, "held-out 5-9"),
    )


@pytest.fixture(scope="session")
def few(mnist):
    return few_digits(mnist)


@pytest.fixture(scope="session")
def draw(mnist):
    """``draw(seed=...)``: another 20-per-class draw of 5-9 and its held-out rest."""
    return lambda **kwargs: few_digits(mnist, **kwargs)
