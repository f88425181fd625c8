"""Our attacks against ART (adversarial-robustness-toolbox, test-only): the same adversarial images, bundled MNIST CNN.

ART runs its own attack code on a logits model built here from the bundled model's ``logits`` layer,
with its from-logits cross-entropy; ours runs on the model as the app loads it.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from vizcore import models, robustness
from vizcore.data import datasets

with warnings.catch_warnings():  # ART says once that PyTorch is missing; it is not needed here
    warnings.filterwarnings("ignore", "PyTorch not found", UserWarning)
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

N = 64


@pytest.fixture(scope="module")
def mnist():
    model = models.open_bundled("mnist_cnn").model
    ds = datasets.load_mnist_sample()
    x = np.asarray(ds.x_nhwc[np.linspace(0, len(ds) - 1, N).astype(int)], np.float32)  # every class
    logits = keras.Model(model.input, model.get_layer("logits").output)  # the model without its softmax
    art = TensorFlowV2Classifier(
        model=logits,
        nb_classes=10,
        input_shape=(28, 28, 1),
        clip_values=(0.0, 1.0),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    return model, x, art


def _flipped(model, x, x_adv) -> int:
    return int(np.sum(robustness.predict(model, x) != robustness.predict(model, x_adv)))


@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_fgsm_gives_arts_images(mnist, eps):
    model, x, art = mnist
    expected = FastGradientMethod(art, eps=eps, batch_size=32).generate(x)
    ours = robustness.fgsm(model, x, eps=eps)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    assert np.abs(ours - x).max() == pytest.approx(eps)
    assert _flipped(model, x, ours) > 0  # the attack did something to compare


def test_pgd_without_random_start_gives_arts_images(mnist):
    model, x, art = mnist
    expected = ProjectedGradientDescent(
        art, eps=0.1, eps_step=0.01, max_iter=12, num_random_init=0, batch_size=32, verbose=False
    ).generate(x)
    ours = robustness.pgd(model, x, eps=0.1, step=0.01, steps=12, random_start=False)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    assert _flipped(model, x, ours) > _flipped(model, x, robustness.fgsm(model, x, eps=0.01))


def test_targeted_pgd_gives_arts_images(mnist):
    model, x, art = mnist
    target = (robustness.predict(model, x) + 3) % 10
    expected = ProjectedGradientDescent(
        art, eps=0.2, eps_step=0.02, max_iter=12, num_random_init=0, targeted=True, batch_size=32, verbose=False
    ).generate(x, y=np.eye(10)[target])
    ours = robustness.pgd(model, x, eps=0.2, step=0.02, steps=12, random_start=False, target=target)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
