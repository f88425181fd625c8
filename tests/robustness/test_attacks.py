"""FGSM, PGD, the sweep and the minimal ε against independent computations on seeded tiny models (and the MNIST CNN)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_functional
from keras import ops

from vizcore import models, robustness
from vizcore.data import datasets, images
from vizcore.errors import RobustnessError

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


class FromCaffe(keras.layers.Layer):
    """Caffe-style input (BGR minus the ImageNet mean) back to [0, 1] RGB: undoes images.preprocess(mode='caffe')."""

    def call(self, x):
        return (ops.flip(x, axis=-1) + ops.convert_to_tensor(CAFFE_MEAN_BGR[::-1].copy())) / 255.0


class Round(keras.layers.Layer):
    """Rounds its input: no gradient flows through it."""

    def call(self, x):
        return ops.round(x)


def _wrapped(inner: keras.Model, first: keras.layers.Layer, channels: int) -> keras.Model:
    inputs = keras.Input((12, 12, channels))
    return keras.Model(inputs, inner(first(inputs)))


def _sign_of_logit_gradient(logits_model: keras.Model, x: np.ndarray) -> np.ndarray:
    """sign(d logit / d x) of a one-unit model, eagerly, by hand."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = tf.reduce_sum(logits_model(xt)[:, 0])
    return np.sign(tape.gradient(z, xt).numpy())


@pytest.fixture(scope="module")
def tiny():
    return tiny_functional(channels=1, classes=3)


@pytest.fixture(scope="module")
def mnist():
    model = models.open_bundled("mnist_cnn").model
    ds = datasets.load_mnist_sample()
    idx = np.linspace(0, len(ds) - 1, 100).astype(int)
    return model, np.asarray(ds.x_nhwc[idx], np.float32), ds.y[idx].astype(np.int64)


def test_eps_is_a_fraction_of_the_range_on_a_symmetric_model(tiny, rng):
    unit = rng.uniform(0, 1, (16, 12, 12, 1)).astype(np.float32)
    symmetric = _wrapped(tiny, keras.layers.Rescaling(0.5, offset=0.5), 1)  # on [-1, 1] what tiny does on [0, 1]
    x_sym = unit * 2 - 1
    np.testing.assert_allclose(robustness.scores(symmetric, x_sym), robustness.scores(tiny, unit), atol=1e-5)
    adv_unit = robustness.fgsm(tiny, unit, eps=0.05)
    adv_sym = robustness.fgsm(symmetric, x_sym, eps=0.05, input_range="symmetric")
    np.testing.assert_allclose(adv_sym, adv_unit * 2 - 1, atol=1e-5)  # the same visible change
    assert np.abs(adv_sym - x_sym).max() == pytest.approx(0.1, abs=1e-6)  # ε 0.05 moves a value by 0.1 on [-1, 1]
    assert adv_sym.min() >= -1 and adv_sym.max() <= 1
    assert np.abs(robustness.fgsm(symmetric, x_sym, eps=0.05, input_range=(-1.0, 1.0)) - adv_sym).max() == 0
    pgd_sym = robustness.pgd(symmetric, x_sym, eps=0.05, steps=5, seed=3, input_range="symmetric")
    np.testing.assert_allclose(pgd_sym, robustness.pgd(tiny, unit, eps=0.05, steps=5, seed=3) * 2 - 1, atol=1e-5)


def test_caffe_inputs_are_attacked_through_the_models_own_preprocessing(rng):
    inner = tiny_functional(channels=3, classes=3)
    caffe = _wrapped(inner, FromCaffe(), 3)
    pixels = rng.integers(0, 256, (8, 12, 12, 3), dtype=np.uint8)
    unit = pixels.astype(np.float32) / 255
    x_caffe = np.stack([images.preprocess(p, size=(12, 12), channels=3, mode="caffe").image_hwc for p in pixels])
    adv = robustness.fgsm(caffe, x_caffe, eps=0.04, input_range="caffe")
    expected = robustness.fgsm(inner, unit, eps=0.04)
    shown = np.stack([(a + CAFFE_MEAN_BGR)[..., ::-1] for a in adv])  # back to RGB 0..255 by hand
    np.testing.assert_allclose(shown, expected * 255, atol=1e-3)
    assert np.abs(adv - x_caffe).max() == pytest.approx(0.04 * 255, abs=1e-3)  # 10.2 levels on every channel


