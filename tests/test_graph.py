"""The sub-model and inspection functions on every kind of model people bring."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import FIXTURES, nested_mobilenet, tiny_functional, tiny_sequential

from vizcore import models
from vizcore.errors import LayerNotFoundError, NotAnImageModelError
from vizcore.models import features, graph


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _grad_of_score(fm: features.FeatureModel, batch: np.ndarray, layer: str, target: int) -> tf.Tensor | None:
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
        acts, scores = fm(x)
        score = scores[:, target]
    return tape.gradient(score, acts[layer])


def test_functional_features_equal_keras_own_submodel(rng):
    model = tiny_functional()
    batch = rng.random((3, 12, 12, 1), dtype=np.float32)
    fm = features.feature_model(model, ["conv_a", "conv_b"])
    acts, scores = fm.predict(batch)
    # independent path: Keras' own sub-model from the model's graph
    reference = keras.Model(
        model.input,
        [model.get_layer("conv_a").output, model.get_layer("conv_b").output, model.get_layer("logits").output],
    )
    ra, rb, rlogits = [np.asarray(t) for t in reference(batch)]
    np.testing.assert_allclose(acts["conv_a"], ra, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["conv_b"], rb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, rlogits, rtol=1e-5, atol=1e-6)
    assert fm.head == "softmax" and fm.scores_are_logits


def test_fused_softmax_scores_are_pre_softmax(rng):
    model = tiny_functional(fused=True)
    batch = rng.random((4, 12, 12, 1), dtype=np.float32)
    _, scores = features.feature_model(model).predict(batch)
    dense = model.get_layer("pred")
    flat = keras.Model(model.input, model.get_layer("flat").output)(batch)
    expected = np.asarray(flat) @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tf.nn.softmax(scores).numpy(), model.predict(batch, verbose=0), atol=1e-6)


def test_sequential_reloaded_from_keras_file_gives_gradients(saved_dir, rng):
    model = keras.models.load_model(saved_dir / "seq.keras", safe_mode=True)
    with pytest.raises((AttributeError, ValueError)):
        _ = model.output  # the trap this module exists for
    batch = rng.random((2, 12, 12, 1), dtype=np.float32)
    fm = features.feature_model(model, ["conv_b"])
    grad = _grad_of_score(fm, batch, "conv_b", target=1)
    assert grad is not None and grad.shape == (2, 3, 3, 6)
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    _, scores = fm.predict(batch)
    np.testing.assert_allclose(tf.nn.softmax(scores).numpy(), model.predict(batch, verbose=0), atol=1e-6)


def test_sequential_built_in_code(rng):
    model = tiny_sequential(channels=3)
    fm = features.feature_model(model, ["conv_a"])
    acts, _ = fm.predict(rng.random((1, 12, 12, 3), dtype=np.float32))
    assert acts["conv_a"].shape == (1, 10, 10, 4)


def test_nested_base_inside_sequential(rng):
    model = nested_mobilenet("sigmoid")
    target = graph.last_conv_layer(model)
    assert target.endswith("/Conv_1") and target.startswith("mobilenetv2")
    fm = features.feature_model(model, [target])
    assert fm.head == "sigmoid"
    batch = rng.random((2, 64, 64, 3), dtype=np.float32)
    grad = _grad_of_score(fm, batch, target, target=0)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
    _, scores = fm.predict(batch)
    np.testing.assert_allclose(tf.sigmoid(scores).numpy(), model.predict(batch, verbose=0), atol=1e-5)


def test_nested_base_reloaded_from_keras_file(saved_dir, rng):
    model = keras.models.load_model(saved_dir / "nested.keras", safe_mode=True)
    fm = features.feature_model(model, ["Conv_1", "block_3_expand"])  # plain names resolve inside the base
    assert all(p.startswith("mobilenetv2") for p in fm.layers)
    acts, scores = fm.predict(rng.random((1, 64, 64, 3), dtype=np.float32))
    assert acts[fm.layers[0]].shape == (1, 2, 2, 1280)
    assert scores.shape == (1, 1)


def test_nested_base_inside_functional_with_softmax(rng):
    keras.utils.set_random_seed(4)
    base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="cls")(x))
    batch = rng.random((1, 64, 64, 3), dtype=np.float32) * 255
    fm = features.feature_model(model, ["Conv1"])
    grad = _grad_of_score(fm, batch, fm.layers[0], target=2)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
    _, scores = fm.predict(batch)
    np.testing.assert_allclose(tf.nn.softmax(scores).numpy(), model.predict(batch, verbose=0), atol=1e-5)


def test_tf_keras2_h5_sequential_loads_predicts_and_explains():
    model = models.loading.load_model(FIXTURES / "tfk2_sequential.h5")
    probe = np.load(FIXTURES / "tfk2_sequential_probe.npz")
    np.testing.assert_allclose(model.predict(probe["x"], verbose=0), probe["probs"], atol=1e-5)
    fm = features.feature_model(model, ["conv_b"])
    grad = _grad_of_score(fm, probe["x"], "conv_b", target=0)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_tf_keras2_h5_sigmoid_head():
    model = models.loading.load_model(FIXTURES / "tfk2_functional_sigmoid.h5")
    assert graph.head_type(model) == "sigmoid"
    batch = np.random.default_rng(5).random((2, 12, 12, 3), dtype=np.float32)
    _, scores = features.feature_model(model, ["conv"]).predict(batch)
    np.testing.assert_allclose(tf.sigmoid(scores).numpy(), model.predict(batch, verbose=0), atol=1e-6)


def test_feature_model_never_mutates_the_model(saved_dir, rng):
    model = keras.models.load_model(saved_dir / "seq.keras", safe_mode=True)
    batch = rng.random((2, 12, 12, 1), dtype=np.float32)
    before_w, before_cfg = _weights(model), model.get_config()
    before_pred = model.predict(batch, verbose=0)
    before_act = model.get_layer("pred").activation
    features.feature_model(model, ["conv_a", "conv_b"])
    graph.layer_table(model)
    for a, b in zip(before_w, _weights(model)):
        np.testing.assert_array_equal(a, b)
    assert model.get_config() == before_cfg
    assert model.get_layer("pred").activation is before_act
    np.testing.assert_array_equal(model.predict(batch, verbose=0), before_pred)


def test_layer_table_and_conv_layers_of_nested_model():
    model = nested_mobilenet("softmax")
    rows = graph.layer_table(model)
    paths = [r.path for r in rows]
    assert paths[-2:] == ["gap", "cls"]
    inner = [r for r in rows if r.depth == 1]
    assert inner and all(r.path.startswith(model.layers[0].name + "/") for r in inner)
    assert rows[-1].output_shape == (None, 5)
    convs = graph.conv_layers(model)
    assert len(convs) == sum(r.is_conv for r in rows) and len(convs) > 30
    assert sum(r.params for r in rows if r.depth == 1) == model.layers[0].count_params()
    spec = graph.input_spec(model)
    assert (spec.height, spec.width, spec.channels) == (64, 64, 3)
    assert graph.head_type(model) == "softmax"


def test_head_types():
    assert graph.head_type(tiny_functional()) == "softmax"
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs))
    assert graph.head_type(keras.Model(inputs, keras.layers.Dense(3)(x))) == "linear"
    assert graph.head_type(keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))) == "sigmoid"


def test_layer_resolution_errors():
    model = tiny_functional()
    assert graph.resolve_layer(model, "conv_b") == "conv_b"
    with pytest.raises(LayerNotFoundError, match="conv_b"):
        graph.resolve_layer(model, "conv_bb")


def test_not_image_models_are_explained():
    inputs = keras.Input((16,))
    dense = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(NotAnImageModelError, match="flat vectors"):
        graph.input_spec(dense)
    img = keras.Input((8, 8, 1))
    no_conv = keras.Model(img, keras.layers.Dense(2)(keras.layers.Flatten()(img)))
    with pytest.raises(NotAnImageModelError, match="no convolution layer"):
        graph.last_conv_layer(no_conv)
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3)])
    with pytest.raises(NotAnImageModelError, match="never built"):
        graph.input_spec(unbuilt)


def test_architecture_diagram_lists_layers_and_edges():
    dot = models.summary.architecture_dot(tiny_functional())
    for name in ("conv_a", "pool", "conv_b", "logits", "probs"):
        assert f'"{name}"' in dot
    assert '"conv_a" -> "pool"' in dot and '"input" -> "conv_a"' in dot
    nested = models.summary.architecture_dot(nested_mobilenet())
    assert '"input" -> "mobilenetv2' in nested and "Conv_1" not in nested  # the base is one box


def test_trace_lists_layers_links_and_separate_head():
    model = tiny_functional()
    t = graph.trace(model)
    assert t.paths == ("conv_a", "pool", "conv_b", "flat", "logits", "probs")
    assert [x.inbound for x in t.layers] == [("input",), ("conv_a",), ("pool",), ("conv_b",), ("flat",), ("logits",)]
    assert t.edges[:2] == (("input", "conv_a"), ("conv_a", "pool"))
    assert (t.head.kind, t.head.layer, t.head.fused) == ("softmax", "probs", False)
    assert t["probs"].input is t["logits"].output and t["conv_a"].input is t.input
    assert t["conv_b"].layer is model.get_layer("conv_b") and "nope" not in t
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.head = None
    # the symbolic tensors make a sub-model equal to Keras' own one
    batch = np.random.default_rng(6).random((2, 12, 12, 1), dtype=np.float32)
    sub = keras.Model(t.input, t["conv_b"].output)
    reference = keras.Model(model.input, model.get_layer("conv_b").output)
    np.testing.assert_allclose(np.asarray(sub(batch)), np.asarray(reference(batch)), rtol=1e-5, atol=1e-6)


def test_trace_of_nested_model_has_paths_and_fused_head():
    model = nested_mobilenet("sigmoid")
    t = graph.trace(model)
    base = model.layers[0].name
    inner = [x for x in t.layers if x.depth == 1]
    assert inner and all(x.path.startswith(base + "/") for x in inner)
    assert t.paths.index(base) == t.paths.index(inner[-1].path) + 1  # a nested model follows its layers
    assert t[base].is_model and not inner[0].is_model
    assert inner[0].inbound == ("input",) and t[base].inbound == ("input",) and t["gap"].inbound == (base,)
    assert (t.head.kind, t.head.layer, t.head.fused) == ("sigmoid", "cls", True)
    assert graph.trace(tiny_sequential()).head.fused


def test_trace_is_computed_once_and_frees_the_model(monkeypatch):
    model = tiny_functional()
    calls = []
    real = model._run_through_graph
    monkeypatch.setattr(model, "_run_through_graph", lambda *a, **k: calls.append(1) or real(*a, **k))  # noqa: F821 (deleted below, after undo)
    first = graph.trace(model)
    graph.layer_table(model), graph.head_type(model), features.feature_model(model, ["conv_b"])
    graph.architecture_edges(model), models.summary.summarize(model), models.summary.architecture_dot(model)
    assert graph.trace(model) is first and calls == [1]
    monkeypatch.undo()
    ref = weakref.ref(model)
    layer_ref = weakref.ref(model.get_layer("conv_b"))
    del model, real
    gc.collect()
    assert ref() is None  # the cached trace holds layers, not the model
    assert first["conv_b"].layer is layer_ref()


def test_layer_table_reads_trainable_now_not_at_trace_time():
    model = tiny_functional()
    assert all(r.trainable for r in graph.layer_table(model))
    model.get_layer("conv_a").trainable = False
    rows = {r.path: r for r in graph.layer_table(model)}
    assert not rows["conv_a"].trainable and rows["conv_b"].trainable


def test_a_raw_keras_ops_node_in_a_functional_model_is_listed():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    x = keras.ops.relu(x)  # a raw op, not a layer: traced as an Operation without built/trainable
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    rows = graph.layer_table(model)
    assert [r.path for r in rows if r.params] == ["c", "out"]
    assert any(r.type.lower() == "relu" and r.params == 0 and not r.trainable for r in rows)
