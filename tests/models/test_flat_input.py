"""Image models with a 2-D input ``(H, W)`` that add the channel inside: loaded as greyscale ``(H, W, 1)`` models.

The fixtures were written by the real tf.keras 2 (tests/fixtures/make_2d_input_fixtures.py) with its own
predictions beside them; the Keras 3 variants are built here and compared with the model's own call.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import FIXTURES

from vizcore import models
from vizcore.errors import NotAnImageModelError
from vizcore.models import flat_input, loading

EXPECTED = np.load(FIXTURES / "tfk2_lenet_2d_expected.npz")


@pytest.mark.parametrize("name", ["tfk2_lenet_2d.h5", "tfk2_lenet_2d.keras"])
def test_a_tf_keras_lenet_on_28x28_opens_as_a_greyscale_image_model_with_its_predictions(name):
    loaded = models.open_upload((FIXTURES / name).read_bytes(), name, f"upload:{name}")
    assert (loaded.spec.height, loaded.spec.width, loaded.spec.channels) == (28, 28, 1)
    (note,) = loaded.notes
    assert "28×28 images without a channel axis" in note and "greyscale 28×28×1" in note and name in note
    names = [layer.name for layer in loaded.model.layers[1:]]  # the model's own layers, its Reshape left out
    assert names == ["conv1", "pool1", "conv2", "pool2", "flat", "fc", "probs"]
    probs = np.asarray(loaded.model(EXPECTED["x"][..., None]))  # the digits with their channel
    np.testing.assert_allclose(probs, EXPECTED["probs"], rtol=1e-5, atol=1e-6)
    assert (probs.argmax(1) == np.arange(10)).mean() >= 0.8  # a trained digit model: not a trivial agreement


def _digits() -> np.ndarray:
    return EXPECTED["x"][:4]


def test_keras3_models_that_reshape_or_expand_the_input_give_their_own_outputs():
    inputs = keras.Input((28, 28))
    x = keras.ops.expand_dims(inputs, -1)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(x)
    outputs = keras.layers.Dense(4, name="out")(keras.layers.Flatten()(x))
    expanded = keras.Model(inputs, outputs)
    inputs = keras.Input((28, 28))
    r = keras.layers.Reshape((28, 28, 1))(inputs)
    x = keras.layers.Add()([r, keras.layers.Conv2D(1, 3, padding="same")(r)])  # the reshaped input read twice
    residual = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    for model in (expanded, residual):
        image_model = flat_input.as_image_model(model)
        assert image_model.input_shape == (None, 28, 28, 1)
        np.testing.assert_allclose(image_model(_digits()[..., None]), model(_digits()), rtol=1e-6, atol=1e-6)
        assert not {type(layer).__name__ for layer in image_model.layers} & {"Reshape", "ExpandDims"}


def test_other_2d_input_models_are_still_refused_with_what_they_are():
    rnn_like = keras.Sequential([keras.Input((28, 28)), keras.layers.Conv1D(4, 3), keras.layers.Flatten()])
    mlp = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(3)])
    to_other = keras.Sequential([keras.Input((28, 28)), keras.layers.Reshape((14, 56, 1)), keras.layers.Conv2D(2, 3)])
    for model in (rnn_like, mlp, to_other):
        assert flat_input.as_image_model(model) is None
        with pytest.raises(NotAnImageModelError, match="sequences"):
            loading.check_image_model(model)