def test_fgsm_is_the_sign_of_the_cross_entropy_gradient(tiny, rng):
    x = rng.uniform(0, 1, (6, 12, 12, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    logits = keras.Model(tiny.input, tiny.get_layer("logits").output)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = logits(xt)
        loss = tf.reduce_sum(tf.reduce_logsumexp(z, axis=1) - tf.gather(z, y, batch_dims=1))  # by hand
    expected = np.clip(x + 0.1 * np.sign(tape.gradient(loss, xt).numpy()), 0, 1)
    np.testing.assert_allclose(robustness.fgsm(tiny, x, y, eps=0.1), expected, atol=1e-6)
    own = robustness.fgsm(tiny, x, eps=0.1)  # y=None: the model's own predictions
    np.testing.assert_array_equal(own, robustness.fgsm(tiny, x, np.argmax(tiny.predict(x, verbose=0), axis=1), eps=0.1))


@pytest.mark.parametrize("fused", [False, True])
def test_a_binary_sigmoid_head(rng, fused):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((12, 12, 1))
    h = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, activation="relu")(inputs))
    if fused:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="out")(h)
        logit = keras.layers.Dense(1, name="logit_copy")
        logit.build(h.shape)
        logits = keras.Model(inputs, logit(h))
    else:
        z = keras.layers.Dense(1, name="z")(h)
        outputs = keras.layers.Activation("sigmoid")(z)
        logits = keras.Model(inputs, z)
    model = keras.Model(inputs, outputs)
    if fused:
        logit.set_weights(model.get_layer("out").get_weights())
    x = rng.uniform(0, 1, (10, 12, 12, 1)).astype(np.float32)
    p1 = model.predict(x, verbose=0)[:, 0]
    predicted = (p1 > 0.5).astype(int)
    np.testing.assert_array_equal(robustness.predict(model, x), predicted)
    # binary cross-entropy on the logit: label 1 moves against d z / d x, label 0 along it
    direction = np.where(predicted == 1, -1.0, 1.0)[:, None, None, None]
    expected = np.clip(x + 0.1 * direction * _sign_of_logit_gradient(logits, x), 0, 1)
    np.testing.assert_allclose(robustness.fgsm(model, x, eps=0.1), expected, atol=1e-6)
    target = 1 - predicted
    reached = robustness.predict(model, robustness.pgd(model, x, eps=0.5, steps=30, target=target))
    np.testing.assert_array_equal(reached, target)


def test_targeted_pgd_reaches_its_target(mnist):
    model, x, _ = mnist
    x = x[::4]
    target = (robustness.predict(model, x) + 1) % 10
    # at ε 0.3, 97 of these 100 digits reach the next class in 40 steps (a 0 is hard to turn into a 1); at 0.5 all do
    adv = robustness.pgd(model, x, eps=0.5, steps=40, target=target)
    np.testing.assert_array_equal(np.argmax(model.predict(adv, verbose=0), axis=1), target)  # checked by Keras itself
    assert np.abs(adv - x).max() <= 0.5 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_pgd_random_start_follows_its_seed(tiny, rng):
    x = rng.uniform(0, 1, (4, 12, 12, 1)).astype(np.float32)
    a = robustness.pgd(tiny, x, eps=0.1, steps=1, step=1e-6, seed=1)  # one tiny step: where it started
    b = robustness.pgd(tiny, x, eps=0.1, steps=1, step=1e-6, seed=1)
    c = robustness.pgd(tiny, x, eps=0.1, steps=1, step=1e-6, seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.05
    assert np.abs(a - x).max() <= 0.1 + 1e-6 and np.abs(a - x).mean() > 0.03  # uniform in the ball, clipped to [0, 1]


def test_the_sweep_equals_a_per_eps_loop(mnist):
    model, x, y = mnist
    epsilons = (0.0, 0.05, 0.1, 0.2, 0.3)
    clean = np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)
    swept = robustness.sweep(model, x, y, epsilons)
    loop = [np.mean(robustness.predict(model, robustness.fgsm(model, x, y, eps=e)) == y) for e in epsilons]
    np.testing.assert_array_equal(swept, loop)
    assert swept[0] == clean and swept[-1] < swept[1] < clean  # ε 0 is the clean accuracy; larger ε hurts
    options = dict(steps=5, seed=7)
    swept = robustness.sweep(model, x[:40], y[:40], epsilons[:3], attack="pgd", batch_size=32, **options)
    loop = [
        np.mean(robustness.predict(model, robustness.pgd(model, x[:40], y[:40], eps=e, **options)) == y[:40])
        for e in epsilons[:3]
    ]
    np.testing.assert_array_equal(swept, loop)


