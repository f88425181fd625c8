"""The trained models that ship in models/: small, loadable, and as accurate as their cards say."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from helpers import ROOT

from vizcore import models
from vizcore.models import graph

spec = importlib.util.spec_from_file_location("build_models", ROOT / "models" / "build_models.py")
build_models = importlib.util.module_from_spec(spec)
sys.modules["build_models"] = build_models  # dataclasses look their module up
spec.loader.exec_module(build_models)


def test_every_recipe_shipped_with_a_card():
    assert models.list_bundled() == sorted(build_models.RECIPES)
    assert {"mnist_cnn", "lenet5", "shapes_cnn"} <= set(models.list_bundled())


@pytest.mark.parametrize("name", sorted(build_models.RECIPES))
def test_bundled_model_matches_its_card(name):
    path = models.BUNDLED_DIR / f"{name}.keras"
    assert path.stat().st_size < 2 * 1024 * 1024
    loaded = models.open_bundled(name)
    card = loaded.card
    _, test = build_models.load_split(card["dataset_id"])
    assert len(test) == card["test_images"]
    probs = loaded.model.predict(test.x_nhwc, batch_size=256, verbose=0)
    accuracy = float(np.mean(probs.argmax(axis=1) == test.y))
    assert accuracy == pytest.approx(card["test_accuracy"], abs=0.002)  # the card tells the truth
    assert accuracy > 0.9  # and the model really is trained
    assert loaded.class_names == tuple(card["class_names"]) == test.class_names
    assert graph.head_type(loaded.model) == "softmax"
