"""The Direction objective and the Activation Atlas, against NumPy: binning, hand counts, the objective by hand.

Seeded tiny 12x12 models and few steps, as in tests/featurevis.
"""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore import featurevis as fv
from vizcore.errors import AtlasError, InputShapeError
from vizcore.featurevis import atlas
from vizcore.models import graph
from vizcore.present import render

STEPS = 24
N = 300


pytestmark = pytest.mark.usefixtures("uncapped_steps")  # these tests choose their own small step counts


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return tiny_functional()


def _pooled(model: keras.Model, layer: str, x_nhwc: np.ndarray) -> np.ndarray:
    """(N, C): the layer's output by a Keras sub-model, a map averaged over positions in NumPy."""
    t = graph.trace(model)
    out = np.asarray(
        keras.Model(t.input, t[layer].output).predict(np.asarray(x_nhwc, np.float32), verbose=0), np.float64
    )
    return out.mean(axis=(1, 2)) if out.ndim == 4 else out


def _direction_by_hand(pooled: np.ndarray, d: np.ndarray, power: float) -> np.ndarray:
    d = np.asarray(d, np.float64)
    dot = (pooled * d).sum(axis=1)
    cos = dot / (np.linalg.norm(pooled, axis=1) * np.linalg.norm(d, axis=1) + 1e-4)
    return dot * np.maximum(cos, 0.1) ** power


@pytest.fixture(scope="module")
def data(model):
    """Images, labels, predictions and random 2-D coords (so the binning is checked on points of our choosing)."""
    rng = np.random.default_rng(7)
    x = rng.random((N, 12, 12, 1), dtype=np.float32)
    labels = rng.integers(0, 3, N)
    predicted = np.where(rng.random(N) < 0.7, labels, (labels + 1) % 3)
    coords = rng.normal(size=(N, 2)).astype(np.float32) * (3.0, 1.0)
    return x, labels, predicted, coords


@pytest.fixture(scope="module")
def built(model, data) -> tuple[atlas.Atlas, list]:
    """A 4x4 atlas of conv_b (features computed inside) and the progress calls it made."""
    x, labels, predicted, coords = data
    seen = []
    a = atlas.atlas(
        model,
        "conv_b",
        x,
        grid=4,
        min_points=10,
        coords=coords,
        labels=labels,
        predicted=predicted,
        class_names=("a", "b", "c"),
        steps=STEPS,
        on_progress=lambda *call: seen.append(call),
    )
    return a, seen


@pytest.fixture(scope="module")
def result(built) -> atlas.Atlas:
    return built[0]


@pytest.mark.parametrize("layer,power", [("conv_b", 0.0), ("conv_b", 1.0), ("logits", 2.0)])
def test_direction_value_is_the_pooled_dot_product_by_hand(model, layer, power):
    channels = int(graph.trace(model)[layer].output.shape[-1])
    dirs = np.random.default_rng(1).normal(size=(3, channels)).astype(np.float32)
    objective = fv.Direction(layer, tuple(map(tuple, dirs.tolist())), cossim_power=power)
    start = fv.optimize(
        model, objective, range(3), steps=0, seed=2
    )  # no step: the objective of the seeded start images
    want = _direction_by_hand(_pooled(model, layer, start.images_nhwc), dirs, power)
    np.testing.assert_allclose(start.start, want, rtol=1e-4, atol=1e-5)


def test_direction_batch_rises_and_equals_one_direction_per_call(model):
    dirs = np.abs(np.random.default_rng(3).normal(size=(4, 6))).astype(np.float32)
    objective = fv.Direction("conv_b", tuple(map(tuple, dirs.tolist())))
    batch = fv.optimize(model, objective, range(4), steps=STEPS, seed=0)
    after = _direction_by_hand(_pooled(model, "conv_b", batch.images_nhwc), dirs, 1.0)
    before = _direction_by_hand(
        _pooled(model, "conv_b", fv.optimize(model, objective, range(4), steps=0).images_nhwc), dirs, 1.0
    )
    assert (after > 2 * np.maximum(before, 1e-3)).all(), (before, after)
    np.testing.assert_allclose(batch.reached, after, rtol=1e-3, atol=1e-5)
    alone = fv.optimize(
        model, objective, [2], steps=STEPS, seed=0
    )  # image i is seeded by (seed, target): the same start
    np.testing.assert_allclose(alone.images_nhwc[0], batch.images_nhwc[2], atol=1e-4)
    with pytest.raises(ValueError, match="4 directions"):
        fv.optimize(model, objective, [4], steps=1)


