"""Feature visualization: batched gradient ascent, its objectives, parameterizations, transforms and export.

Seeded tiny models (12x12) and few steps; the oracles are Keras's own sub-models, NumPy and hand sums.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import weakref
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import nested_mobilenet, tiny_functional, tiny_sequential
from PIL import Image

from vizcore import cache
from vizcore import featurevis as fv
from vizcore.errors import LayerNotFoundError
from vizcore.featurevis import engine, slicing
from vizcore.featurevis.params import COLOR_CORRELATION, decorrelate_colors, spectrum_scale
from vizcore.featurevis.transforms import apply_transforms
from vizcore.models import features, fields, graph

STEPS = 48


pytestmark = pytest.mark.usefixtures("uncapped_steps")  # these tests choose their own small step counts


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return tiny_functional()


@pytest.fixture(scope="module")
def batched(model) -> fv.FeatureVis:
    """All 6 filters of conv_b, one batch."""
    return fv.optimize(model, fv.Channel("conv_b"), range(6), steps=STEPS, seed=3)


def _bn_model() -> keras.Model:
    """Conv -> BatchNorm -> ReLU6, the MobileNet pattern, with non-trivial BN statistics."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, 5), rng.normal(size=5), rng.normal(size=5), rng.uniform(0.5, 2, 5)])
    return model


# ----------------------------------------------------------------------------- the optimization


def test_objective_rises_several_times(batched):
    live = batched.reached > 0.02
    assert live.sum() >= 4  # a random tiny net may have a filter that hardly any image reaches
    assert np.all(batched.reached[live] >= 2.5 * batched.start[live] + 0.05)
    assert np.median(batched.reached[live] / np.maximum(batched.start[live], 0.01)) >= 3
    curve = batched.curves()["channel"]
    assert curve[-8:].mean() > 2 * curve[:8].mean()


def test_batched_equals_one_filter_at_a_time(model, batched):
    for f in (0, 4, 5):
        alone = fv.optimize(model, fv.Channel("conv_b"), [f], steps=STEPS, seed=3)
        np.testing.assert_allclose(alone.images_nhwc[0], batched.images_nhwc[f], atol=1e-4)
        np.testing.assert_allclose(alone.reached[0], batched.reached[f], rtol=1e-3, atol=1e-5)
        for name in ("channel", "loss"):
            np.testing.assert_allclose(
                alone.loss_terms[name][:, 0], batched.loss_terms[name][:, f], rtol=1e-3, atol=1e-5
            )


def test_reached_is_the_real_activation_of_the_returned_image(model, batched):
    oracle = keras.Model(model.input, model.get_layer("conv_b").output)  # Keras's own sub-model
    acts = np.asarray(oracle(batched.images_nhwc))  # (6, 3, 3, 6); the 3x3 map has no border to drop
    own = acts[np.arange(6), :, :, np.arange(6)].mean(axis=(1, 2))
    np.testing.assert_allclose(batched.reached, own, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        fv.real_activation(model, "conv_b", batched.images_nhwc), acts.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6
    )


def test_images_finite_inside_range_and_seeded(model, batched):
    assert batched.images_nhwc.shape == (6, 12, 12, 1) and batched.images_nhwc.dtype == np.float32
    assert np.isfinite(batched.images_nhwc).all()
    assert batched.images_nhwc.min() >= 0.0 and batched.images_nhwc.max() <= 1.0
    assert batched.images_nhwc.std() > 0.05  # not a flat grey
    again = fv.visualize_filters(model, "conv_b", range(6), steps=STEPS, seed=3)
    np.testing.assert_array_equal(again, batched.images_nhwc)
    other = fv.visualize_filters(model, "conv_b", range(6), steps=STEPS, seed=4)
    assert np.abs(other - batched.images_nhwc).max() > 0.05


def test_value_ranges_of_preprocess_modes_and_explicit_range():
    model = tiny_functional(channels=3)
    caffe = fv.visualize_filters(model, "conv_a", [0, 1], steps=4, preprocess="caffe")
    low, high = np.array(fv.input_range(3, "caffe").low), np.array(fv.input_range(3, "caffe").high)
    np.testing.assert_allclose(low, [-103.939, -116.779, -123.68])  # BGR means
    assert np.all(caffe >= low - 1e-3) and np.all(caffe <= high + 1e-3) and caffe.max() > 0
    explicit = fv.optimize(model, fv.Channel("conv_a"), [0, 1], steps=4, value_range=(-2.0, 3.0))
    assert explicit.images_nhwc.min() >= -2.0 and explicit.images_nhwc.max() <= 3.0
    assert fv.to_uint8(explicit.images_nhwc, explicit.input_range).dtype == np.uint8
    with pytest.raises(ValueError, match="low < high"):
        fv.input_range(1, value_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="3 channels"):
        fv.input_range(1, "torch")


