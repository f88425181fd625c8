"""Seeded tiny models and paths shared by the tests: ``from helpers import tiny_functional, ROOT``."""

from __future__ import annotations

from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parent.parent
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
        [
            keras.Input((64, 64, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(units, activation=act, name="cls"),
        ],
        name="transfer",
    )


def app_with_network(name: str = "MobileNetV2", *, timeout: float = 60):
    """An AppTest session whose working model is an untrained keras.applications network, loaded on the Model page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.radio(key="model.source").set_value("app").run()
    at.selectbox(key="model.app").set_value(name).run()
    at.radio(key="model.app_weights").set_value("untrained").run()
    at.button(key="model.app_load").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["working_model"].name == name
    return at


def kept(at, key: str):
    """What ``pages/_runner.py`` keeps for ``key`` in an AppTest's session (``.inputs``, ``.value``), or None."""
    store = at.session_state["_runner"] if "_runner" in at.session_state else None
    return None if store is None else store.kept(key)
