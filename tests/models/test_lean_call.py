"""``features.lean_call``: a model's eager pass that keeps each layer's output only while a later layer reads it."""

from __future__ import annotations

import weakref

import keras
import numpy as np

from vizcore.models import features, predict


class Probe(keras.layers.Layer):
    """A layer that records, when it runs eagerly, how many outputs of earlier Probes are still alive."""

    refs: list = []
    alive: list = []

    def call(self, x):
        y = x * 1.5 + 0.25
        if not isinstance(x, keras.KerasTensor):
            Probe.alive.append(sum(r() is not None for r in Probe.refs))
            Probe.refs.append(weakref.ref(y))
        return y


def _chain(n: int) -> keras.Model:
    inputs = keras.Input((6, 6, 2))
    x = inputs
    for i in range(n):
        x = Probe(name=f"probe{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


def _alive_during(run) -> list[int]:
    Probe.refs.clear()
    Probe.alive.clear()
    run()
    return list(Probe.alive)


def test_lean_call_frees_what_no_later_layer_reads_and_gives_the_same_outputs():
    model = _chain(8)
    x = np.random.default_rng(0).random((2, 6, 6, 2), dtype=np.float32)
    keras_alive = _alive_during(lambda: model(x, training=False))
    lean_alive = _alive_during(lambda: features.lean_call(model, x))
    assert keras_alive == list(range(8))  # Keras's own pass keeps every earlier output to the end
    assert max(lean_alive) <= 1  # here only the input of the running layer
    np.testing.assert_allclose(features.lean_call(model, x)[0], model(x, training=False), rtol=1e-6)


def test_lean_predict_of_a_feature_model_equals_predict_on_a_network_with_skips_and_batch_norm():
    net = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), alpha=0.35)
    fm = features.feature_model(net, ["block_3_project_BN", "block_5_add", "out_relu"])
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    acts, scores = fm.predict(x)
    lean_acts, lean_scores = fm.predict_lean(x)
    assert list(lean_acts) == list(acts)
    for path in acts:
        np.testing.assert_allclose(lean_acts[path], acts[path], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lean_scores, scores, rtol=1e-5, atol=1e-5)


def _small_cnn(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))


def test_hosted_single_passes_keep_no_compiled_function(monkeypatch):
    from vizcore import cache, profile
    from vizcore.inspect import activations

    x = np.random.default_rng(2).random((12, 12, 1), dtype=np.float32)
    monkeypatch.setattr(activations, "COMPILE_AFTER_MS", -1.0)  # every pass counts as slow
    default_model, hosted_model = _small_cnn(3), _small_cnn(3)
    want = predict.image_probabilities(default_model, x)
    activations.get_activations(default_model, x, ["conv"])
    assert cache.cached_count(default_model, "predict.scorer") == 1
    assert activations._runner(default_model, ("conv",)).compiled  # the default compiles a slow pass
    monkeypatch.setattr(profile, "_CURRENT", profile.PROFILES["hosted"])
    np.testing.assert_allclose(predict.image_probabilities(hosted_model, x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        activations.get_activations(hosted_model, x, ["conv"])["conv"],
        activations.get_activations(default_model, x, ["conv"])["conv"],
        rtol=1e-5,
        atol=1e-6,
    )
    assert cache.cached_count(hosted_model, "predict.scorer") == 0
    assert not activations._runner(hosted_model, ("conv",)).compiled
