"""Rebuild the trained models that ship with ConvLens, seeded, with their model cards.

    python models/build_models.py            # all of them (about two minutes on 2 CPU cores)
    python models/build_models.py lenet5     # one

Each model is written as ``models/NAME.keras`` (atomically: temp file, then rename) with a card
``models/NAME.json`` (data, training, held-out accuracy as measured here, classes, input range),
and ``models/README.md`` is regenerated from the cards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vizcore import models  # noqa: E402
from vizcore.data import datasets  # noqa: E402

HERE = ROOT / "models"
SEED = 0
VALIDATION_FRACTION = 0.2  # of the bundled MNIST sample, stratified, held out from training
SHAPES_TRAIN = dict(n=3000, seed=1)
SHAPES_TEST = dict(n=600, seed=2)


@dataclass(frozen=True)
class Recipe:
    label: str
    build: Callable[[], keras.Model]
    dataset: str
    optimizer: Callable[[], keras.optimizers.Optimizer]
    epochs: int
    batch_size: int
    training: str  # one line for the card
    step_decay: tuple[int, float] | None = None  # every N epochs multiply the learning rate by f


RECIPES: dict[str, Recipe] = {
    "mnist_cnn": Recipe(
        label="MNIST CNN",
        build=lambda: models.presets.mnist_cnn(dense_units=32),
        dataset="mnist_sample",
        optimizer=lambda: keras.optimizers.Adam(1e-3),
        epochs=15,
        batch_size=64,
        step_decay=(5, 0.7),
        training="Adam (lr 0.001, x0.7 every 5 epochs), batch 64, 15 epochs. The preset's layers with a "
        "32-unit dense layer instead of 128 so that the file stays under 2 MB.",
    ),
    "lenet5": Recipe(
        label="LeNet-5",
        build=models.presets.lenet5,
        dataset="mnist_sample",
        optimizer=lambda: keras.optimizers.SGD(1e-3, momentum=0.9),
        epochs=40,
        batch_size=32,
        training="SGD (lr 0.001, momentum 0.9), batch 32, 40 epochs.",
    ),
    "shapes_cnn": Recipe(
        label="Shapes CNN (Tiny VGG)",
        build=lambda: models.presets.tiny_vgg(num_classes=3),
        dataset="shapes",
        optimizer=lambda: keras.optimizers.Adam(1e-3),
        epochs=15,
        batch_size=32,
        training="Adam (lr 0.001), batch 32, 15 epochs, on 3,000 generated images (seed 1).",
    ),
}


def load_split(dataset: str) -> tuple[datasets.ImageDataset, datasets.ImageDataset]:
    """(train, held-out test) exactly as the cards and the tests define them."""
    if dataset == "mnist_sample":
        full = datasets.load_mnist_sample()
        train_idx, test_idx = datasets.stratified_split(full.y, validation_fraction=VALIDATION_FRACTION, seed=SEED)
        return full.subset(train_idx), full.subset(test_idx)
    if dataset == "shapes":
        return datasets.make_shapes(**SHAPES_TRAIN), datasets.make_shapes(**SHAPES_TEST)
    raise ValueError(dataset)


def describe(dataset: str, train: datasets.ImageDataset, test: datasets.ImageDataset) -> str:
    if dataset == "mnist_sample":
        return (
            f"bundled MNIST sample (5,000 real digits): {len(train):,} for training, {len(test):,} held out "
            f"(stratified, validation_fraction={VALIDATION_FRACTION}, seed={SEED})"
        )
    return (
        f"synthetic shapes: {len(train):,} training images (seed {SHAPES_TRAIN['seed']}), "
        f"{len(test):,} held out (seed {SHAPES_TEST['seed']})"
    )


def atomic_save(model: keras.Model, path: Path, fresh: Callable[[], keras.Model]) -> None:
    """Save weights and architecture only, from an uncompiled copy (optimizer state would triple the file)."""
    clean = fresh()
    clean.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    clean.save(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build(name: str) -> dict:
    recipe = RECIPES[name]
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    train, test = load_split(recipe.dataset)
    model = recipe.build()
    model.compile(optimizer=recipe.optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = []
    if recipe.step_decay:
        every, factor = recipe.step_decay
        base = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: base * factor ** (epoch // every)))
    start = time.perf_counter()
    model.fit(
        train.x_nhwc,
        train.y,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        callbacks=callbacks,
        verbose=2,
        shuffle=True,
    )
    seconds = time.perf_counter() - start
    probs = model.predict(test.x_nhwc, batch_size=256, verbose=0)
    accuracy = float(np.mean(probs.argmax(axis=1) == test.y))
    atomic_save(model, HERE / f"{name}.keras", recipe.build)
    card = {
        "name": name,
        "label": recipe.label,
        "dataset": describe(recipe.dataset, train, test),
        "dataset_id": recipe.dataset,
        "training": recipe.training,
        "epochs": recipe.epochs,
        "train_seconds": round(seconds, 1),
        "test_accuracy": round(accuracy, 4),
        "test_images": len(test),
        "class_names": list(train.class_names),
        "preprocess": "unit",
        "input_shape": list(train.image_shape),
        "parameters": int(model.count_params()),
        "file_bytes": (HERE / f"{name}.keras").stat().st_size,
        "seed": SEED,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__},
    }
    atomic_write_text(HERE / f"{name}.json", json.dumps(card, indent=2) + "\n")
    print(f"{name}: held-out accuracy {accuracy:.4f}, {card['file_bytes'] / 1e6:.2f} MB, {seconds:.0f} s")
    return card


def write_readme() -> None:
    lines = [
        "# Bundled models",
        "",
        "Small trained models that ship with ConvLens so that the app is useful offline at first start.",
        "Rebuild them all, seeded, with `python models/build_models.py` (the cards below are regenerated).",
        "",
    ]
    for name in sorted(RECIPES):
        path = HERE / f"{name}.json"
        if not path.exists():
            continue
        card = json.loads(path.read_text())
        lines += [
            f"## {card['label']} (`{name}.keras`)",
            "",
            f"- Data: {card['dataset']}",
            f"- Training: {card['training']}",
            f"- Held-out accuracy: **{card['test_accuracy']:.2%}** "
            f"on {card['test_images']:,} images not used in training",
            f"- Input: {'x'.join(map(str, card['input_shape']))}, values in [0, 1]; "
            f"classes: {', '.join(card['class_names'])}",
            f"- {card['parameters']:,} parameters, {card['file_bytes'] / 1e6:.2f} MB; "
            f"built with Keras {card['versions']['keras']}",
            "",
        ]
    lines += [
        "The MNIST digits are the 5,000-image sample described in `vizcore/assets/README.md`",
        "(MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0).",
        "",
    ]
    atomic_write_text(HERE / "README.md", "\n".join(lines))


if __name__ == "__main__":
    for name in sys.argv[1:] or list(RECIPES):
        build(name)
    write_readme()
