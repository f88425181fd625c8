"""Faithfulness and sanity metrics on constructed models whose right answer is known."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore.attribution import METHOD_INFO, gradcam, occlusion, saliency
from vizcore.attribution.metrics import (
    deletion_curve,
    insertion_curve,
    pointing_game,
    pointing_hit,
    pointing_tolerance,
    random_map,
    randomization_check,
    randomized_copy,
    rankdata,
    reinitialise_top,
    sobel_map,
    spearman,
)
from vizcore.data.datasets import ImageDataset

REGION = (slice(2, 5), slice(4, 7))  # rows 2-4, cols 4-6 of an 8x8 image


def region_model() -> keras.Model:
    """8x8x1 -> linear logits: class 0 = 3 * sum of REGION (+ tiny weights elsewhere), class 1 = 2."""
    inputs = keras.Input((8, 8, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits), name="region")
    w = np.full((8, 8), 0.01, np.float32)
    w[REGION] = 3.0
    w[3, 5] = 4.0  # the single most important pixel
    kernel = np.stack([w.ravel(), np.zeros(64, np.float32)], axis=1)
    model.set_weights([kernel, np.array([0.0, 2.0], np.float32)])
    return model


ONES = np.ones((8, 8, 1), np.float32)


def test_deletion_and_insertion_rank_a_perfect_map_above_a_random_one():
    model = region_model()
    perfect = saliency(model, ONES, target=0)  # |weights|: the truth for a linear model
    assert perfect[REGION].min() > perfect[0, 0]
    rand = random_map(model, ONES, seed=1)
    good, bad = (
        deletion_curve(model, ONES, perfect, target=0, steps=16),
        deletion_curve(model, ONES, rand, target=0, steps=16),
    )
    assert good.auc < bad.auc - 0.3
    probs = model.predict(np.stack([ONES, np.zeros_like(ONES)]), verbose=0)[:, 0]
    assert good.probabilities[0] == pytest.approx(probs[0], abs=1e-6) and good.probabilities[-1] == pytest.approx(
        probs[1], abs=1e-6
    )
    np.testing.assert_allclose(good.fractions, np.linspace(0, 1, 17))
    assert good.auc == pytest.approx(np.trapezoid(good.probabilities, good.fractions))
    # region weights total 4 + 8 * 3 = 28: after 4 of 64 pixels 15.5 are left (> 2, class 0); after 12 none
    assert good.probabilities[1] > 0.99 and good.probabilities[3] < 0.2
    ins_good = insertion_curve(model, ONES, perfect, target=0, steps=16, baseline=0.0)
    ins_bad = insertion_curve(model, ONES, rand, target=0, steps=16, baseline=0.0)
    assert ins_good.auc > ins_bad.auc and ins_good.probabilities[2] > 0.9 > ins_bad.probabilities[1]


def test_rankdata_and_spearman_against_numpy_references():
    np.testing.assert_array_equal(rankdata([10, 30, 20, 20]), [1, 4, 2.5, 2.5])
    x, y = np.array([1, 2, 3, 4, 5.0]), np.array([5, 6, 7, 8, 7.0])
    ranks_y = np.array([1, 2, 3.5, 5, 3.5])  # written by hand
    assert spearman(x, y) == pytest.approx(np.corrcoef([1, 2, 3, 4, 5], ranks_y)[0, 1])
    rng = np.random.default_rng(0)
    a, b = rng.permutation(20).astype(float), rng.permutation(20).astype(float)
    d = a - b  # no ties: the textbook formula on the values, which are their own ranks minus 1
    assert spearman(a * 3 + 1, np.exp(b / 5)) == pytest.approx(1 - 6 * (d**2).sum() / (20 * (20**2 - 1)))
    assert spearman(np.arange(9).reshape(3, 3), np.arange(9) ** 2) == pytest.approx(1.0)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))


def test_pointing_game_with_a_known_answer():
    model = region_model()  # saliency's maximum is at row 3, col 5 for every image
    boxes = np.array(
        [
            [4, 1, 7, 4],  # contains (col 5, row 3): hit
            [0, 0, 5, 8],  # x1 = 5 is exclusive: miss
            [5, 3, 6, 4],  # the 1-pixel box at (5, 3): hit
            [0, 4, 8, 8],  # rows 4-7: miss
        ]
    )
    rng = np.random.default_rng(2)
    dataset = ImageDataset(
        rng.random((4, 8, 8, 1)).astype(np.float32), np.zeros(4, np.int64), ("a", "b"), "boxes", boxes
    )
    assert pointing_game(model, dataset, saliency) == 0.5
    assert pointing_game(model, dataset, saliency, n=1) == 1.0
    assert pointing_game(model, dataset, saliency, n=2) == 0.5


def test_randomization_check_changes_a_copy_never_the_original():
    model = tiny_functional(channels=3)
    x = np.random.default_rng(9).random((12, 12, 3)).astype(np.float32)
    before = [np.array(w) for w in model.get_weights()]
    same = randomization_check(model, x, gradcam, target=1, top_layers=0)
    assert same.layers == () and same.spearman == pytest.approx(1.0)
    np.testing.assert_array_equal(same.original_hw, same.randomized_hw)
    result = randomization_check(
        model, x, gradcam, target=1, top_layers=1, seed=1
    )  # seed 0 gives a flat (all-negative) map
    assert result.layers == ("logits",)
    assert not np.allclose(result.original_hw, result.randomized_hw)
    expected = np.corrcoef(rankdata(result.original_hw), rankdata(result.randomized_hw))[0, 1]
    assert result.spearman == pytest.approx(expected) and result.spearman < 0.99
    np.testing.assert_array_equal(result.original_hw, gradcam(model, x, target=1))
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_reinitialise_top_uses_keras_defaults():
    model = tiny_functional()
    old = model.get_layer("conv_b").get_weights()
    assert reinitialise_top(model, 2, seed=0) == ("logits", "conv_b")
    kernel, bias = model.get_layer("conv_b").get_weights()
    assert not np.allclose(kernel, old[0]) and not bias.any()
    limit = np.sqrt(6 / (3 * 3 * 4 + 3 * 3 * 6))  # Glorot uniform of a 3x3x4x6 kernel
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    np.testing.assert_array_equal(
        model.get_layer("conv_a").get_weights()[0], tiny_functional().get_layer("conv_a").get_weights()[0]
    )


def test_sobel_map_against_explicit_loops_and_random_map_is_seeded():
    model = keras.Sequential([keras.Input((6, 7, 3)), keras.layers.Conv2D(1, 3)])
    image = np.zeros((6, 7, 3), np.float32)
    image[:, 4:] = 1.0
    image[1, 1] = 0.6
    gray = np.pad(image.mean(-1).astype(np.float64), 1, mode="edge")
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    mag = np.zeros((6, 7))
    for r in range(6):
        for c in range(7):
            win = gray[r : r + 3, c : c + 3]
            mag[r, c] = np.hypot((win * kx).sum(), (win * kx.T).sum())
    np.testing.assert_allclose(sobel_map(model, image), mag / mag.max(), atol=1e-6)
    assert sobel_map(model, image)[:, 3:5].min() == pytest.approx(1.0)  # the step edge is the strongest
    np.testing.assert_array_equal(random_map(model, image, seed=5), random_map(model, image, seed=5))
    assert not np.array_equal(random_map(model, image, seed=5), random_map(model, image, seed=6))


# ----------------------------------------------------------------------------- the paper's pointing game


def test_pointing_hit_tolerance_and_ties_on_hand_made_maps():
    assert pointing_tolerance(224, 300) == 15.0 and pointing_tolerance(64, 96) == pytest.approx(15 * 64 / 224)
    heat = np.zeros((224, 224))
    heat[100, 50] = 1.0  # row 100, col 50
    assert pointing_hit(heat, (65, 0, 90, 224), 15.0)  # 15 px to the box's first column: on the edge of the tolerance
    assert not pointing_hit(heat, (66, 0, 90, 224), 15.0)  # 16 px
    assert pointing_hit(heat, (60, 110, 90, 130), 15.0)  # 10 px right, 10 px down: 14.1 px
    assert not pointing_hit(heat, (61, 111, 90, 130), 15.0)  # 11 and 11: 15.6 px
    assert pointing_hit(heat, (0, 0, 41, 91), 15.0)  # x1, y1 exclusive: last pixel col 40, row 90, 10 and 10 away
    assert not pointing_hit(heat, (0, 0, 40, 90), 15.0)  # last pixel col 39, row 89: 11 and 11 away
    assert not pointing_hit(heat, (0, 0, 40, 90), 0.0) and pointing_hit(heat, (50, 100, 51, 101), 0.0)
    tied = heat.copy()
    tied[10, 200] = 1.0  # a second maximum, far from the first
    assert pointing_hit(tied, (195, 5, 205, 15), 0.0) and pointing_hit(tied, (45, 95, 55, 105), 0.0)  # either one
    assert not pointing_hit(tied, (120, 120, 130, 130), 15.0)  # neither
    tied[10, 200] = 0.999  # no longer a maximum
    assert not pointing_hit(tied, (195, 5, 205, 15), 0.0)
    assert not pointing_hit(np.full((224, 224), 0.5), (0, 0, 224, 224), 15.0)  # a flat map points nowhere


def test_pointing_game_scales_the_tolerance_to_the_input():
    maps = np.zeros((5, 64, 64, 1), np.float32)  # the images are the maps; tolerance 15 * 64 / 224 = 4.29 px
    for i, (row, col) in enumerate([(20, 30), (20, 34), (20, 35), (22, 33), (23, 34)]):
        maps[i, row, col] = 1.0
    boxes = np.tile([0, 0, 31, 20], (5, 1))  # last pixel row 19, col 30; distances 1, 4.12, 5.10, 4.24, 5.66
    dataset = ImageDataset(maps, np.zeros(5, np.int64), ("a", "b"), "hand-made", boxes)

    def hand(model, x, *, target=None, layer=None):  # the image is the map
        return x[..., 0]

    model = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert pointing_game(model, dataset, hand) == pytest.approx(3 / 5)
    assert pointing_game(model, dataset, hand, tolerance=0.0) == 0.0
    assert pointing_game(model, dataset, hand, tolerance=6.0) == 1.0


# ----------------------------------------------------------------------------- the options a page set


def test_metrics_use_the_method_options():
    model = region_model()
    ones = ImageDataset(
        np.ones((3, 8, 8, 1), np.float32), np.zeros(3, np.int64), ("a", "b"), "ones", np.tile([4, 2, 7, 5], (3, 1))
    )
    assert pointing_game(model, ones, occlusion) == 1.0  # zeros hide the region: the map peaks in it
    assert pointing_game(model, ones, occlusion, options={"fill": 1.0}) == 0.0  # ones hide nothing: a flat map

    model = tiny_functional(channels=3)
    rng = np.random.default_rng(5)
    x = rng.random((12, 12, 3)).astype(np.float32)
    cases = {
        "Occlusion": {"patch": 3, "stride": 2, "fill": "mean"},
        "Integrated Gradients": {"baseline": "zeros", "steps": 5},
        "Score-CAM": {"max_channels": 2},
        "SmoothGrad (Saliency)": {"samples": 3, "noise": 0.4},
    }
    copy, _ = randomized_copy(model, 1, seed=0)
    for label, opts in cases.items():
        info = METHOD_INFO[label]
        layer = "conv_b" if info.uses_layer else None
        by_hand = info.fn(model, x, target=1, layer=layer, **opts)
        assert not np.allclose(by_hand, info.fn(model, x, target=1, layer=layer)), label  # the options matter
        result = randomization_check(model, x, info.fn, target=1, layer=layer, top_layers=1, options=opts)
        np.testing.assert_array_equal(result.original_hw, by_hand)
        np.testing.assert_allclose(result.randomized_hw, info.fn(copy, x, target=1, layer=layer, **opts), atol=1e-6)
        assert result.spearman == pytest.approx(spearman(by_hand, result.randomized_hw))

    boxes = np.array([[0, 0, 6, 6], [6, 6, 12, 12], [3, 0, 9, 12], [0, 3, 12, 9]])
    dataset = ImageDataset(
        rng.random((4, 12, 12, 3)).astype(np.float32), np.array([0, 1, 2, 1]), ("a", "b", "c"), "boxes", boxes
    )
    opts = cases["Occlusion"]
    tol = 15 * 12 / 224
    hits = [
        pointing_hit(occlusion(model, x_i, target=int(y), **opts), box, tol)
        for x_i, y, box in zip(dataset.x_nhwc, dataset.y, boxes)
    ]
    assert pointing_game(model, dataset, occlusion, options=opts) == pytest.approx(np.mean(hits))


# ------------------------------------------------------------------------- randomization by the layer's own initializer


def test_randomization_draws_from_each_layers_initializer_on_a_copy():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(
        64,
        3,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5),
        bias_initializer=keras.initializers.Constant(0.3),
        name="conv",
    )(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomUniform(-2.0, 2.0), name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    trained = [
        np.full(w.shape, 0.01 * (i + 1), np.float32) for i, w in enumerate(model.get_weights())
    ]  # "learned" weights
    model.set_weights(trained)

    copy, names = randomized_copy(model, 2, seed=0)
    assert names == ("logits", "conv")
    kernel, bias = copy.get_layer("conv").get_weights()
    assert abs(kernel.std() - 0.5) < 0.05 and abs(kernel.mean()) < 0.06  # RandomNormal(0.5), not Glorot (std 0.06)
    np.testing.assert_array_equal(bias, np.full(64, 0.3, np.float32))
    dense, dense_bias = copy.get_layer("logits").get_weights()
    assert 1.5 < np.abs(dense).max() <= 2.0 and not dense_bias.any()  # RandomUniform(-2, 2), zero bias
    for before, after in zip(trained, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the user's model is untouched
    again, _ = randomized_copy(model, 2, seed=0)
    np.testing.assert_array_equal(again.get_layer("conv").get_weights()[0], kernel)  # seeded
    other, _ = randomized_copy(model, 2, seed=1)
    assert not np.allclose(other.get_layer("conv").get_weights()[0], kernel)
