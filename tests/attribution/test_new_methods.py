"""Guided Backprop, Guided Grad-CAM, EigenCAM and RISE against independent computations.

Guided Backpropagation and Guided Grad-CAM against a NumPy forward and backward pass of a
hand-weighted net that has every kind of ReLU; EigenCAM against numpy.linalg.svd of activations
read with Keras; RISE against a plain loop of ``model.predict`` over the same masks.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import ROOT, nested_mobilenet, tiny_functional, tiny_sequential
from streamlit.testing.v1 import AppTest

from vizcore.attribution import METHOD_INFO, METHODS, AttributionError, rise_masks
from vizcore.attribution.eigencam import first_component
from vizcore.attribution.guided_backprop import GuidedGate, guided
from vizcore.models import features, graph

NEW = ("Guided Backprop", "Guided Grad-CAM", "EigenCAM", "RISE")
FEW_MASKS = {"RISE": {"n_masks": 48}}  # enough to run; the values are checked on small models


def raw(label: str, model: keras.Model, image: np.ndarray, **kwargs) -> np.ndarray:
    """A method's raw map of one image, through its batch form."""
    return METHOD_INFO[label].batch(model, np.asarray(image)[None], **kwargs)[0]


def minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


# ----------------------------------------------------------------------------- Guided Backpropagation


def every_relu_model() -> keras.Model:
    """6x6x1 net with each kind of ReLU: fused in Conv2D, ReLU(max_value=6), Activation, keras.ops.relu,
    fused in Dense."""
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.ReLU(max_value=6.0, name="r6")(keras.layers.Conv2D(3, 3, padding="same", name="c2")(x))
    x = keras.layers.Activation("relu", name="act")(keras.layers.Conv2D(2, 3, padding="same", name="c3")(x))
    x = keras.ops.relu(keras.layers.Dense(5, name="d0")(keras.layers.Flatten(name="flat")(x)))
    x = keras.layers.Dense(4, activation="relu", name="d1")(x)
    outputs = keras.layers.Activation("softmax", name="probs")(keras.layers.Dense(3, name="logits")(x))
    model = keras.Model(inputs, outputs, name="every_relu")
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            rng.normal(0, s, w.shape).astype(np.float32)
            for w, s in zip(model.get_weights(), (1.0, 0.2, 1.5, 0.5, 1.0, 0.1, 0.5, 0.2, 1.0, 0.2, 1.0, 0.1))
        ]
    )
    return model


GUIDED_IMAGE = np.random.default_rng(12).random((6, 6, 1)).astype(np.float32) * 2