def test_cells_and_counts_equal_numpy_histogram(result, data):
    coords = data[3]
    hist, _, _ = np.histogram2d(coords[:, 0], coords[:, 1], bins=4)  # [x bin, y bin]; rows of the atlas: y from the top
    by_cell = {(4 - 1 - yb, xb): int(hist[xb, yb]) for xb in range(4) for yb in range(4)}
    kept = {cell: n for cell, n in by_cell.items() if n >= 10}
    assert dict(zip(zip(result.rows.tolist(), result.cols.tolist()), result.counts.tolist())) == kept
    assert sorted(kept) == list(zip(result.rows.tolist(), result.cols.tolist()))  # row-major
    assert len(kept) < 16  # the test covers empty cells too


def test_directions_dominant_class_and_correct_share_by_hand(model, result, data):
    x, labels, predicted, _ = data
    pooled = _pooled(model, "conv_b", x)
    for k, cell in enumerate(result.rows * 4 + result.cols):
        members = [i for i in range(N) if result.cell_of[i] == cell]
        assert len(members) == result.counts[k]
        np.testing.assert_allclose(result.directions[k], pooled[members].mean(axis=0), rtol=1e-4, atol=1e-6)
        counted = Counter(int(labels[i]) for i in members)
        top = max(counted.values())
        assert result.dominant[k] == min(c for c, v in counted.items() if v == top)
        assert result.share[k] == pytest.approx(top / len(members))
        assert result.correct[k] == pytest.approx(sum(labels[i] == predicted[i] for i in members) / len(members))


def test_each_image_raises_its_cells_direction_above_start_and_noise(model, result):
    images = result.images_nhwc.astype(np.float32) / 255.0  # the model's 'unit' range
    got = _direction_by_hand(_pooled(model, "conv_b", images), result.directions, 1.0)
    noise = np.random.default_rng(11).random((len(images), 12, 12, 1), dtype=np.float32)
    on_noise = _direction_by_hand(_pooled(model, "conv_b", noise), result.directions, 1.0)
    assert (got > result.start).all() and (got > on_noise).all(), (result.start, on_noise, got)
    np.testing.assert_allclose(got, result.reached, rtol=0.05)  # reached: before the uint8 rounding


def test_progress_reports_features_then_image_steps(built):
    progress = built[1]
    stages = [s for s, _, _ in progress]
    assert stages[0] == "features" and stages[-1] == "images"
    assert stages == sorted(stages, key=["features", "images"].index)
    assert progress[-1][1:] == (STEPS, STEPS)
    assert [d for s, d, _ in progress if s == "features"][-1] == N


def test_to_image_lays_the_cells_on_the_grid(result):
    tile, pad, border = 40, 2, 3
    image = result.to_image(tile=tile, pad=pad, border=border, legend=False)
    side = 4 * (tile + pad) - pad
    assert image.shape == (side, side, 3) and image.dtype == np.uint8
    kept = set(zip(result.rows.tolist(), result.cols.tolist()))
    for r in range(4):
        for c in range(4):
            cell = image[r * (tile + pad) : r * (tile + pad) + tile, c * (tile + pad) : c * (tile + pad) + tile]
            if (r, c) not in kept:
                assert (cell == 255).all()
                continue
            k = list(zip(result.rows.tolist(), result.cols.tolist())).index((r, c))
            inner = render.resize(render.to_rgb(result.images_nhwc[k]), (tile - 2 * border, tile - 2 * border))
            half = tile // 2  # the lower half: below the class name written in the top-left corner
            np.testing.assert_array_equal(cell[half:-border, border:-border], inner[half - border :])
            assert (cell[-1, :] == atlas.PALETTE[result.dominant[k]]).all()  # the frame: the dominant class's colour
    with_legend = result.to_image(tile=tile, pad=pad, border=border)
    assert with_legend.shape[0] > side and (with_legend[:side] == image).all()


def test_errors_are_typed(model, data):
    x, labels, _, coords = data
    with pytest.raises(AtlasError, match="fewer than"):
        atlas.atlas(model, "conv_b", x[:5], coords=coords[:5], min_points=8, steps=1)
    with pytest.raises(AtlasError, match="No cell"):
        atlas.atlas(model, "conv_b", x, coords=coords, grid=16, min_points=N, steps=1)
    with pytest.raises(AtlasError, match="labels"):
        atlas.atlas(model, "conv_b", x, coords=coords, labels=labels[:10], steps=1)
    inputs = keras.Input((12, 12, 1))
    seq = keras.layers.Reshape((36, 4), name="seq")(keras.layers.Conv2D(4, 7, name="conv")(inputs))
    odd = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(seq)))
    with pytest.raises(InputShapeError, match="seq"):
        atlas.atlas(odd, "seq", x, steps=1)


def test_defaults_bound_the_work_on_large_inputs():
    small, large = graph.InputSpec(28, 28, 1), graph.InputSpec(224, 224, 3)
    assert atlas.defaults(small) == (atlas.GRID, fv.default_settings(small).steps)
    grid, steps = atlas.defaults(large)
    assert (
        grid * grid * steps <= atlas.GRID**2 * fv.default_settings(large).steps / 4
    )  # a quarter of the cell-steps, at most
