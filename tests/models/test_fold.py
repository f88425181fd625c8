"""BatchNormalization folded into the convolution before it: the same function, from the live weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from vizcore.models import features
from vizcore.models.fold import FoldedConv, fold_batchnorm


def _bn_net() -> keras.Model:
    """Conv -> BN -> ReLU, depthwise (multiplier 2) -> BN, a conv with a fused ReLU -> BN (not foldable), a head."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((10, 10, 3))
    y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inp)
    y = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name="conv_bn")(y))
    y = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="dw")(y)
    y = keras.layers.BatchNormalization(center=False, name="dw_bn")(y)
    y = keras.layers.Conv2D(5, 1, activation="relu", name="relu_conv")(y)
    y = keras.layers.BatchNormalization(scale=False, name="relu_conv_bn")(y)
    out = keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.GlobalAveragePooling2D()(y))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # statistics far from the identity, so that a wrong fold shows
        if isinstance(layer, keras.layers.BatchNormalization):
            for w in layer.weights:
                shape = tuple(w.shape)
                w.assign(rng.uniform(0.5, 2.0, shape) if "variance" in w.path else rng.normal(0.0, 0.5, shape))
    return model


def _scores(net: keras.Model, x: np.ndarray) -> np.ndarray:
    outs = net(x)
    return np.asarray(outs[-1] if isinstance(outs, (list, tuple)) else outs)


def _x() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (4, 10, 10, 3)).astype(np.float32)


def test_folding_gives_the_models_own_scores_and_leaves_the_model_as_it_was():
    model = _bn_net()
    before = [w.copy() for w in model.get_weights()]
    sub = features.feature_model(model).model
    folded = fold_batchnorm(sub)
    assert sorted(layer.name for layer in folded.layers if isinstance(layer, FoldedConv)) == [
        "conv_folded",
        "dw_folded",
    ]
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization) and layer.name != "relu_conv_bn" for layer in folded.layers
    )  # relu_conv has a ReLU before its BN: kept as it is
    expected = np.log(model.predict(_x(), verbose=0))  # Keras's own pass; log-softmax = scores up to a constant
    got = _scores(folded, _x())
    np.testing.assert_allclose(got - got.mean(1, keepdims=True), expected - expected.mean(1, keepdims=True), atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert not any(isinstance(layer, FoldedConv) for layer in model.layers)


def test_the_fold_reads_the_weights_at_every_call():
    model = _bn_net()
    folded = fold_batchnorm(features.feature_model(model).model)
    first = _scores(folded, _x())
    bn = model.get_layer("conv_bn")
    bn.set_weights([w * 1.5 for w in bn.get_weights()])  # as a training would
    again = _scores(folded, _x())
    assert not np.allclose(first, again, atol=1e-3)
    reference = _scores(features.feature_model(model).model, _x())
    np.testing.assert_allclose(again, reference, atol=1e-5)


def test_a_returned_convolution_keeps_its_batchnorm_so_its_gradient_reaches_the_scores():
    model = _bn_net()
    sub = features.feature_model(model, ["conv"]).model
    folded = fold_batchnorm(sub)
    assert "conv_folded" not in [layer.name for layer in folded.layers] and "dw_folded" in [
        layer.name for layer in folded.layers
    ]
    x = tf.constant(_x())
    grads = []
    for net in (sub, folded):
        with tf.GradientTape() as tape:
            acts, scores = net(x)
            score = tf.reduce_sum(scores[:, 0])
        grads.append(tape.gradient(score, acts))
    assert grads[1] is not None
    np.testing.assert_allclose(np.asarray(grads[1]), np.asarray(grads[0]), atol=1e-5)


def test_a_model_without_batchnorm_or_that_cannot_be_copied_comes_back_as_it_is():
    plain = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    assert fold_batchnorm(plain) is plain

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization()

        def call(self, x):
            return self.bn(self.conv(x))

    net = Subclassed()
    net(np.zeros((1, 6, 6, 1), np.float32))
    assert fold_batchnorm(net) is net


@pytest.mark.parametrize("kind", ["forward", "input_grad"])
def test_attribution_engines_run_the_folded_copy(kind):
    from vizcore.attribution.engines import engine

    model = _bn_net()
    fn = engine(model, kind).fn
    assert sum(isinstance(layer, FoldedConv) for layer in fn.python_function.args[0].layers) == 2
