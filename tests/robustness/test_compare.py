"""What the page shows beside an attack: activation change per layer, the channels that moved most, top-k overlap."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore import robustness


def test_topk_overlap_counts_shared_top_pixels():
    a = np.arange(16.0).reshape(4, 4)
    assert robustness.topk_overlap(a, a, k=4) == 1.0
    assert robustness.topk_overlap(a, -a, k=4) == 0.0
    b = a.copy()
    b[3, 3], b[0, 0] = -1.0, 100.0  # the top pixel leaves the top 4, a bottom one enters
    assert robustness.topk_overlap(a, b, k=4) == 0.75
    assert robustness.topk_overlap(a, b, fraction=0.25) == 0.75  # k = 4 of 16
    with pytest.raises(ValueError):
        robustness.topk_overlap(a, a[:2])


def test_layer_change_by_hand(rng):
    a = rng.normal(size=(5, 5, 4))
    b = a.copy()
    b[..., 2] += 1.0  # channel 2 moves by 1 at 25 positions: L2 5
    b[..., 0] += 0.2  # channel 0 by 0.2: L2 1
    change = robustness.layer_change("conv", a, b, k=2)
    assert change.relative == pytest.approx(np.sqrt(25 + 1) / np.linalg.norm(a))
    assert change.channels.tolist() == [2, 0]
    np.testing.assert_allclose(change.moved, np.array([5.0, 1.0]) / np.linalg.norm(a))
    np.testing.assert_allclose(change.before, a[..., [2, 0]].mean(axis=(0, 1)))
    np.testing.assert_allclose(change.after - change.before, [1.0, 0.2])
    zero = robustness.layer_change("dead", np.zeros(3), np.zeros(3))
    assert zero.relative == 0.0


def test_activation_change_of_an_attack_matches_keras_sub_models(rng):
    model = tiny_functional(channels=1, classes=3)
    x = rng.uniform(0, 1, (1, 12, 12, 1)).astype(np.float32)
    adv = robustness.fgsm(model, x, eps=0.1)
    changes = robustness.activation_change(model, x[0], adv[0], ["conv_a", "conv_b", "logits"], k=3)
    assert [c.layer for c in changes] == ["conv_a", "conv_b", "logits"]
    for change in changes:
        sub = keras.Model(model.input, model.get_layer(change.layer).output)
        before, after = sub.predict(x, verbose=0)[0], sub.predict(adv, verbose=0)[0]
        assert change.relative == pytest.approx(np.linalg.norm(after - before) / np.linalg.norm(before), rel=1e-4)
        moved = np.linalg.norm((after - before).reshape(-1, before.shape[-1]), axis=0)
        assert change.channels[0] == int(np.argmax(moved))
    assert changes[0].relative > 0
    default = robustness.activation_change(model, x[0], adv[0])  # one per block by default
    assert len(default) >= 2 and all(np.isfinite(c.relative) for c in default)


def test_perturbation_image_is_amplified_around_grey():
    bounds = robustness.bounds(3, "caffe")
    x = np.zeros((2, 2, 3), np.float32)
    adv = x.copy()
    adv[0, 0, 0] = 5.1  # blue channel (BGR), +5.1 levels
    adv[1, 1, 2] = -2.55  # red channel, -2.55 levels
    shown, scale = robustness.perturbation_image(x, adv, bounds)
    assert scale == pytest.approx(127.5 / 5.1)
    assert shown[0, 0].tolist() == [128, 128, 255]  # RGB order: the blue change is channel 2
    assert shown[1, 1, 0] == round(127.5 - 2.55 * scale)
    assert shown[0, 1].tolist() == [128, 128, 128]