def test_minimal_epsilon_is_the_first_grid_crossing_refined(mnist):
    model, x, _ = mnist
    x = x[:30]
    grid = 0.3 * np.arange(1, 7) / 6
    found = robustness.minimal_epsilon(model, x, max_eps=0.3, grid=6, iterations=4)
    pred = robustness.predict(model, x)
    changed = np.stack([robustness.predict(model, robustness.fgsm(model, x, eps=e)) != pred for e in grid])  # (6, N)
    for i, eps in enumerate(found):
        if not changed[:, i].any():
            assert eps == np.inf
            continue
        first = grid[np.argmax(changed[:, i])]
        assert first - 0.05 < eps <= first + 1e-9  # within the grid interval below the first crossing
        assert robustness.predict(model, robustness.fgsm(model, x[i : i + 1], eps=float(eps)))[0] != pred[i]
    assert np.isfinite(found).sum() >= 20
    y = pred.copy()
    y[0] = (y[0] + 1) % 10  # a label the model does not give: 0
    assert robustness.minimal_epsilon(model, x[:3], y[:3], grid=3, iterations=1)[0] == 0.0


def test_progress_counts_and_cancels(tiny, rng):
    x = rng.uniform(0, 1, (5, 12, 12, 1)).astype(np.float32)
    seen = []
    robustness.pgd(tiny, x, eps=0.1, steps=3, batch_size=2, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 15) and seen[-1] == (15, 15) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(robustness.AttackCancelled):
        robustness.pgd(tiny, x, eps=0.1, steps=3, batch_size=2, on_progress=lambda d, t: d >= 4)
    with pytest.raises(robustness.AttackCancelled):
        robustness.sweep(tiny, x, None, (0.0, 0.1), on_progress=lambda d, t: d > 0)


def _one_sentence(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text.endswith(".") and "\n" not in text and ". " not in text, text
    return text


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_eps_outside_0_to_1_is_refused(tiny, rng, eps):
    x = rng.uniform(0, 1, (2, 12, 12, 1)).astype(np.float32)
    for call in (
        lambda: robustness.fgsm(tiny, x, eps=eps),
        lambda: robustness.pgd(tiny, x, eps=eps, steps=3),
        lambda: robustness.sweep(tiny, x, None, (0.1, eps)),
    ):
        with pytest.raises(RobustnessError) as err:
            call()
        assert "between 0 and 1" in _one_sentence(err)


def test_zero_steps_is_refused(tiny, rng):
    x = rng.uniform(0, 1, (2, 12, 12, 1)).astype(np.float32)
    with pytest.raises(RobustnessError) as err:
        robustness.pgd(tiny, x, eps=0.1, steps=0)
    assert "at least one step" in _one_sentence(err)
    with pytest.raises(RobustnessError):
        robustness.sweep(tiny, x, None, (0.1,), attack="pgd", steps=0)


def test_a_target_equal_to_the_prediction_is_refused(tiny, rng):
    x = rng.uniform(0, 1, (1, 12, 12, 1)).astype(np.float32)
    predicted = int(robustness.predict(tiny, x)[0])
    with pytest.raises(RobustnessError) as err:
        robustness.pgd(tiny, x, eps=0.1, steps=3, target=predicted)
    assert "already the model's prediction" in _one_sentence(err)
    with pytest.raises(RobustnessError) as err:
        robustness.pgd(tiny, x, eps=0.1, steps=3, target=7)  # not a class of a 3-class model
    _one_sentence(err)


def test_a_model_without_a_gradient_to_its_input_is_refused(rng):
    inner = tiny_functional(channels=1, classes=3)
    model = _wrapped(inner, Round(), 1)
    x = rng.uniform(0, 4, (2, 12, 12, 1)).astype(np.float32)
    assert robustness.predict(model, x).shape == (2,)  # it predicts; only its gradient is missing
    for call in (
        lambda: robustness.fgsm(model, x, eps=0.1),
        lambda: robustness.pgd(model, x, eps=0.1, steps=2),
        lambda: robustness.sweep(model, x, None, (0.0, 0.1)),
    ):
        with pytest.raises(RobustnessError) as err:
            call()
        assert "no gradient" in _one_sentence(err)


def test_the_model_is_not_changed(tiny, rng):
    x = rng.uniform(0, 1, (3, 12, 12, 1)).astype(np.float32)
    weights = [w.copy() for w in tiny.get_weights()]
    before = tiny.predict(x, verbose=0)
    robustness.pgd(tiny, x, eps=0.2, steps=3)
    assert all(np.array_equal(a, b) for a, b in zip(weights, tiny.get_weights()))
    np.testing.assert_array_equal(tiny.predict(x, verbose=0), before)
    assert tiny.layers[-1].activation.__name__ == "softmax"