def test_env_var_caps_the_steps(model, monkeypatch):
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "3")
    calls = []
    result = fv.optimize(model, fv.Channel("conv_b"), [1, 2], steps=500, on_progress=lambda *a: calls.append(a))
    assert result.steps == 3 and result.loss_terms["loss"].shape == (3, 2)
    assert [c[:2] for c in calls] == [(3, 3)]
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "many")
    with pytest.raises(ValueError, match=fv.MAX_STEPS_ENV):
        fv.capped_steps(10)
    monkeypatch.delenv(fv.MAX_STEPS_ENV)
    assert fv.capped_steps(10) == 10


def test_progress_callback_contract(model):
    settings = dataclasses.replace(fv.default_settings(graph.input_spec(model)), progress_every=4)
    seen = []
    fv.optimize(
        model,
        fv.Channel("conv_b"),
        [0, 1, 2],
        settings=settings,
        steps=10,
        on_progress=lambda step, total, p: seen.append((step, total, None if p is None else p.shape)),
    )
    assert seen == [(4, 10, (3, 12, 12, 1)), (8, 10, (3, 12, 12, 1)), (10, 10, (3, 12, 12, 1))]
    quiet = []
    fv.optimize(
        model,
        fv.Channel("conv_b"),
        [0, 1, 2],
        settings=settings,
        steps=5,
        preview=False,
        on_progress=lambda step, total, p: quiet.append(p),
    )
    assert quiet == [None, None]


def test_class_logit_objective_raises_the_logit(model):
    result = fv.optimize(model, fv.ClassLogit(), range(3), steps=STEPS)
    logits = np.asarray(keras.Model(model.input, model.get_layer("logits").output)(result.images_nhwc))
    np.testing.assert_allclose(result.reached, logits[np.arange(3), np.arange(3)], rtol=1e-4, atol=1e-5)
    assert np.all(result.reached > result.start + 0.2)
    assert np.all(np.argmax(logits, axis=1) == np.arange(3))  # each image is its own class's best
    assert fv.visualize_classes(model, [2], steps=STEPS).shape == (1, 12, 12, 1)


def test_fused_softmax_sequential_class_visualization():
    model = tiny_sequential()
    result = fv.optimize(model, fv.ClassLogit(), [0], steps=8)
    assert result.reached[0] > result.start[0]


