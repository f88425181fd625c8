"""One rule from scores to probabilities (vizcore.models.heads) and one input check (vizcore.models.batches),
against NumPy computations on real Keras models of every head people bring."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore import attribution
from vizcore.data.datasets import ImageDataset
from vizcore.errors import InputShapeError
from vizcore.inspect import activations, evaluation
from vizcore.models import batches, features, heads, predict

# name -> (units, activation of the Dense layer, a separate softmax layer after it)
HEADS = {
    "softmax fused": (3, "softmax", False),
    "softmax separate": (3, None, True),
    "sigmoid 1 unit": (1, "sigmoid", False),
    "sigmoid 3 units": (3, "sigmoid", False),
    "linear 1 unit": (1, None, False),
    "linear 3 units": (3, None, False),
}


def head_model(kind: str) -> keras.Model:
    """6x6x2 -> Conv2D(3) 'conv' -> Flatten 'flat' -> Dense 'out' (+ Activation('softmax')), seeded."""
    units, act, separate = HEADS[kind]
    keras.utils.set_random_seed(7)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Flatten(name="flat")(keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs))
    y = keras.layers.Dense(units, activation=act, name="out")(x)
    model = keras.Model(
        inputs, keras.layers.Activation("softmax", name="probs")(y) if separate else y, name=kind.replace(" ", "_")
    )
    kernel, _ = model.get_layer("out").get_weights()
    model.get_layer("out").set_weights(
        [kernel * 3.0, np.linspace(-1.5, 1.5, units).astype(np.float32)]
    )  # spread the scores
    return model


def numpy_probabilities(model: keras.Model, kind: str, x_nhwc: np.ndarray) -> np.ndarray:
    """z = flat(x) @ W + b by NumPy from Keras' own Flatten output, then the head's rule by hand."""
    flat = keras.Model(model.inputs, model.get_layer("flat").output).predict(x_nhwc, verbose=0).astype(np.float64)
    w, b = (a.astype(np.float64) for a in model.get_layer("out").get_weights())
    z = flat @ w + b
    units, act, _ = HEADS[kind]
    if units == 1:  # a binary logit: [P(0), P(1)]
        p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).random((5, 6, 6, 2)).astype(np.float32)


@pytest.mark.parametrize("kind", list(HEADS))
def test_every_path_to_probabilities_agrees_with_numpy(kind, images):
    model = head_model(kind)
    expected = numpy_probabilities(model, kind, images)
    assert np.ptp(expected) > 0.2  # the probabilities differ: the check is not vacuous
    _, act, separate = HEADS[kind]
    if act is not None or separate:
        outputs = model.predict(images, verbose=0)  # the oracle agrees with Keras where Keras gives probabilities
        np.testing.assert_allclose(expected[:, -outputs.shape[1] :], outputs, atol=1e-5)
    fm = features.feature_model(model)
    _, scores = fm.predict(images)
    np.testing.assert_allclose(heads.probabilities(scores, fm.head), expected, atol=1e-5)
    np.testing.assert_allclose(predict.probabilities(model, images, batch_size=2), expected, atol=1e-5)
    for x, row in zip(images, expected):
        np.testing.assert_allclose(predict.image_probabilities(model, x), row, atol=1e-5)
    names = tuple(f"c{k}" for k in range(expected.shape[1]))
    ev = evaluation.evaluate(model, ImageDataset(images, expected.argmax(axis=1), names, "heads"), batch_size=2)
    np.testing.assert_allclose(ev.probabilities, expected, atol=1e-5)  # the Train and Dataset pages' numbers


def test_one_linear_unit_is_binary_for_targets_too(images):
    model = head_model("linear 1 unit")
    expected = numpy_probabilities(model, "linear 1 unit", images)
    for x, row in zip(images, expected):
        assert attribution.resolve_target(model, x) == int(row[1] > 0.5)
        plus = attribution.METHOD_INFO["Gradient × Input"].batch(model, x[None], target=1)[0]
        minus = attribution.METHOD_INFO["Gradient × Input"].batch(model, x[None], target=0)[0]
        np.testing.assert_allclose(minus, -plus, rtol=1e-6, atol=1e-7)
        assert np.abs(plus).max() > 0
    with pytest.raises(attribution.AttributionError, match="0..1"):
        attribution.saliency(model, images[0], target=2)


def test_probabilities_stay_finite_for_huge_scores():
    z = np.array([[800.0], [-800.0]])
    np.testing.assert_array_equal(heads.probabilities(z, "sigmoid"), [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(heads.probabilities(np.array([[1000.0, 0.0, -1000.0]]), "linear"), [[1.0, 0.0, 0.0]])
    assert heads.is_binary("linear", 1) and heads.is_binary("sigmoid", 1)
    assert not heads.is_binary("softmax", 1) and not heads.is_binary("sigmoid", 2)


# --------------------------------------------------------------------------- one input check


def test_one_check_for_images_and_batches():
    model = tiny_functional(channels=1)  # 12x12x1
    hw = np.random.default_rng(0).random((12, 12))
    x = batches.as_image(model, hw)
    assert x.shape == (12, 12, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0], hw.astype(np.float32))
    assert batches.as_batch(model, np.zeros((3, 12, 12, 1), np.float64)).dtype == np.float32
    for bad in (np.zeros((12, 12, 3)), np.zeros((10, 12, 1)), np.zeros((1, 12, 12, 1))):
        with pytest.raises(InputShapeError, match="one 12x12x1 image"):
            batches.as_image(model, bad)
    for bad in (np.zeros((0, 12, 12, 1)), np.zeros((12, 12, 1)), np.zeros((2, 12, 12, 3))):
        with pytest.raises(InputShapeError, match="non-empty batch of 12x12x1 images"):
            batches.as_batch(model, bad)


def test_any_size_model_and_the_same_error_everywhere():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs), name="fcn")
    assert batches.as_batch(model, np.zeros((2, 9, 17, 3))).shape == (2, 9, 17, 3)
    with pytest.raises(InputShapeError, match="HxWx3"):
        batches.as_image(model, np.zeros((9, 17, 1)))
    classifier = tiny_functional(channels=1)
    with pytest.raises(InputShapeError, match="12x12x1"):
        activations.get_activations_batch(classifier, np.zeros((2, 12, 12, 3), np.float32), ["conv_a"])
    with pytest.raises(InputShapeError, match="12x12x1"):
        activations.get_activations(classifier, np.zeros((12, 12, 3), np.float32), ["conv_a"])
    with pytest.raises(InputShapeError, match="12x12x1"):
        attribution.gradcam(classifier, np.zeros((12, 12, 3), np.float32))
    assert issubclass(InputShapeError, ValueError)  # callers that caught ValueError still do
