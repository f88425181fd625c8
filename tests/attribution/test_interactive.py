"""Interactive occlusion against an independent computation: NumPy occlusion, the model's own output, Grad-CAM."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import nested_mobilenet, tiny_functional

from vizcore.attribution import AttributionError, gradcam
from vizcore.attribution.interactive import clip_box, occlude, occlude_boxes


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return tiny_functional(channels=1, classes=3)


def _image(seed: int = 0, channels: int = 1, size: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (size, size, channels)).astype(np.float32)


def test_clip_box_orders_rounds_and_clips():
    assert clip_box((5.4, 9.0, 1.2, 2.5), (12, 12)) == (1, 2, 6, 9)
    assert clip_box((-3, -3, 4, 20), (12, 10)) == (0, 0, 4, 10)
    assert clip_box((3, 3, 3, 8), (12, 12)) is None  # no rows
    assert clip_box((20, 0, 30, 5), (12, 12)) is None  # outside


def test_occlude_fills_only_the_boxes():
    x = _image(1, channels=3)
    out = occlude(x, [(2, 3, 5, 7), (9, 0, 12, 2)], fill=0.5)
    mask = np.zeros((12, 12), bool)
    mask[2:5, 3:7] = True
    mask[9:12, 0:2] = True
    assert np.all(out[mask] == 0.5)
    np.testing.assert_array_equal(out[~mask], x[~mask])
    np.testing.assert_allclose(occlude(x, [(0, 0, 2, 2)], fill="mean")[0, 0], x.mean(axis=(0, 1)), rtol=1e-6)
    with pytest.raises(AttributionError):
        occlude(x, [(0, 0, 2, 2)], fill="grey")


def test_probabilities_and_gradcam_match_separate_calls(model):
    x = _image(2)
    box = (3, 2, 9, 8)
    hand = x.copy()
    hand[3:9, 2:8] = 0.0  # the occlusion, by hand
    for target in (0, 2):
        out = occlude_boxes(model, x, [box], target=target, layer="conv_b")
        np.testing.assert_array_equal(out.image_hwc, hand)
        np.testing.assert_allclose(
            out.probabilities_k, model(hand[None], training=False).numpy()[0], rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(out.heatmap_hw, gradcam(model, hand, target=target, layer="conv_b"), atol=1e-5)
        assert out.target == target and out.layer == "conv_b"


def test_occluding_changes_the_answer_and_no_box_changes_nothing(model):
    x = _image(3)
    plain = occlude_boxes(model, x, [], target=1, layer="conv_b")
    np.testing.assert_allclose(plain.probabilities_k, model(x[None], training=False).numpy()[0], rtol=1e-5, atol=1e-7)
    covered = occlude_boxes(model, x, [(0, 0, 12, 12)], target=1, layer="conv_b")
    assert not np.allclose(covered.probabilities_k, plain.probabilities_k)


def test_default_target_is_the_unoccluded_top_class(model):
    x = _image(4)
    top = int(np.argmax(model(x[None], training=False).numpy()[0]))
    assert occlude_boxes(model, x, [(0, 0, 12, 12)]).target == top


def test_binary_head_gives_two_probabilities():
    m = nested_mobilenet("sigmoid")
    x = _image(5, channels=3, size=64)
    out = occlude_boxes(m, x, [(10, 10, 40, 40)], target=1)
    hand = x.copy()
    hand[10:40, 10:40] = 0.0
    p1 = float(m(hand[None], training=False).numpy()[0, 0])
    np.testing.assert_allclose(out.probabilities_k, [1 - p1, p1], rtol=1e-4, atol=1e-6)
    assert out.heatmap_hw.shape == (64, 64) and np.isfinite(out.heatmap_hw).all()