def _binary_model() -> keras.Model:
    """A seeded 12x12 CNN with one sigmoid unit: a binary head, classes 0 (-logit) and 1 (+logit)."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(x))


def test_binary_head_class_0_lowers_the_logit_and_class_1_raises_it():
    model = _binary_model()
    kernel, bias = model.get_layer("out").get_weights()
    features = keras.Model(model.input, model.get_layer("gap").output)

    def logit(images):  # the pre-sigmoid score, computed apart from the engine
        return (np.asarray(features(images)) @ kernel + bias)[:, 0]

    start = fv.optimize(model, fv.ClassLogit(), [0, 1], steps=0)  # the same seeds: the starting images
    result = fv.optimize(model, fv.ClassLogit(), [0, 1], steps=STEPS)
    z_start, z_end = logit(start.images_nhwc), logit(result.images_nhwc)
    assert z_end[0] < z_start[0] - 0.1 and z_end[1] > z_start[1] + 0.1
    np.testing.assert_allclose(result.reached, [-z_end[0], z_end[1]], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(start.reached, [-z_start[0], z_start[1]], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"there are 2 classes \(0..1\)"):
        fv.visualize_classes(model, [2], steps=2)


def test_regularizer_terms_named_finite_and_weighted(model):
    settings = dataclasses.replace(
        fv.default_settings(graph.input_spec(model)), regularizers=(fv.L2(0.1), fv.TotalVariation(0.2), fv.Blur(0.3))
    )
    result = fv.optimize(model, fv.Channel("conv_b"), [0, 1], settings=settings, steps=6)
    assert list(result.loss_terms) == ["channel", "l2", "tv", "blur", "loss"]
    assert all(v.shape == (6, 2) and np.isfinite(v).all() for v in result.loss_terms.values())
    t = result.loss_terms
    np.testing.assert_allclose(
        t["loss"], -t["channel"] + 0.1 * t["l2"] + 0.2 * t["tv"] + 0.3 * t["blur"], rtol=1e-4, atol=1e-6
    )


def test_regularizers_by_hand():
    step = np.zeros((1, 4, 4, 1), np.float32)
    step[:, :, 2:] = 1.0  # one vertical edge of height 1 over 4 rows
    np.testing.assert_allclose(fv.TotalVariation()(tf.constant(step)).numpy(), [4 / 12 + 0.0])
    np.testing.assert_allclose(fv.L2()(tf.constant(step)).numpy(), [0.25])
    assert fv.Blur()(tf.fill((1, 5, 5, 3), 0.3)).numpy()[0] == pytest.approx(0.0, abs=1e-12)
    assert fv.Blur()(tf.constant(step)).numpy()[0] > 0


def test_objectives_combine_by_name_and_neuron(model):
    objective = fv.Channel("conv_b", index=1) + 0.5 * fv.Neuron("conv_b", index=2) - fv.Channel("conv_a", index=0)
    assert [(n, w) for n, w, _ in objective.terms()] == [("channel", 1.0), ("neuron", 0.5), ("channel_2", -1.0)]
    result = fv.optimize(model, objective, [0, 0], steps=6)
    assert {"channel", "neuron", "channel_2", "loss"} <= set(result.loss_terms)
    acts_b, acts_a = (
        np.asarray(keras.Model(model.input, model.get_layer(n).output)(result.images_nhwc))
        for n in ("conv_b", "conv_a")
    )
    a_border = fv.objectives.auto_border(10, 10)
    want = (
        acts_b[:, :, :, 1].mean((1, 2))
        + 0.5 * acts_b[:, 1, 1, 2]
        - acts_a[:, a_border : 10 - a_border, a_border : 10 - a_border, 0].mean((1, 2))
    )
    np.testing.assert_allclose(result.reached, want, rtol=1e-4, atol=1e-5)


def test_diversity_separates_images_of_one_filter(model):
    kw = dict(steps=12, images_per_target=2, seed=1)
    plain = fv.optimize(model, fv.Channel("conv_b"), [4, 5], **kw)
    diverse = fv.optimize(model, fv.Channel("conv_b"), [4, 5], diversity=5.0, **kw)
    assert plain.targets == diverse.targets == (4, 4, 5, 5)
    assert "diversity" in diverse.loss_terms and "diversity" not in plain.loss_terms
    assert diverse.loss_terms["diversity"][-1].mean() < plain.loss_terms["channel"].shape[0]  # finite, recorded
    assert diverse.loss_terms["diversity"][-1].mean() < diverse.loss_terms["diversity"][0].mean()
    with pytest.raises(ValueError, match="images_per_target"):
        fv.optimize(model, fv.Channel("conv_b"), [4], diversity=1.0)


def test_bad_targets_and_layers(model):
    with pytest.raises(ValueError, match=r"\[6\] are out of range: there are 6 filters in 'conv_b' \(0..5\)"):
        fv.visualize_filters(model, "conv_b", [0, 6], steps=2)
    with pytest.raises(ValueError, match="there are 3 classes"):
        fv.visualize_classes(model, [3], steps=2)
    with pytest.raises(LayerNotFoundError):
        fv.visualize_filters(model, "conv_z", [0], steps=2)
    with pytest.raises(ValueError, match="No targets"):
        fv.visualize_filters(model, "conv_b", [], steps=2)


def test_dead_filter_is_flagged():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="conv")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(conv(inputs))))
    kernel, bias = conv.get_weights()
    conv.set_weights([np.zeros_like(kernel), np.array([-1.0, 0.5], np.float32)])  # filter 0 can never fire
    result = fv.optimize(model, fv.Channel("conv"), [0, 1], steps=4)
    assert result.dead.tolist() == [True, False]
    np.testing.assert_allclose(
        fv.real_activation(model, "conv", np.random.default_rng(0).random((3, 8, 8, 1))), [0.0, 0.5], atol=1e-6
    )


# ----------------------------------------------------------------------------- the fast path


@pytest.mark.parametrize("layer", ["conv_a", "conv_b"])
def test_sliced_conv_equals_the_full_layer(model, layer, rng):
    run = slicing.sliced_model(model, layer)
    assert run is not None
    x = tf.constant(rng.random((5, 12, 12, 1), dtype=np.float32))
    index = tf.constant([3, 0, 2, 1, 3])
    full = np.asarray(keras.Model(model.input, model.get_layer(layer).output)(x))
    np.testing.assert_allclose(
        run(x, index).numpy()[..., 0], full[np.arange(5), :, :, index.numpy()], rtol=1e-5, atol=1e-5
    )


def test_sliced_conv_batchnorm_relu6_and_fallback(rng):
    model = _bn_model()
    run = slicing.sliced_model(model, "relu")
    x = tf.constant(rng.random((3, 12, 12, 3), dtype=np.float32) * 4)
    full = np.asarray(keras.Model(model.input, model.get_layer("relu").output)(x))
    index = np.array([4, 1, 0])
    np.testing.assert_allclose(
        run(x, tf.constant(index)).numpy()[..., 0], full[np.arange(3), :, :, index], rtol=1e-5, atol=1e-5
    )
    assert slicing.sliced_model(tiny_functional(), "pool") is None  # not a conv: the full path
    result = fv.optimize(model, fv.Channel("relu"), [0, 1, 2, 4], steps=16)  # 3 cannot fire on [0, 1] images
    assert np.isfinite(result.images_nhwc).all() and result.reached.min() > 0


@pytest.mark.parametrize("cin, kernel, padding", [(1, 3, "valid"), (3, 5, "same"), (1, 4, "same")])
def test_image_conv_values_and_gradient_equal_keras(cin, kernel, padding, rng):
    keras.utils.set_random_seed(6)
    layer = keras.layers.Conv2D(7, kernel, padding=padding, activation="tanh")
    x = tf.constant(rng.random((2, 11, 10, cin), dtype=np.float32))
    layer.build(x.shape)
    fast = slicing.image_conv(layer)
    weights = tf.constant(rng.normal(size=layer.compute_output_shape(x.shape)[1:]).astype(np.float32))
    grads = []
    for f in (layer, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
            loss = tf.reduce_sum(y * weights)
        grads.append((y.numpy(), tape.gradient(loss, x).numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-4, atol=1e-4)
    assert slicing.image_conv(keras.layers.Conv2D(2, 3, strides=2)) is None


def test_nested_base_by_plain_layer_name(rng):
    model = nested_mobilenet()
    path = graph.resolve_layer(model, "block_1_expand_relu")
    assert slicing.sliced_model(model, path) is not None  # Conv -> BN -> ReLU6 inside the nested base
    result = fv.optimize(model, fv.Channel("block_1_expand_relu"), [0, 5], steps=4, preprocess="symmetric")
    assert (
        result.images_nhwc.shape == (2, 64, 64, 3) and result.images_nhwc.min() >= -1 and result.images_nhwc.max() <= 1
    )
    acts, _ = features.feature_model(model, [path]).predict(result.images_nhwc)
    b = fv.objectives.auto_border(32, 32)
    want = acts[path][[0, 1], b : 32 - b, b : 32 - b, [0, 5]].mean(axis=(1, 2))
    np.testing.assert_allclose(result.reached, want, rtol=1e-4, atol=1e-5)


def test_redirected_relu_moves_a_silent_unit():
    x = tf.Variable([[-1.0, -2.0]])
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(slicing.redirected_relu(x))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [[-1.0, -1.0]])  # descent raises x
    np.testing.assert_allclose(slicing.redirected_relu(tf.constant([-1.0, 7.0]), 6.0).numpy(), [0.0, 6.0])


# ----------------------------------------------------------------------------- parameterizations and transforms


def test_fourier_round_trip_and_one_over_f():
    image = tf.constant(np.random.default_rng(0).normal(size=(2, 10, 12, 3)).astype(np.float32))
    spectrum = fv.image_to_fourier(image, 1.0)
    assert spectrum.shape == (2, 3, 10, 7, 2)
    np.testing.assert_allclose(fv.fourier_to_image(spectrum, 10, 12, 1.0).numpy(), image.numpy(), atol=1e-4)
    again = fv.image_to_fourier(fv.fourier_to_image(spectrum, 10, 12, 1.0), 1.0)
    np.testing.assert_allclose(again.numpy(), spectrum.numpy(), atol=1e-4)
    scale = spectrum_scale(32, 32, 1.0)
    assert scale[0, 1] == pytest.approx(2 * scale[0, 2], rel=1e-5)  # 1/f: half the frequency, twice the amplitude
    white = np.random.default_rng(1).normal(size=(64, 1, 32, 17, 2)).astype(np.float32)
    power = np.abs(np.fft.rfft2(fv.fourier_to_image(tf.constant(white), 32, 32, 1.0).numpy()[..., 0])) ** 2
    assert power[:, 1:3, 1:3].mean() > 20 * power[:, 12:16, 12:16].mean()


def test_colour_decorrelation_and_parameterizations():
    assert decorrelate_colors(tf.ones((1, 2, 2, 1))).numpy().tolist() == tf.ones((1, 2, 2, 1)).numpy().tolist()
    rgb = decorrelate_colors(tf.constant([[[[1.0, 0.0, 0.0]]]])).numpy()[0, 0, 0]
    np.testing.assert_allclose(rgb, COLOR_CORRELATION[:, 0], rtol=1e-6)  # the first component is luminance
    assert np.allclose(rgb, rgb[0], rtol=0.1)
    for param in (fv.FourierParam(), fv.PixelParam()):
        var = param.init(np.random.default_rng(0), 9, 10, 3)
        image = param(tf.constant(var[None]), 9, 10, 3).numpy()
        assert image.shape == (1, 9, 10, 3) and 0.4 < image.min() <= image.max() < 0.6


def test_pixel_parameterization_optimizes_too(model):
    settings = dataclasses.replace(fv.default_settings(graph.input_spec(model)), param=fv.PixelParam())
    result = fv.optimize(model, fv.Channel("conv_b"), [0, 1], settings=settings, steps=STEPS, seed=3)
    assert np.all(result.reached > result.start)


def test_transforms_shift_exactly_and_compose():
    image = tf.constant(np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16, 1))
    draws = tf.constant([[0.99, 0.0], [0.5, 0.5]])  # jitter 2: (dx, dy) = (+2, -2) and (0, 0)
    shifted = fv.Jitter(2)(image, draws).numpy()
    np.testing.assert_array_equal(shifted[0, 4:12, 4:12], image.numpy()[0, 2:10, 6:14])
    np.testing.assert_array_equal(shifted[1], image.numpy()[1])
    np.testing.assert_allclose(fv.Rotate(0.0)(image, tf.constant([[0.3], [0.9]])), image, atol=1e-3)
    np.testing.assert_allclose(fv.Scale(1.0, 1.0)(image, tf.constant([[0.3], [0.9]])), image, atol=1e-3)
    both = tf.concat([draws, draws], axis=1)
    composed = apply_transforms((fv.Jitter(2), fv.Jitter(2)), image, both, 16, 16).numpy()
    sequential = fv.Jitter(2)(fv.Jitter(2)(image, draws), draws).numpy()
    np.testing.assert_array_equal(composed[:, 5:11, 5:11], sequential[:, 5:11, 5:11])
    padded = apply_transforms((fv.Pad(3), fv.Jitter(2)), image, draws, 16, 16).numpy()
    assert padded.shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(padded[1], image.numpy()[1])  # zero shift: the crop undoes the pad


def test_jitter_in_whole_strides():
    image = tf.constant(np.arange(24 * 24, dtype=np.float32).reshape(1, 24, 24, 1))
    seen = set()
    for dx in np.linspace(0.0, 0.999, 7):  # 3 choices per axis: -4, 0, +4
        shifted = fv.Jitter(5, step=4)(image, tf.constant([[dx, 0.5]], tf.float32)).numpy()[0, 8:16, 8:16, 0]
        offsets = [s for s in range(-5, 6) if np.array_equal(shifted, image.numpy()[0, 8:16, 8 - s : 16 - s, 0])]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert seen == {-4, 0, 4}


# ----------------------------------------------------------------------------- settings and export


def test_default_settings_per_input_size():
    digits = fv.default_settings(graph.InputSpec(28, 28, 1))
    cifar = fv.default_settings(graph.InputSpec(32, 32, 3))
    shapes = fv.default_settings(graph.InputSpec(64, 64, 3))
    imagenet = fv.default_settings(graph.InputSpec(224, 224, 3))
    anysize = fv.default_settings(graph.InputSpec(None, None, 3))
    assert not digits.param.decorrelate and cifar.param.decorrelate and imagenet.param.decorrelate
    assert max(t.pixels for t in digits.transforms if isinstance(t, fv.Jitter)) == 1
    assert max(t.pixels for t in imagenet.transforms if isinstance(t, fv.Jitter)) == 8
    assert shapes.param.decay_power > digits.param.decay_power
    assert digits.steps < shapes.steps < imagenet.steps and anysize == imagenet


def test_settings_json_round_trip():
    settings = dataclasses.replace(
        fv.default_settings(graph.InputSpec(224, 224, 3)), regularizers=(fv.L2(0.1), fv.Blur(0.2))
    )
    text = fv.settings_json(settings)
    data = json.loads(text)
    assert data["param"] == {"type": "FourierParam", "decay_power": 1.0, "init_std": 0.01, "decorrelate": True}
    assert [t["type"] for t in data["transforms"]] == ["Pad", "Jitter", "Scale", "Rotate", "Jitter"]
    assert fv.settings_from_json(text) == settings
    with pytest.raises(ValueError, match="Unknown settings object"):
        fv.settings_from_json(text.replace('"Blur"', '"Sharpen"'))


def test_export_zip_has_pngs_and_settings(batched):
    data = fv.export_zip(
        batched.images_nhwc,
        batched.settings,
        input_range=batched.input_range,
        names=[f"conv_b_{t:02d}" for t in batched.targets],
        metadata={"layer": "conv_b", "seed": batched.seed},
        upscale=2,
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        info = json.loads(zf.read("settings.json"))
        png = np.asarray(Image.open(io.BytesIO(zf.read("conv_b_03.png"))))
    assert names == [f"conv_b_{t:02d}.png" for t in range(6)] + ["settings.json"]
    assert info["metadata"] == {"layer": "conv_b", "seed": 3} and info["input_range"]["low"] == [0.0]
    assert fv.settings_from_json(json.dumps(info)) == batched.settings
    assert png.shape == (24, 24) and png.dtype == np.uint8
    expected = np.rint(batched.images_nhwc[3, :, :, 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(png[::2, ::2], expected)
    with pytest.raises(ValueError, match="names"):
        fv.export_zip(batched.images_nhwc, batched.settings, names=["a"])


def test_dead_is_relative_to_the_batch_so_untrained_networks_are_not_all_dead():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs))
    result = fv.optimize(model, fv.Channel("conv"), [0, 1], steps=2)
    assert result.responsive.tolist() == [True, True] and result.dead.tolist() == [False, False]
    still = dataclasses.replace(result, start=np.zeros(2, np.float32), responsive=np.zeros(2, bool))
    tiny = dataclasses.replace(still, reached=np.array([2e-7, 3e-5], np.float32))  # an untrained MobileNetV2's scale
    assert tiny.dead.tolist() == [False, False]
    assert dataclasses.replace(still, reached=np.array([0.0, 3e-5], np.float32)).dead.tolist() == [True, False]
    assert dataclasses.replace(still, reached=np.zeros(2, np.float32)).dead.tolist() == [True, True]
    moved = dataclasses.replace(still, reached=np.array([0.0, 3e-5], np.float32), responsive=np.array([True, False]))
    assert moved.dead.tolist() == [False, False]  # a gradient was seen: not claimed dead


def _silent_start_model() -> keras.Model:
    """conv filter 0 can never fire (zero kernel, bias -1); filter 1 is off on the grey start image
    (9 * 0.5 - 6 < 0) but fires on bright patches (9 * 1 - 6 > 0); filter 2 is an ordinary one."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((10, 10, 1))
    conv = keras.layers.Conv2D(3, 3, activation="relu", name="conv")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(conv(inputs))))
    kernel = np.zeros((3, 3, 1, 3), np.float32)
    kernel[..., 1] = 1.0
    kernel[..., 2] = np.random.default_rng(0).normal(size=(3, 3, 1))
    conv.set_weights([kernel, np.array([-1.0, -6.0, 0.1], np.float32)])
    return model


