"""Shared fixtures: seeded tiny models, written to disk the way users save them."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# trainings started by the tests (AppTest and the browser tests' servers) write outside the repo
os.environ.setdefault("CONVLENS_RUNS_DIR", tempfile.mkdtemp(prefix="convlens_runs_"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def tiny_functional(channels: int = 1, classes: int = 3, *, fused: bool = False) -> keras.Model:
    """A seeded 12x12 Functional CNN; head split (logits + softmax) unless ``fused``."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, channels), name="img")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.Flatten(name="flat")(x)
    if fused:
        outputs = keras.layers.Dense(classes, activation="softmax", name="pred")(x)
    else:
        x = keras.layers.Dense(classes, name="logits")(x)
        outputs = keras.layers.Activation("softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny_functional")


def tiny_sequential(channels: int = 1, classes: int = 3) -> keras.Model:
    """A seeded 12x12 Sequential CNN with a fused softmax, the most common user model."""
    keras.utils.set_random_seed(2)
    return keras.Sequential(
        [
            keras.Input((12, 12, channels)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Conv2D(6, 3, activation="relu", name="conv_b"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(classes, activation="softmax", name="pred"),
        ],
        name="tiny_sequential",
    )


def nested_mobilenet(head: str = "sigmoid") -> keras.Model:
    """A small untrained MobileNetV2 base nested inside a Sequential (transfer learning shape)."""
    keras.utils.set_random_seed(3)
    base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    units, act = (1, "sigmoid") if head == "sigmoid" else (5, "softmax")
    return keras.Sequential(
        [keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(units, activation=act, name="cls")],
        name="transfer",
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def saved_dir(tmp_path_factory) -> Path:
    """Tiny models saved as .keras and .h5, loaded back by the tests."""
    d = tmp_path_factory.mktemp("saved")
    tiny_sequential().save(d / "seq.keras")
    tiny_functional().save(d / "func.keras")
    tiny_functional().save(d / "func.h5")
    nested_mobilenet().save(d / "nested.keras")
    return d