def conv(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'same' 3x3 cross-correlation, (H, W, C) -> (H, W, K)."""
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    return (
        np.array(
            [[np.tensordot(p[i : i + 3, j : j + 3], k, axes=3) for j in range(x.shape[1])] for i in range(x.shape[0])]
        )
        + b
    )


def conv_back(g: np.ndarray, k: np.ndarray) -> np.ndarray:
    """d/d input of ``conv`` for an output gradient (H, W, K) -> (H, W, C)."""
    h, w, _ = g.shape
    gp = np.zeros((h + 2, w + 2, k.shape[2]))
    for i in range(h):
        for j in range(w):
            gp[i : i + 3, j : j + 3] += np.tensordot(k, g[i, j], axes=([3], [0]))
    return gp[1:-1, 1:-1]


def numpy_backward(model: keras.Model, x: np.ndarray, target: int, *, guided_rule: bool) -> dict[str, np.ndarray]:
    """Forward and backward by hand; at each ReLU, guided: g * relu'(z) * (g > 0), else g * relu'(z)."""
    k1, b1, k2, b2, k3, b3, w0, c0, w1, c1, w2, c2 = [w.astype(np.float64) for w in model.get_weights()]
    z1 = conv(x.astype(np.float64), k1, b1)
    z2 = conv(np.maximum(z1, 0), k2, b2)
    z3 = conv(np.clip(z2, 0, 6), k3, b3)
    a3 = np.maximum(z3, 0)
    z4 = a3.reshape(-1) @ w0 + c0
    z5 = np.maximum(z4, 0) @ w1 + c1
    gate = (lambda g: g * (g > 0)) if guided_rule else (lambda g: g)
    g = w2[:, target]  # d logit / d relu(z5)
    g = w1 @ (gate(g) * (z5 > 0))
    g = w0 @ (gate(g) * (z4 > 0))
    g_z3 = gate(g.reshape(z3.shape)) * (z3 > 0)  # d / d output of 'c3'
    g = conv_back(g_z3, k3)
    g = conv_back(gate(g) * ((z2 > 0) & (z2 < 6)), k2)
    g = conv_back(gate(g) * (z1 > 0), k1)
    return {"input": g, "c3": g_z3, "a3": z3, "z2": z2}


@pytest.mark.parametrize("target", [0, 2])
def test_guided_backprop_and_guided_gradcam_equal_a_numpy_backward_pass(target):
    model = every_relu_model()
    x = GUIDED_IMAGE
    hand = numpy_backward(model, x, target, guided_rule=True)
    plain = numpy_backward(model, x, target, guided_rule=False)
    np.testing.assert_allclose(
        keras.Model(model.input, model.get_layer("c3").output)(x[None])[0], hand["a3"], rtol=1e-4, atol=1e-5
    )
    assert (hand["z2"] > 6).any() and (hand["z2"] < 0).any()  # ReLU6 clips at both ends: both gates matter
    expected = np.abs(hand["input"]).max(axis=-1)
    assert (expected > 0).mean() > 0.5  # positive paths to most pixels: not a vacuous all-zero map
    assert not np.allclose(expected, np.abs(plain["input"]).max(axis=-1), rtol=0.05)  # the guided rule changes the map
    np.testing.assert_allclose(
        raw("Guided Backprop", model, x, target=target), expected, rtol=1e-4, atol=1e-6 * expected.max()
    )
    np.testing.assert_allclose(
        raw("Saliency", model, x, target=target), np.abs(plain["input"]).max(axis=-1), rtol=1e-4, atol=1e-7
    )

    gradcam_c3 = np.maximum((hand["a3"] * plain["c3"].mean(axis=(0, 1))).sum(-1), 0)  # Grad-CAM on 'c3' by hand
    guided_gradcam = raw("Guided Grad-CAM", model, x, target=target, layer="c3")
    np.testing.assert_allclose(
        guided_gradcam, gradcam_c3 * expected, rtol=1e-4, atol=1e-6 * (gradcam_c3 * expected).max()
    )
    assert (gradcam_c3 * expected).max() > 0


def test_the_guided_rule_leaves_the_users_model_as_it_was():
    model = every_relu_model()
    x = np.random.default_rng(1).random((4, 6, 6, 1)).astype(np.float32)
    before_pred = model.predict(x, verbose=0)
    before_weights = [np.array(w) for w in model.get_weights()]
    before_layers = [(layer, layer.get_config(), getattr(layer, "activation", None)) for layer in model.layers]
    saliency_before = raw("Saliency", model, x[0], target=1)

    assert (
        METHODS["Guided Backprop"](model, x[0]).max() == 1.0
        and METHODS["Guided Grad-CAM"](model, x[0], layer="c3").max() == 1.0
    )

    np.testing.assert_array_equal(model.predict(x, verbose=0), before_pred)
    for w0, w1 in zip(before_weights, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert [layer for layer, _, _ in before_layers] == model.layers  # no layer added or replaced
    for layer, config, activation in before_layers:
        assert layer.get_config() == config and getattr(layer, "activation", None) is activation
    assert not any(isinstance(op, GuidedGate) for op in model.operations)
    np.testing.assert_array_equal(raw("Saliency", model, x[0], target=1), saliency_before)  # plain gradients stay plain


def test_every_relu6_of_a_nested_mobilenet_is_gated_and_the_scores_are_the_same():
    model = nested_mobilenet()
    relus = [t for t in graph.trace(model).layers if isinstance(t.layer, keras.layers.ReLU)]
    assert len(relus) > 30 and all(t.layer.max_value == 6 for t in relus)
    sub = features.feature_model(model).model
    copy = guided(sub)
    assert sum(isinstance(op, GuidedGate) for op in copy.operations) == len(relus)
    x = np.random.default_rng(3).random((2, 64, 64, 3)).astype(np.float32) * 2 - 1
    np.testing.assert_allclose(copy(x), sub(x), rtol=1e-5, atol=1e-6)  # a gate is the identity forward
    assert not any(isinstance(op, GuidedGate) for op in sub.operations)


# ----------------------------------------------------------------------------- EigenCAM


def eigen_model() -> keras.Model:
    """8x8x3 -> Conv2D(5, 3, same, relu) 'conv' -> GAP -> Dense(2): the layer keeps the input's size."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="eigen")


@pytest.mark.parametrize("center", [True, False])
def test_eigencam_is_the_first_principal_component_from_numpy_svd(center):
    model = eigen_model()
    x = np.random.default_rng(9).random((8, 8, 3)).astype(np.float32)
    acts = keras.Model(model.input, model.get_layer("conv").output)(x[None]).numpy()[0].astype(np.float64)  # (8, 8, 5)
    a = acts.reshape(64, 5) - (acts.reshape(64, 5).mean(axis=0) if center else 0.0)
    u, s, vt = np.linalg.svd(a)
    proj = a @ vt[0]
    assert np.dot(proj, proj) == pytest.approx(
        np.linalg.eigvalsh(a.T @ a)[-1], rel=1e-6
    )  # the largest variance direction
    mean_map = acts.mean(-1).reshape(-1)
    proj *= np.sign(np.corrcoef(proj, mean_map)[0, 1])
    expected = np.maximum(proj, 0).reshape(8, 8)
    assert 0 < expected.max() and (not center or (proj < 0).any())  # centred, the ReLU cuts something
    for target in (0, 1):  # no target: the same map for every class
        np.testing.assert_allclose(
            raw("EigenCAM", model, x, target=target, layer="conv", center=center), expected, rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(
        first_component(-acts, center=center).reshape(-1) @ mean_map, -(proj @ mean_map), rtol=1e-6
    )


@pytest.mark.parametrize("shape", [(3, 3, 20), (6, 5, 4)])
def test_first_component_from_either_gram_matrix_equals_numpy_svd(shape):
    acts = np.random.default_rng(2).random(shape)
    a = acts.reshape(-1, shape[2]) - acts.reshape(-1, shape[2]).mean(axis=0)
    proj = a @ np.linalg.svd(a)[2][0]
    proj *= np.sign(np.corrcoef(proj, acts.mean(-1).reshape(-1))[0, 1])
    np.testing.assert_allclose(first_component(acts), proj.reshape(shape[:2]), rtol=1e-6, atol=1e-9)


def test_eigencam_centering_changes_the_map():
    model = eigen_model()
    x = np.random.default_rng(9).random((8, 8, 3)).astype(np.float32)
    assert not np.allclose(
        METHODS["EigenCAM"](model, x, center=True), METHODS["EigenCAM"](model, x, center=False), atol=0.05
    )


# ----------------------------------------------------------------------------- RISE


def test_rise_masks_are_seeded_smooth_shifted_and_keep_p():
    masks = rise_masks((12, 12), 400, grid=4, p=0.3, seed=3)
    assert masks.shape == (400, 12, 12) and masks.dtype == np.float32 and 0.0 <= masks.min() and masks.max() <= 1.0
    assert masks.mean() == pytest.approx(0.3, abs=0.03)
    assert ((masks > 0.05) & (masks < 0.95)).mean() > 0.2  # bilinear: soft edges, not blocks
    np.testing.assert_array_equal(rise_masks((12, 12), 400, grid=4, p=0.3, seed=3, start=390, stop=400), masks[390:])
    assert not np.allclose(rise_masks((12, 12), 400, grid=4, p=0.3, seed=4), masks)
    with pytest.raises(AttributionError, match="0 < p < 1"):
        rise_masks((12, 12), 10, p=1.0)


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_rise_equals_a_numpy_loop_over_the_same_masks(head):
    model = tiny_functional(channels=3, classes=3) if head == "softmax" else sigmoid_model()
    x = np.random.default_rng(5).random(model.input_shape[1:]).astype(np.float32)
    n, target = 40, 0
    masks = rise_masks(x.shape[:2], n, grid=4, p=0.5, seed=3)
    expected = np.zeros(x.shape[:2])
    for m in masks:  # one image at a time, through Keras' own predict
        p = model.predict((x * m[..., None])[None], verbose=0)[0]
        prob = p[target] if head == "softmax" else 1.0 - p[0]  # binary: class 0 is 1 - sigmoid
        expected += prob * m
    expected /= n * 0.5
    got = raw("RISE", model, x, target=target, n_masks=n, grid=4, seed=3, batch_size=7)  # chunks of 7: 6 batches
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(expected) > 0
    assert str(METHOD_INFO["RISE"].cost_of(model, x.shape[:2], n_masks=n)) == "41 forward passes"


def sigmoid_model() -> keras.Model:
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )


# ----------------------------------------------------------------------------- the models people bring


def test_costs_in_the_registry():
    model = tiny_functional()
    cost = {label: str(METHOD_INFO[label].cost_of(model, (12, 12))) for label in NEW}
    assert cost == {
        "Guided Backprop": "1 gradient",
        "Guided Grad-CAM": "2 gradients",
        "EigenCAM": "1 forward pass",
        "RISE": "1,001 forward passes",
    }


@pytest.mark.parametrize("label", NEW)
def test_new_methods_on_a_nested_mobilenet_and_a_grayscale_sequential(label):
    fn, opts = METHODS[label], FEW_MASKS.get(label, {})
    model = nested_mobilenet()
    x = np.random.default_rng(3).random((64, 64, 3)).astype(np.float32) * 2 - 1
    heat = fn(model, x, **opts)
    assert (
        heat.shape == (64, 64)
        and heat.dtype == np.float32
        and np.isfinite(heat).all()
        and heat.min() >= 0
        and heat.max() == 1.0
    )
    if METHOD_INFO[label].uses_layer:
        np.testing.assert_array_equal(fn(model, x, layer="out_relu", **opts), heat)
        assert not np.array_equal(fn(model, x, layer="block_13_expand", **opts), heat)
    gray = tiny_sequential(channels=1)
    x_hw = np.random.default_rng(6).random((12, 12)).astype(np.float32)
    np.testing.assert_array_equal(fn(gray, x_hw, **opts), fn(gray, x_hw[..., None], **opts))
    assert fn(gray, x_hw, **opts).max() == 1.0


def test_attribution_page_shows_the_new_methods_beside_gradcam():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/attribution.py").run()
    at.multiselect(key="attr.methods").set_value(["Grad-CAM", *NEW]).run()
    assert not at.exception, [e.value for e in at.exception]
    for label in NEW:  # a costly method (RISE's masks) waits for its Run button
        if any(b.key == f"attr.run.{label}.run" for b in at.button):
            at.button(key=f"attr.run.{label}.run").click().run()
    captions = [c for img in at.get("image") for c in img.captions]
    for label in ("Grad-CAM", *NEW):
        assert any(c.startswith(f"{label} ·") for c in captions), label
    assert any("Guided Grad-CAM 2 gradients" in c.value and "RISE 1,001 forward passes" in c.value for c in at.caption)
    at.number_input(key="attr.opt.RISE.n_masks").set_value(50).run()
    assert not at.exception
    assert any("RISE 51 forward passes" in c.value for c in at.caption)