def test_both_routes_follow_one_gradient_rule_and_reach_the_same_activation():
    model = _silent_start_model()
    assert slicing.sliced_model(model, "conv") is not None and (1.0 * fv.Channel("conv")).sliced_layer is None
    kw = dict(steps=STEPS, seed=2)
    sliced = fv.optimize(model, fv.Channel("conv"), range(3), **kw)  # each image computes its own channel only
    plain = fv.optimize(model, 1.0 * fv.Channel("conv"), range(3), **kw)  # the whole layer, split at its ReLU
    assert sliced.start[1] == 0.0 and sliced.reached[1] > 0.1  # silent at the start, raised by the redirected ReLU
    np.testing.assert_allclose(plain.reached, sliced.reached, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(plain.images_nhwc, sliced.images_nhwc, atol=1e-3)
    for f in (0, 1, 2):  # one filter alone on each route: the same again
        alone = fv.optimize(model, 1.0 * fv.Channel("conv"), [f], **kw)
        np.testing.assert_allclose(alone.reached[0], sliced.reached[f], rtol=1e-3, atol=1e-5)
    # with the ordinary ReLU gradient throughout, the silent filter never moves, on either route
    ordinary = dataclasses.replace(fv.default_settings(graph.input_spec(model)), redirect_steps=0)
    for objective in (fv.Channel("conv"), 1.0 * fv.Channel("conv")):
        stuck = fv.optimize(model, objective, [1], settings=ordinary, **kw)
        assert stuck.reached[0] == 0.0 and not stuck.responsive[0]


def test_bn_relu6_routes_agree():
    model = _bn_model()
    kw = dict(steps=24, seed=1)
    sliced = fv.optimize(model, fv.Channel("relu"), range(5), **kw)
    plain = fv.optimize(model, 1.0 * fv.Channel("relu"), range(5), **kw)
    np.testing.assert_allclose(plain.reached, sliced.reached, rtol=1e-3, atol=1e-5)


def test_dead_is_claimed_only_when_the_optimization_cannot_raise_the_activation():
    model = _silent_start_model()
    for objective in (fv.Channel("conv"), 1.0 * fv.Channel("conv")):
        result = fv.optimize(model, objective, range(3), steps=STEPS, seed=2)
        assert result.responsive.tolist() == [False, True, True]  # filter 0's gradient is zero for every draw
        assert result.dead.tolist() == [True, False, False]
        assert result.reached[0] == 0.0 and result.reached[1] > 0.1
    # a filter that cannot fire but still has a gradient is not claimed dead (it may rise with more steps)
    capped = fv.optimize(model, fv.Channel("conv"), [1], steps=1, seed=2)
    assert capped.reached[0] == 0.0 and capped.responsive[0] and not capped.dead[0]


def test_engines_are_cached_per_model_bounded_and_free_the_model(monkeypatch):
    model = tiny_functional()
    built = []

    class Counted(engine._Engine):
        def __init__(self, *args):
            built.append(args[3])  # n, the batch size
            super().__init__(*args)

    monkeypatch.setattr(engine, "_Engine", Counted)
    for n in (1, 2, 3, 4, 5, 5):  # batch size is part of the key; the last call reuses the engine
        fv.optimize(model, fv.Channel("conv_b"), range(n), steps=2, seed=0)
    assert built == [1, 2, 3, 4, 5]
    assert cache.cached_count(model, "featurevis.engine") == engine._ENGINES_PER_MODEL == 4
    fv.optimize(model, fv.Channel("conv_b"), range(1), steps=2, seed=0)  # evicted first: built again
    assert built == [1, 2, 3, 4, 5, 1]
    monkeypatch.undo()
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


# ----------------------------------------------------------------------------- fitted image size


def _wide_cnn() -> keras.Model:
    """128x128 input, two 3x3 convs (receptive field 5), then Flatten + Dense: only the convs run at any size."""
    keras.utils.set_random_seed(8)
    inputs = keras.Input((128, 128, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    x = keras.layers.MaxPooling2D(8, name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.layers.Flatten(name="flat")(x)))


def test_receptive_field_by_hand():
    model = _wide_cnn()
    sizes = [fields.receptive_field(model, p).size for p in ("c1", "c2", "pool")]
    assert sizes == [(3, 3), (5, 5), (5 + 7, 5 + 7)]  # pool 8: +7 at jump 1
    nested = nested_mobilenet()  # Conv1 3x3 s2 -> depthwise 3x3 (jump 2) -> 1x1 expand: 3 + 2 * 2
    rf = fields.receptive_field(nested, graph.resolve_layer(nested, "block_1_expand_relu"))
    assert (rf.size, rf.stride) == ((7, 7), 2)
    rf = fields.receptive_field(_strided_cnn(), "s2")
    assert (rf.size, rf.stride) == ((7, 7), 4)  # 3 + 2 * 2, strides 2 x 2
    assert fields.receptive_field(_strided_cnn(), "out").whole  # after global pooling: the whole image
    assert slicing.runs_at(model, ("c2",), 64) and not slicing.runs_at(model, ("out",), 64)


def test_an_early_layer_is_optimized_at_the_fitted_size():
    model = _wide_cnn()
    result = fv.optimize(model, fv.Channel("c2"), [0, 3], steps=6, seed=1)
    assert result.images_nhwc.shape == (2, 64, 64, 3)  # 2 x receptive field 5, at least 64
    oracle = keras.Sequential([keras.Input((64, 64, 3)), model.get_layer("c1"), model.get_layer("c2")])
    acts = np.asarray(oracle(result.images_nhwc))  # (2, 60, 60, 5); border auto_border(60) = 3
    want = acts[[0, 1], 3:57, 3:57, [0, 3]].mean(axis=(1, 2))
    np.testing.assert_allclose(result.reached, want, rtol=1e-4, atol=1e-6)
    full = fv.optimize(
        model,
        fv.Channel("c2"),
        [0],
        steps=2,
        settings=dataclasses.replace(fv.default_settings(graph.input_spec(model)), fit_receptive_field=False),
    )
    assert full.images_nhwc.shape == (1, 128, 128, 3)
    assert fv.optimize(model, fv.ClassLogit(), [1], steps=2).images_nhwc.shape == (
        1,
        128,
        128,
        3,
    )  # the scores need all
    at = fv.optimize(model, fv.Neuron("c2", y=100, x=100), [0], steps=2)  # a position in the full-size map
    assert at.images_nhwc.shape == (1, 128, 128, 3)


def _strided_cnn() -> keras.Model:
    """96x96 RGB, two 3x3 stride-2 convs (stride 4, receptive field 7), then a head: an early layer
    of a larger network in miniature, optimized at its fitted size (64 px) as a texture."""
    keras.utils.set_random_seed(11)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="s1")(inputs)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="s2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def _pixel_ascent(model: keras.Model, layer: str, f: int, steps: int, seed: int) -> np.ndarray:
    """The keras.io recipe for filter ``f`` in [0, 1]: pixels, L2-normalized gradient, at the model's
    size, each step moving the pixels by 1.3% of the range (rms), as 10 in [-1, 1] at 224x224x3."""
    sub = keras.Model(model.input, model.get_layer(layer).output)
    img = tf.constant(
        0.5 + (np.random.default_rng([seed, f]).random((1, *model.input_shape[1:])) - 0.5) * 0.125, tf.float32
    )
    size = float(np.prod(model.input_shape[1:]))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = tf.reduce_mean(sub(img)[:, 2:-2, 2:-2, f])
        img = img + 0.013 * np.sqrt(size) * tf.math.l2_normalize(tape.gradient(loss, img))
    return np.clip(img.numpy()[0], 0.0, 1.0)  # the model's input range: what a user could feed it


def test_default_settings_raise_every_live_filter_of_a_strided_layer_past_a_pixel_ascent_loop():
    model = _strided_cnn()
    steps, filters = 30, list(range(12))
    result = fv.optimize(model, fv.Channel("s2"), filters, steps=steps, seed=5)
    assert result.images_nhwc.shape == (12, 64, 64, 3)  # fitted: 2 x receptive field 7, at least 64
    assert result.settings.transforms == ()  # a periodic tile: a shift only moves its phase
    assert result.settings.param == fv.TiledParam(fv.PixelParam(), 32)  # 8 strides of s2, 2 tiles per side
    np.testing.assert_array_equal(result.images_nhwc[:, :32], result.images_nhwc[:, 32:])  # seamless
    assert fv.texture_size(model, fv.Channel("s2")) == (64, 64, 4)
    assert fv.texture_size(model, fv.ClassLogit()) is None  # the scores need the whole image
    live = ~result.dead
    assert live.sum() >= 8
    assert np.all(result.reached[live] > result.start[live])
    sub = keras.Model(model.input, model.get_layer("s2").output)

    def mean_map(image_hwc: np.ndarray, f: int) -> float:  # border excluded as auto_border does: 1 unit
        acts = np.asarray(sub.call(tf.constant(image_hwc[None]), training=False))[0, :, :, f]
        return float(acts[1:-1, 1:-1].mean())

    ours = np.array([mean_map(result.images_nhwc[i], f) for i, f in enumerate(filters)])
    np.testing.assert_allclose(ours, result.reached, rtol=1e-4, atol=1e-6)  # reached is the returned image's
    loop = np.array([mean_map(_pixel_ascent(model, "s2", f, steps, seed=5), f) for f in filters])
    assert np.all(ours[live] >= loop[live]), (ours, loop)


def test_a_tiled_texture_stays_in_range_and_beats_its_start_tiled_to_the_input():
    """The texture parameterization: in [0, 1] (so in the model's range), periodic, and tiled to the
    model's input (96 px) its filter's mean activation, taken by Keras, beats the random start's."""
    model = _strided_cnn()
    param = fv.TiledParam(fv.PixelParam(), 16)
    var = tf.constant(np.random.default_rng(0).normal(scale=30.0, size=(2, 16, 16, 3)).astype(np.float32))
    image = param(var, 40, 40, 3).numpy()  # not a whole number of tiles: cropped
    assert image.shape == (2, 40, 40, 3) and 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_array_equal(image[:, :16, :16], image[:, 16:32, 16:32])
    np.testing.assert_array_equal(image[:, :8], image[:, 32:40])
    assert (
        fv.texture_period(64, 4) == 32
        and fv.texture_period(48, 16) == 16
        and fv.texture_period(80, 16) == 16
        and fv.texture_period(48, 32) == 48
    )

    filters = [0, 1, 2, 3]
    defaults = fv.layer_settings(model, fv.Channel("s2"))
    assert defaults.steps == fv.TEXTURE_STEPS  # an early layer's default: the texture's steps
    result = fv.optimize(model, fv.Channel("s2"), filters, steps=20, seed=2, value_range=(-1.0, 1.0))
    assert result.images_nhwc.shape == (4, 64, 64, 3)
    assert -1.0 <= result.images_nhwc.min() and result.images_nhwc.max() <= 1.0
    sub = keras.Model(model.input, model.get_layer("s2").output)
    rng = [np.random.default_rng([2, f, 0]) for f in filters]
    start = np.stack([param.inner.init(r, 32, 32, 3) for r in rng])  # the engine's own start: a random tile
    start = 2.0 * fv.TiledParam(fv.PixelParam(), 32)(tf.constant(start), 64, 64, 3).numpy() - 1.0

    def tiled_mean(images_nhwc: np.ndarray) -> np.ndarray:  # tiled to the input, border excluded (1 unit)
        acts = np.asarray(sub(np.tile(images_nhwc, (1, 2, 2, 1))[:, :96, :96]))[..., filters]
        return acts[:, 1:-1, 1:-1].mean(axis=(1, 2))[np.arange(4), np.arange(4)]

    np.testing.assert_allclose(tiled_mean(start), result.start, rtol=0.2, atol=1e-4)  # the same start
    assert np.all(tiled_mean(result.images_nhwc) > tiled_mean(start) + 1e-3)


def test_cosine_schedule_decays_to_a_tenth():
    total = tf.constant(11.0)
    factors = [float(engine._schedule("cosine", tf.constant(float(t)), total)) for t in range(11)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert engine._schedule("constant", tf.constant(3.0), total) == 1.0
    with pytest.raises(ValueError, match="Unknown schedule"):
        fv.Settings(schedule="step")


def test_gallery_default_asks_each_layer_once_however_many_layers(monkeypatch):
    """20 conv layers that all run as textures: a second gallery_default (every run of the Filters page)
    builds no sub-model again (it did for every layer past 16: 1.2-1.4 s a run on MobileNetV2)."""
    inp = keras.Input((128, 128, 3))
    x = inp
    for i in range(20):
        x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name=f"c{i}")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    convs = [f"c{i}" for i in range(20)]
    calls = []
    real = slicing.runs_at
    monkeypatch.setattr(slicing, "runs_at", lambda *a: calls.append(a[1]) or real(*a))
    first = fv.gallery_default(model, convs)
    assert len(calls) == 20  # each layer's texture size checked once
    assert fv.gallery_default(model, convs) == first and len(calls) == 20


def test_gallery_default_picks_the_deepest_texture_layer_of_a_large_network():
    """Receptive fields 3, 7, 15, 31, 63 px (3x3, stride 2 each): twice the field fits 64 px up to conv4."""
    import keras

    inp = keras.Input((128, 128, 3))
    x = inp
    for i in range(1, 6):
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name=f"conv{i}")(x)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    convs = [f"conv{i}" for i in range(1, 6)]
    assert fv.gallery_default(model, convs) == ("conv4", fv.settings.GALLERY_FILTERS)
    assert fv.texture_size(model, fv.Channel("conv5")) is None  # 126 px of field would not be smaller than the input

    small = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, name="a"), keras.layers.Conv2D(4, 3, name="b")]
    )
    assert fv.gallery_default(small, ["a", "b"]) == ("b", 64)
