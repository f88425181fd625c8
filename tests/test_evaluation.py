"""Evaluating any model on a dataset: every figure against a hand count."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore import models
from vizcore.data import images
from vizcore.data.datasets import ImageDataset
from vizcore.inspect import evaluation

# A model whose logits are the image's three pixels: what it predicts is set by hand.
LOGITS = np.array(
    [
        [3.0, 1.0, 0.0],  # true 0, predicted 0
        [0.0, 2.0, 1.0],  # true 1, predicted 1
        [0.0, 1.0, 4.0],  # true 1, predicted 2 (p ~ 0.94), 1 is second
        [2.0, 0.0, 1.0],  # true 2, predicted 0 (p ~ 0.67), 2 is second
        [0.0, 0.0, 5.0],  # true 2, predicted 2
        [1.0, 3.0, 2.0],  # true 0, predicted 1 (p ~ 0.67), 0 is third
        [0.0, 1.0, 6.0],  # true 1, predicted 2 (p ~ 0.99), 1 is second
    ]
)
TRUE = np.array([0, 1, 1, 2, 2, 0, 1])


def _pixel_logits() -> keras.Model:
    x_in = keras.Input((1, 3, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="same")(x_in)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(x_in, keras.layers.Activation("softmax", name="probs")(x))


def test_report_equals_a_hand_count():
    rep = evaluation.report(_pixel_logits(), LOGITS[:, None, :, None], TRUE, ("a", "b", "c"), ks=(1, 2, 3))
    np.testing.assert_array_equal(rep.confusion, [[1, 1, 0], [0, 1, 2], [1, 0, 1]])
    assert rep.accuracy == 3 / 7
    assert rep.top_k == {1: 3 / 7, 2: 6 / 7, 3: 1.0}  # only image 5 has its class third
    np.testing.assert_allclose(rep.precision, [1 / 2, 1 / 2, 1 / 3])  # predicted counts 2, 2, 3
    np.testing.assert_allclose(rep.recall, [1 / 2, 1 / 3, 1 / 2])
    np.testing.assert_array_equal(rep.support, [2, 3, 2])
    np.testing.assert_array_equal(rep.cell(1, 2), [6, 2])  # most confident first
    np.testing.assert_array_equal(rep.cell(0, 2), [])
    np.testing.assert_array_equal(rep.mistakes(), [6, 2, 3, 5])  # 0.99, 0.94, then the two 0.67s by index


def test_precision_is_nan_for_a_class_never_predicted():
    precision, recall, support = evaluation.precision_recall(np.array([[2, 0], [1, 0]]))
    np.testing.assert_allclose(precision, [2 / 3, np.nan])
    np.testing.assert_allclose(recall, [1.0, 0.0])
    np.testing.assert_array_equal(support, [2, 1])


def test_prepare_follows_the_models_range_size_and_fit():
    x = np.random.default_rng(0).uniform(size=(4, 20, 16, 3)).astype(np.float32)
    loaded = models.LoadedModel(
        tiny_functional(channels=1), "test:tiny", "tiny", ("a", "b", "c"), "symmetric", fit="crop"
    )
    prepared = evaluation.prepare(loaded, x)
    got = prepared.x_nhwc
    assert prepared.display_nhwc.dtype == np.uint8 and prepared.display_nhwc.shape == (4, 12, 12, 1)
    assert got.shape == (4, 12, 12, 1)
    uint8 = np.rint(x * 255).astype(np.uint8)
    for i in range(4):
        want = images.preprocess(uint8[i], size=(12, 12), channels=1, mode="symmetric", crop=True).image_hwc
        np.testing.assert_array_equal(got[i], want)
    assert got.min() < 0  # 'symmetric' is [-1, 1]


def test_labels_are_matched_by_name_then_by_position():
    y = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(evaluation.labels_for(("dog", "cat"), ("cat", "bird", "dog"), y), [2, 0, 0, 2])
    np.testing.assert_array_equal(evaluation.labels_for(("a", "b"), ("class 0", "class 1"), y), y)
    assert evaluation.labels_for(("a", "b", "c"), ("x", "y"), y) is None


def test_prepare_takes_uint8_and_float_images_alike():
    from helpers import tiny_functional

    from vizcore import models
    from vizcore.inspect import evaluation

    loaded = models.LoadedModel(tiny_functional(), "test:tiny", "tiny", ("a", "b", "c"))
    pixels = np.random.default_rng(0).integers(0, 256, (3, 12, 12, 1), dtype=np.uint8)
    from_uint8 = evaluation.prepare(loaded, pixels)
    from_float = evaluation.prepare(loaded, pixels.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(from_uint8.display_nhwc, pixels)
    np.testing.assert_allclose(from_uint8.x_nhwc, from_float.x_nhwc)
    np.testing.assert_allclose(from_uint8.x_nhwc, pixels / 255.0, atol=1e-6)


def test_evaluate_counts_exactly_on_a_hand_weighted_model():
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.Flatten()(inputs)
    logits = keras.layers.Dense(3, use_bias=False, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probs")(logits))
    model.get_layer("logits").set_weights([np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 0]], np.float32)])
    # the bright pixel says the predicted class: 0, 1 or 2
    x_nhwc = np.zeros((6, 2, 2, 1), np.float32)
    for i, pixel in enumerate([0, 0, 1, 2, 2, 1]):
        x_nhwc[i].flat[pixel] = 1.0
    y = np.array([0, 1, 1, 2, 0, 1], np.int64)
    ev = evaluation.evaluate(model, ImageDataset(x_nhwc, y, ("a", "b", "c"), "hand"))
    np.testing.assert_array_equal(ev.confusion, [[1, 0, 1], [1, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(ev.per_class_accuracy, [0.5, 2 / 3, 1.0])
    assert ev.accuracy == pytest.approx(4 / 6)
    assert sorted(ev.misclassified.tolist()) == [1, 4]
    mistake = ev.mistakes()[0]
    assert (mistake.true, mistake.predicted) in ((1, 0), (0, 2))
    assert mistake.confidence == pytest.approx(np.exp(5) / (np.exp(5) + 2))
    np.testing.assert_allclose(ev.probabilities.sum(axis=1), 1.0, rtol=1e-6)
