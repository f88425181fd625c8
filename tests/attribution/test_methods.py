"""Attribution methods against independent computations: hand-weighted nets, finite differences."""

from __future__ import annotations

import gc
import importlib
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import nested_mobilenet, tiny_functional, tiny_sequential

from vizcore import models
from vizcore.attribution import (
    METHOD_INFO,
    METHODS,
    AttributionError,
    engines,
    factory,
    gradcam,
    noisy_copies,
    normalize_map,
    occlusion_cost,
    saliency,
    scorecam_cost,
    smoothgrad,
)
from vizcore.attribution.cost import Cost
from vizcore.cache import cached_count
from vizcore.errors import InputShapeError
from vizcore.models import predict

saliency_module = importlib.import_module("vizcore.attribution.saliency")  # the package's `saliency` is the function

# ----------------------------------------------------------------------------- models and oracles


def hand_cam_model() -> keras.Model:
    """5x5x1 -> Conv2D(2, 3x3, same, relu) 'conv' -> Flatten -> Dense(2) 'logits' -> softmax, weights by hand."""
    inputs = keras.Input((5, 5, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probs")(x), name="hand_cam")
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[:, :, 0, 0] = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]  # vertical edges
    kernel[:, :, 0, 1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]  # a plus-shaped blur
    dense = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    model.set_weights([kernel, np.array([0.1, -0.5], np.float32), dense, np.array([0.2, -0.1], np.float32)])
    return model


HAND_IMAGE = np.random.default_rng(11).random((5, 5, 1)).astype(np.float32)


def hand_acts_grads(model: keras.Model, image: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Activations (5,5,2) of 'conv' by explicit cross-correlation, and d logit / d activation."""
    kernel, bias, dense, _ = model.get_weights()
    padded = np.pad(image[..., 0].astype(np.float64), 1)
    acts = np.zeros((5, 5, 2))
    for i in range(5):
        for j in range(5):
            for k in range(2):
                acts[i, j, k] = max(0.0, (padded[i : i + 3, j : j + 3] * kernel[:, :, 0, k]).sum() + bias[k])
    grads = dense[:, target].astype(np.float64).reshape(5, 5, 2)  # Flatten is row-major (i, j, k)
    return acts, grads


def minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


def raw(label: str, model: keras.Model, image: np.ndarray, **kwargs) -> np.ndarray:
    """A method's raw map of one image, through its batch form."""
    return METHOD_INFO[label].batch(model, np.asarray(image)[None], **kwargs)[0]


def logits_model(model: keras.Model) -> keras.Model:
    """Keras' own sub-model to the 'logits' layer: an oracle independent of vizcore."""
    return keras.Model(model.inputs, model.get_layer("logits").output)


def weights_of(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


@pytest.fixture(scope="module")
def rgb_model() -> keras.Model:
    return tiny_functional(channels=3, classes=3)


@pytest.fixture(scope="module")
def rgb_image() -> np.ndarray:
    return np.random.default_rng(5).random((12, 12, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- exact values


@pytest.mark.parametrize("target", [0, 1])
def test_cam_methods_equal_hand_computation(target):
    model = hand_cam_model()
    acts, grads = hand_acts_grads(model, HAND_IMAGE, target)
    expected_gradcam = np.maximum((acts * grads.mean(axis=(0, 1))).sum(-1), 0)
    expected_layercam = np.maximum((np.maximum(grads, 0) * acts).sum(-1), 0)
    alpha = grads**2 / (2 * grads**2 + acts.sum(axis=(0, 1)) * grads**3)
    expected_pp = np.maximum((acts * (alpha * np.maximum(grads, 0)).sum(axis=(0, 1))).sum(-1), 0)

    np.testing.assert_allclose(
        raw("Grad-CAM", model, HAND_IMAGE, target=target, layer="conv"), expected_gradcam, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(gradcam(model, HAND_IMAGE, target=target), minmax(expected_gradcam), atol=1e-5)
    np.testing.assert_allclose(
        raw("LayerCAM", model, HAND_IMAGE, target=target), expected_layercam, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(raw("Grad-CAM++", model, HAND_IMAGE, target=target), expected_pp, rtol=1e-4, atol=1e-5)
    assert expected_gradcam.max() > 0 and np.ptp(expected_gradcam) > 0  # the check is not vacuous


def test_scorecam_equals_hand_computation_and_faster_keeps_the_most_varied_channel():
    model = hand_cam_model()
    x = HAND_IMAGE
    acts, _ = hand_acts_grads(model, x, 0)
    probs = model.predict(np.stack([x * minmax(acts[..., k])[..., None] for k in range(2)]), verbose=0)
    target = int(np.argmax(model.predict(x[None], verbose=0)))
    expected = np.maximum((acts * probs[:, target]).sum(-1), 0)
    np.testing.assert_allclose(raw("Score-CAM", model, x), expected, rtol=1e-4, atol=1e-6)
    best = int(np.argmax(acts.var(axis=(0, 1))))
    np.testing.assert_allclose(
        raw("Score-CAM", model, x, max_channels=1),
        np.maximum(acts[..., best] * probs[best, target], 0),
        rtol=1e-4,
        atol=1e-6,
    )
    assert scorecam_cost(model, "conv") == 3 and scorecam_cost(model, None, max_channels=1) == 2


def test_saliency_equals_central_finite_differences(rgb_model, rgb_image):
    oracle = logits_model(rgb_model)
    target, eps = 2, 1e-3
    eye = np.eye(rgb_image.size, dtype=np.float32).reshape(-1, *rgb_image.shape) * eps
    plus = oracle.predict(rgb_image + eye, verbose=0, batch_size=512)[:, target]
    minus = oracle.predict(rgb_image - eye, verbose=0, batch_size=512)[:, target]
    fd_grad = ((plus.astype(np.float64) - minus) / (2 * eps)).reshape(rgb_image.shape)
    expected = np.abs(fd_grad).max(axis=-1)
    got = raw("Saliency", rgb_model, rgb_image, target=target)
    np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-3 * expected.max())
    assert expected.max() > 0


def test_gradient_x_input_is_gradient_times_pixel(rgb_model, rgb_image):
    x = tf.constant(rgb_image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = logits_model(rgb_model)(x)[0, 1]
    expected = (tape.gradient(score, x)[0].numpy() * rgb_image).sum(-1)
    np.testing.assert_allclose(raw("Gradient × Input", rgb_model, rgb_image, target=1), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("baseline", ["zeros", "black"])
def test_integrated_gradients_completeness(rgb_model, rgb_image, baseline):
    oracle = logits_model(rgb_model)
    base_hwc = (
        np.zeros_like(rgb_image)
        if baseline == "zeros"
        else np.broadcast_to(rgb_image.min(axis=(0, 1)), rgb_image.shape)
    )
    fx, fb = oracle.predict(np.stack([rgb_image, base_hwc]), verbose=0)[:, 0]
    ig = raw("Integrated Gradients", rgb_model, rgb_image, target=0, baseline=baseline, steps=64)
    assert abs(fx - fb) > 0.05  # a real difference to explain
    assert ig.sum() == pytest.approx(fx - fb, rel=0.03)


def linear_model() -> tuple[keras.Model, np.ndarray]:
    """4x4x1 -> Flatten -> Dense(2) -> softmax; logit 0 = sum(w * x) with w = -5..10, logit 1 = 0."""
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    w = np.arange(16, dtype=np.float32).reshape(16, 1) - 5
    model.set_weights([np.concatenate([w, np.zeros_like(w)], axis=1), np.zeros(2, np.float32)])
    return model, w


def test_integrated_gradients_is_exact_on_a_linear_model():
    model, w = linear_model()
    x = np.random.default_rng(1).random((4, 4, 1)).astype(np.float32)
    expected = (x[..., 0] - 0.25) * w[:, 0].reshape(4, 4)  # (x - b) * constant gradient
    np.testing.assert_allclose(
        raw("Integrated Gradients", model, x, target=0, baseline=0.25, steps=3), expected, rtol=1e-5, atol=1e-6
    )


def test_occlusion_on_a_linear_model_equals_patch_sums():
    model, w = linear_model()
    x = np.random.default_rng(1).random((4, 4, 1)).astype(np.float32)
    contrib = (w[:, 0].reshape(4, 4) * x[..., 0]).astype(np.float64)  # score = sum of these
    expected = np.zeros((4, 4))
    for r in (0, 2):
        for c in (0, 2):
            expected[r : r + 2, c : c + 2] = contrib[r : r + 2, c : c + 2].sum()  # fill 0 removes the patch
    np.testing.assert_allclose(raw("Occlusion", model, x, target=0, patch=2, stride=2), expected, rtol=1e-5, atol=1e-5)
    assert occlusion_cost(4, 4, patch=2, stride=2) == 5 and occlusion_cost(12, 12, patch=4, stride=3) == 17


def linear_strip(h: int, w: int) -> tuple[keras.Model, np.ndarray]:
    """h x w x 1 -> Dense(2) -> softmax; logit 0 = sum(weights * x), weights (h, w) seeded, logit 1 = 0."""
    inputs = keras.Input((h, w, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    weights = np.random.default_rng(7).uniform(0.5, 2.0, (h, w)).astype(np.float32)
    model.set_weights([np.stack([weights.ravel(), np.zeros(h * w, np.float32)], axis=1), np.zeros(2, np.float32)])
    return model, weights


def occlusion_by_hand(contrib_hw: np.ndarray, rows, cols, patch: int) -> np.ndarray:
    """Mean over the windows covering each pixel of the window's summed contribution (a linear score's drop)."""
    total, count = np.zeros(contrib_hw.shape), np.zeros(contrib_hw.shape)
    for r in rows:
        for c in cols:
            total[r : r + patch, c : c + patch] += contrib_hw[r : r + patch, c : c + patch].sum()
            count[r : r + patch, c : c + patch] += 1
    assert count.min() >= 1  # the oracle's own windows cover every pixel
    return total / count


def test_occlusion_refuses_a_stride_above_the_patch_and_covers_every_pixel():
    model, weights = linear_strip(2, 8)
    x = np.random.default_rng(3).uniform(0.2, 1.0, (2, 8, 1)).astype(np.float32)
    contrib = weights * x[..., 0]
    with pytest.raises(AttributionError, match="stride 3 is larger than its patch 2"):
        raw("Occlusion", model, x, target=0, patch=2, stride=3)
    with pytest.raises(AttributionError, match="at most 2"):
        occlusion_cost(2, 8, patch=2, stride=3)
    # patch 4 is cut to the 2-pixel height; the stride follows it to 2, so columns 2 and 5 are covered too
    got = raw("Occlusion", model, x, target=0, patch=4, stride=3)
    np.testing.assert_allclose(got, occlusion_by_hand(contrib, [0], [0, 2, 4, 6], 2), rtol=1e-5, atol=1e-5)
    assert np.all(got > 0) and occlusion_cost(2, 8, patch=4, stride=3) == 5
    # no patch given: at least the stride (3, cut to 2 rows), windows end at the far edge
    np.testing.assert_allclose(
        raw("Occlusion", model, x, target=0, stride=3),
        occlusion_by_hand(contrib, [0], [0, 2, 4, 6], 2),
        rtol=1e-5,
        atol=1e-5,
    )


def test_occlusion_fills_with_zero_the_image_mean_or_a_value():
    model, weights = linear_strip(4, 4)
    x = np.random.default_rng(4).uniform(0.0, 1.0, (4, 4, 1)).astype(np.float32)
    for fill, value in (("zero", 0.0), ("mean", float(x.mean())), (0.25, 0.25)):
        expected = occlusion_by_hand(weights * (x[..., 0] - value), [0, 2], [0, 2], 2)  # the drop is sum w * (x - fill)
        np.testing.assert_allclose(
            raw("Occlusion", model, x, target=0, patch=2, stride=2, fill=fill), expected, rtol=1e-4, atol=1e-5
        )
    assert METHOD_INFO["Occlusion"].defaults["fill"] == "zero"
    with pytest.raises(AttributionError, match="fill must be"):
        raw("Occlusion", model, x, target=0, fill="median")


# ----------------------------------------------------------------------------- every method, one interface


@pytest.mark.parametrize("label", list(METHODS))
def test_every_method_keeps_the_contract(label, rgb_model, rgb_image):
    before = weights_of(rgb_model)
    fn = METHODS[label]
    heatmap = fn(rgb_model, rgb_image)
    assert heatmap.shape == (12, 12) and heatmap.dtype == np.float32
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0.0 and heatmap.max() == 1.0  # normalized, not flat
    for constant in (np.zeros_like(rgb_image), np.full_like(rgb_image, 0.5)):
        flat = fn(rgb_model, constant, target=1)
        assert flat.shape == (12, 12) and flat.dtype == np.float32
        assert np.isfinite(flat).all() and 0.0 <= flat.min() and flat.max() <= 1.0
    for w0, w1 in zip(before, weights_of(rgb_model)):
        np.testing.assert_array_equal(w0, w1)
    info = METHOD_INFO[label]
    assert info.fn is fn and isinstance(info.uses_layer, bool)
    if info.uses_layer:
        np.testing.assert_array_equal(fn(rgb_model, rgb_image, layer="conv_b"), heatmap)  # None -> last conv
    for opt in info.options:  # every advertised option is accepted with its default
        np.testing.assert_array_equal(fn(rgb_model, rgb_image, **{opt.name: opt.default}), heatmap)


def test_normalization_never_makes_nan():
    assert not normalize_map(np.zeros((3, 3))).any()
    assert not normalize_map(np.full((3, 3), 7.0)).any()
    np.testing.assert_allclose(normalize_map(np.array([[np.nan, 2.0], [1.0, np.inf]])), [[0.0, 1.0], [0.5, 0.0]])


def test_target_changes_the_map(rgb_model, rgb_image):
    maps = [raw("Grad-CAM", rgb_model, rgb_image, target=t) for t in range(3)]
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[1], maps[2])
    top = int(np.argmax(rgb_model.predict(rgb_image[None], verbose=0)))
    np.testing.assert_array_equal(raw("Grad-CAM", rgb_model, rgb_image), maps[top])
    with pytest.raises(AttributionError, match="0..2"):
        gradcam(rgb_model, rgb_image, target=3)


def test_top_k_and_image_probabilities_match_the_model(rgb_model, rgb_image):
    probs = rgb_model.predict(rgb_image[None], verbose=0)[0]
    np.testing.assert_allclose(predict.image_probabilities(rgb_model, rgb_image), probs, atol=1e-6)
    pairs = predict.top_k(rgb_model, rgb_image, 2)
    assert [c for c, _ in pairs] == list(np.argsort(-probs)[:2])
    assert pairs[0][1] == pytest.approx(probs.max(), abs=1e-6)


# ----------------------------------------------------------------------------- the models people bring


def sigmoid_model(bias: float) -> keras.Model:
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    kernel, b = model.get_layer("out").get_weights()
    model.get_layer("out").set_weights([kernel, np.array([bias], np.float32)])
    return model


@pytest.mark.parametrize("bias", [5.0, -5.0])
def test_sigmoid_head_is_binary(bias):
    model = sigmoid_model(bias)
    x = np.random.default_rng(2).random((8, 8, 1)).astype(np.float32)
    p = float(model.predict(x[None], verbose=0)[0, 0])
    top = int(p > 0.5)
    assert top == (bias > 0)
    plus, minus = raw("Gradient × Input", model, x, target=1), raw("Gradient × Input", model, x, target=0)
    np.testing.assert_allclose(minus, -plus, rtol=1e-6, atol=1e-7)  # target 0 explains -logit
    features = keras.Model(model.inputs, model.layers[-2].output)  # oracle: the logit by hand from Flatten
    kernel, b = model.get_layer("out").get_weights()
    xt = tf.constant(x[None])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logit = tf.matmul(features(xt), kernel) + b
    assert float(logit[0, 0]) == pytest.approx(np.log(p / (1 - p)), abs=1e-3)
    np.testing.assert_allclose(
        plus, (tape.gradient(logit, xt)[0].numpy() * x).sum(-1), rtol=1e-4, atol=1e-7
    )  # target 1: +logit
    assert np.abs(plus).max() > 0
    np.testing.assert_array_equal(raw("Gradient × Input", model, x), plus if top == 1 else minus)
    assert not np.allclose(raw("Grad-CAM", model, x, target=0), raw("Grad-CAM", model, x, target=1))
    assert predict.top_k(model, x, 2) == [
        (top, pytest.approx(max(p, 1 - p), abs=1e-6)),
        (1 - top, pytest.approx(min(p, 1 - p), abs=1e-6)),
    ]
    with pytest.raises(AttributionError):
        saliency(model, x, target=2)


def test_nested_base_with_target_layer_inside():
    model = nested_mobilenet()  # a MobileNetV2 base inside a Sequential, sigmoid head
    x = np.random.default_rng(3).random((64, 64, 3)).astype(np.float32) * 2 - 1
    default = gradcam(model, x)
    assert default.shape == (64, 64) and np.isfinite(default).all()
    np.testing.assert_array_equal(
        gradcam(model, x, layer="out_relu"), default
    )  # the default: the base's block output (after BN, ReLU6)
    inner = raw("Grad-CAM", model, x, layer="block_13_expand", target=1)
    assert inner.shape == (64, 64) and inner.max() > 0
    with pytest.raises(AttributionError, match="spatial"):
        gradcam(model, x, layer="cls")


def test_sequential_reloaded_from_keras_file(saved_dir):
    loaded = models.loading.load_model(saved_dir / "seq.keras")
    fresh = tiny_sequential()  # same seed, same weights, never saved
    x = np.random.default_rng(4).random((12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(
        raw("Saliency", loaded, x, target=1), raw("Saliency", fresh, x, target=1), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        raw("Grad-CAM", loaded, x, target=0), raw("Grad-CAM", fresh, x, target=0, layer="conv_b"), rtol=1e-5, atol=1e-7
    )
    assert raw("Grad-CAM", loaded, x, target=0).max() > 0 or raw("Grad-CAM", loaded, x, target=1).max() > 0


def test_grayscale_input_as_hw_or_hwc():
    model = tiny_sequential(channels=1)
    x_hw = np.random.default_rng(6).random((12, 12)).astype(np.float32)
    np.testing.assert_array_equal(saliency(model, x_hw), saliency(model, x_hw[..., None]))
    assert gradcam(model, x_hw).shape == (12, 12)
    with pytest.raises(InputShapeError, match="12x12x1"):  # the one input check of vizcore.models.batches
        saliency(model, np.zeros((12, 12, 3), np.float32))


# ----------------------------------------------------------------------------- SmoothGrad


def test_smoothgrad_is_one_batch_and_matches_an_independent_average(rgb_model, rgb_image, monkeypatch):
    smooth = smoothgrad(saliency, samples=16, noise=0.2)
    assert callable(smooth) and smooth.__name__ == "smoothgrad_saliency"
    calls = []
    real = saliency_module.input_gradients
    monkeypatch.setattr(
        saliency_module, "input_gradients", lambda m, b, t, **k: calls.append(len(b)) or real(m, b, t, **k)
    )
    heatmap = smooth(rgb_model, rgb_image, target=0, seed=3)
    assert calls == [16]  # one batch of 16 noisy copies, not 16 gradient calls
    np.testing.assert_array_equal(smooth(rgb_model, rgb_image, target=0, seed=3), heatmap)  # same seed, same map
    assert not np.allclose(smooth(rgb_model, rgb_image, target=0, seed=4), heatmap)

    noisy = noisy_copies(rgb_image, 16, 0.2, 3)
    assert noisy.std(axis=0).mean() == pytest.approx(0.2 * np.ptp(rgb_image), rel=0.1)
    x = tf.constant(noisy)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(logits_model(rgb_model)(x)[:, 0])
    expected = minmax(np.abs(tape.gradient(score, x).numpy()).max(-1).mean(0))
    np.testing.assert_allclose(heatmap, expected, atol=1e-4)


def test_smoothgrad_wraps_any_method_through_its_batch_form(rgb_model, rgb_image):
    smooth = smoothgrad(METHODS["Occlusion"], samples=3, noise=0.1)
    heatmap = smooth(rgb_model, rgb_image, patch=4, stride=4)
    top = int(np.argmax(rgb_model.predict(rgb_image[None], verbose=0)))  # the clean image's class, for every copy
    drops = [raw("Occlusion", rgb_model, c, target=top, patch=4, stride=4) for c in noisy_copies(rgb_image, 3, 0.1, 0)]
    np.testing.assert_allclose(
        heatmap, minmax(np.maximum(np.stack(drops), 0).mean(0)), atol=1e-5
    )  # shown, averaged, normalized
    assert heatmap.max() == 1.0
    assert (
        str(smooth.info.cost_of(rgb_model, (12, 12), patch=4, stride=4)) == "30 forward passes"
    )  # 3 x (9 windows + 1)


# ----------------------------------------------------------------------------- defining a method


def test_the_registry_says_what_a_run_costs(rgb_model):
    cost = {label: info.cost_of(rgb_model, (12, 12), layer="conv_b") for label, info in METHOD_INFO.items()}
    assert str(cost["Score-CAM"]) == "7 forward passes"  # 6 channels of conv_b + the first pass
    assert str(cost["Integrated Gradients"]) == "32 gradients" and str(cost["SmoothGrad (Saliency)"]) == "16 gradients"
    assert str(cost["Occlusion"]) == f"{occlusion_cost(12, 12):,} forward passes"
    assert {str(cost[k]) for k in ("Grad-CAM", "Grad-CAM++", "LayerCAM", "Saliency", "Gradient × Input")} == {
        "1 gradient"
    }
    assert METHOD_INFO["Score-CAM"].cost_of(rgb_model, (12, 12), layer="conv_a", max_channels=2).count == 3
    assert METHOD_INFO["Integrated Gradients"].cost_of(rgb_model, (12, 12), steps=5).count == 5
    assert METHOD_INFO["Occlusion"].cost_of(rgb_model, (4, 4), patch=2, stride=2).count == 5


def channel_sum_maps(model, batch_nhwc, target, layer, *, offset: float = -0.5):
    """A toy computation: the channel sum of the image plus ``offset`` (signed)."""
    return batch_nhwc.sum(axis=-1) + offset


def test_a_method_is_one_computation_a_display_rule_and_a_cost(rgb_model, rgb_image):
    def cost(model, size_hw, layer, *, offset, **options):
        return Cost(size_hw[0] * size_hw[1], "forward pass")

    option = factory.Option("offset", "float", -0.5, "added to every pixel")
    signed_sum = rgb_image.sum(-1) - 0.5
    for display, shown in (
        ("signed", signed_sum),
        ("absolute", np.abs(signed_sum)),
        ("relu", np.maximum(signed_sum, 0)),
    ):
        info = factory.method(
            "channel_sum", channel_sum_maps, display=display, uses_layer=False, cost=cost, options=(option,)
        )
        assert info.fn.__name__ == "channel_sum" and info.fn.info is info and info.defaults == {"offset": -0.5}
        np.testing.assert_allclose(info.fn(rgb_model, rgb_image), minmax(shown), atol=1e-6)
        np.testing.assert_allclose(
            info.batch(rgb_model, np.stack([rgb_image, rgb_image * 0])),
            [signed_sum, np.full((12, 12), -0.5)],
            atol=1e-6,
        )
    assert np.ptp(signed_sum) > 0 and signed_sum.min() < 0 < signed_sum.max()  # the three rules really differ
    assert info.cost_of(rgb_model, (3, 4)).count == 12
    smooth = smoothgrad(info.fn, samples=4)
    assert smooth.info.cost_of(rgb_model, (3, 4)).count == 48 and smooth.info.defaults["samples"] == 4
    with pytest.raises(TypeError, match="offset"):  # a page option must be a keyword of the computation, same default
        factory.method(
            "channel_sum",
            channel_sum_maps,
            display="relu",
            uses_layer=False,
            cost=cost,
            options=(factory.Option("offset", "float", 0.0),),
        )
    with pytest.raises(ValueError, match="display"):
        factory.method("channel_sum", channel_sum_maps, display="square", uses_layer=False, cost=cost)
    with pytest.raises(AttributionError, match="smoothgrad wraps"):
        smoothgrad(lambda model, image, **kw: image)


# ----------------------------------------------------------------------------- compiled-function cache


def test_compiled_function_is_reused_and_dropped_with_the_model():
    model = tiny_functional()
    x = np.random.default_rng(8).random((12, 12, 1)).astype(np.float32)
    gradcam(model, x)
    eng = engines.engine(model, "cam", "conv_b")
    assert eng.fn.experimental_get_tracing_count() == 1
    for target in (0, 1, 2):
        gradcam(model, x * 0.5, target=target)
    gradcam(model, x[::-1].copy())
    assert eng.fn.experimental_get_tracing_count() == 1  # new images and targets: no retrace
    assert cached_count(model, "attribution.cam") == 1
    ref = weakref.ref(model)
    del model, eng
    gc.collect()
    assert ref() is None  # the cache held no strong reference to the model
