"""LIME against the `lime` package itself (same superpixels, same samples -> same weights), and on the pages."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from helpers import ROOT, tiny_functional
from lime.lime_base import LimeBase
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.attribution import METHOD_INFO, METHODS, AttributionError, normalize_map
from vizcore.attribution.engines import batch_for
from vizcore.attribution.metrics import deletion_curve, pointing_game, random_map
from vizcore.data import datasets

L = importlib.import_module("vizcore.attribution.lime")


@pytest.fixture(scope="module")
def shapes_model():
    return models.open_bundled("shapes_cnn").model


@pytest.fixture(scope="module")
def mnist_model():
    return models.open_bundled("mnist_cnn").model


@pytest.fixture(scope="module")
def shapes():
    return datasets.make_shapes(40, size=64, seed=2)  # held out: the model was trained on seed 1


def first_digit() -> np.ndarray:
    ds = datasets.load_mnist_sample()
    return ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]]


def unsure_digit(model) -> np.ndarray:
    """The first sample digit the MNIST CNN gives 50-95 %: its probabilities move when superpixels go."""
    x_nhwc = datasets.load_mnist_sample().x_nhwc[:500]
    top = model.predict(x_nhwc, verbose=0).max(axis=1)
    return x_nhwc[np.flatnonzero((top > 0.5) & (top < 0.95))[0]]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two label images cut the image into the same regions (labels may be numbered differently)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(pairs[0]) == len(np.unique(a)) == len(np.unique(b))


# ----------------------------------------------------------------------------- the fit and the superpixels


def test_weighted_ridge_equals_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (200, 12)).astype(np.float64)
    y = x @ rng.normal(size=12) + rng.normal(scale=0.3, size=200)
    w = rng.random(200)
    fit = L.weighted_ridge(x, y, w, alpha=1.0)
    ref = Ridge(alpha=1.0, fit_intercept=True).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-9, atol=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept_, rel=1e-9)
    assert fit.r2 == pytest.approx(ref.score(x, y, sample_weight=w), rel=1e-9)
    assert 0.5 < fit.r2 < 1.0  # a noisy linear target: a good fit, not a perfect one


@pytest.mark.parametrize(
    "kind, params",
    [
        ("quickshift", {"kernel_size": 4, "max_dist": 200, "ratio": 0.2, "rng": 0}),
        ("slic", {"n_segments": 50, "compactness": 20.0, "start_label": 0}),
    ],
)
def test_superpixels_are_limes_segmentation(kind, params):
    x = datasets.make_shapes(1, size=224, seed=4).x_nhwc[0].astype(np.float64)
    x = (x - x.min()) / np.ptp(x)  # already [0, 1]: our scaling for the segmentation is then the identity
    ours = L.segment(x, kind, superpixels=50, seed=0)
    reference = SegmentationAlgorithm(kind, **params)(x)
    assert same_partition(ours, reference)
    assert ours.dtype == np.int32 and ours.min() == 0 and set(np.unique(ours)) == set(range(ours.max() + 1))
    assert 20 <= ours.max() + 1 <= 120  # LIME's settings give tens of superpixels at 224 px


def test_small_images_still_get_several_superpixels():
    mnist, shape = first_digit(), datasets.make_shapes(1, size=64, seed=2).x_nhwc[0]
    assert L.segment(mnist, "quickshift").max() + 1 >= 4 and L.segment(mnist).max() + 1 >= 20  # SLIC by default
    assert L.segment(shape, "quickshift").max() + 1 >= 20  # LIME's kernel of 4 would leave 64 px images with a handful
    with pytest.raises(AttributionError, match="segmentation"):
        L.segment(mnist, "felzenszwalb")


# ----------------------------------------------------------------------------- against the lime package


@pytest.mark.parametrize("name, segmentation, fill", [("shapes_cnn", "quickshift", 0.0), ("mnist_cnn", "slic", "mean")])
def test_same_superpixels_and_seed_give_the_lime_packages_weights(name, segmentation, fill):
    model = models.open_bundled(name).model
    x = datasets.make_shapes(3, size=64, seed=2).x_nhwc[1] if name == "shapes_cnn" else unsure_digit(model)
    target = int(np.argmax(model.predict(x[None], verbose=0)[0]))  # the others' probabilities stay near 0
    fit = L.explain(model, x, target=target, samples=400, segmentation=segmentation, fill=fill, seed=3, batch_size=64)

    seen = []

    def classifier(batch_nhwc):  # lime turns grey images into RGB; the model sees its own channel count
        batch = np.asarray(batch_nhwc, np.float32)[..., : x.shape[-1]]
        seen.append(batch)
        return model.predict(
            batch, verbose=0
        )  # the models end in softmax: lime's classifier_fn, independent of vizcore

    explainer = LimeImageExplainer(kernel_width=0.25, random_state=3)
    image = x if x.shape[-1] == 3 else x[..., 0]
    ref = explainer.explain_instance(
        image,
        classifier,
        labels=(target,),
        hide_color=None if fill == "mean" else fill,
        top_labels=None,
        num_samples=400,
        batch_size=50,
        segmentation_fn=lambda _: fit.segments_hw,
        random_seed=0,
    )
    images = np.concatenate(seen)
    assert len(images) == fit.samples == 400
    np.testing.assert_array_equal(images[0], x)  # the first sample is the image itself
    hidden = L.hidden_image(x, fit.segments_hw, fill)
    np.testing.assert_allclose(
        L.perturbed(x, hidden, fit.segments_hw, fit.on_ns), images, atol=1e-6
    )  # the same samples
    np.testing.assert_allclose(fit.probabilities, model.predict(images, verbose=0)[:, target], atol=1e-5)

    weights = dict(ref.local_exp[target])
    assert sorted(weights) == list(range(len(fit.weights)))
    expected = np.array([weights[s] for s in range(len(fit.weights))])
    np.testing.assert_allclose(fit.weights, expected, rtol=1e-3, atol=1e-6)
    assert fit.intercept == pytest.approx(ref.intercept[target], abs=1e-5)
    assert fit.r2 == pytest.approx(ref.score, abs=1e-4)
    assert np.abs(expected).max() > 1e-3  # the superpixels matter: the comparison is not of zeros


def test_the_same_data_gives_lime_bases_fit(mnist_model):
    x = unsure_digit(mnist_model)
    fit = L.explain(mnist_model, x, samples=300, segmentation="slic", seed=1)
    distances = pairwise_distances(fit.on_ns, fit.on_ns[:1], metric="cosine").ravel()
    np.testing.assert_allclose(fit.distances, distances, atol=1e-12)
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2)), random_state=0)
    intercept, pairs, score, local_pred = base.explain_instance_with_data(
        fit.on_ns, fit.probabilities[:, None], distances, 0, num_features=100_000
    )
    np.testing.assert_allclose(fit.weights, [w for _, w in sorted(pairs)], rtol=1e-6, atol=1e-9)
    assert np.abs(fit.weights).max() > 1e-2
    assert (fit.intercept, fit.r2) == (pytest.approx(intercept, abs=1e-9), pytest.approx(score, abs=1e-9))
    assert fit.intercept + fit.weights.sum() == pytest.approx(local_pred[0], abs=1e-9)

    segments = fit.segments_hw  # the first samples, built pixel by pixel: hidden superpixels show 0 by default
    for row, p in zip(fit.on_ns[:8], fit.probabilities[:8]):
        image = x.copy()
        for s in np.flatnonzero(row == 0):
            image[segments == s] = 0.0
        assert p == pytest.approx(mnist_model.predict(image[None], verbose=0)[0, fit.target], abs=1e-5)


# ----------------------------------------------------------------------------- the method


def test_the_method_is_the_fits_positive_part_with_progress_seed_and_cost(mnist_model):
    x = first_digit()
    calls = []
    fit = L.explain(
        mnist_model, x, samples=100, batch_size=32, on_progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(32, 100), (64, 100), (96, 100), (100, 100)]
    assert fit.target == int(np.argmax(mnist_model.predict(x[None], verbose=0)))
    heatmap = METHODS["LIME"](mnist_model, x, samples=100)
    np.testing.assert_allclose(heatmap, normalize_map(np.maximum(fit.weights[fit.segments_hw], 0)), atol=1e-6)
    np.testing.assert_array_equal(heatmap, fit.heatmap_hw)
    assert heatmap.max() == 1.0 and not np.array_equal(heatmap, METHODS["LIME"](mnist_model, x, samples=100, seed=1))

    both = []
    raw = METHOD_INFO["LIME"].batch(
        mnist_model, np.stack([x, x[::-1]]), samples=50, on_progress=lambda d, t: both.append((d, t))
    )
    first = min(50, batch_for(mnist_model))  # the default chunk is the model's (MNIST CNN: 256, so all 50 at once)
    assert raw.shape == (2, 28, 28) and both[-1] == (100, 100) and both[0] == (first, 100)
    np.testing.assert_allclose(raw[0], L.explain(mnist_model, x, samples=50).raw_hw)  # signed, before the display rule
    assert raw[0].min() < 0 < raw[0].max()

    info = METHOD_INFO["LIME"]
    assert (
        str(info.cost_of(mnist_model, (28, 28))) == "300 forward passes"
        and info.cost_of(mnist_model, (224, 224), samples=1000).count == 1000
    )
    assert {o.name for o in info.options} == {
        "samples",
        "segmentation",
        "superpixels",
        "fill",
        "seed",
    } and not info.uses_layer
    for bad, match in (
        ({"samples": 1}, "samples"),
        ({"fill": "blur"}, "fill"),
        ({"segmentation": "grid"}, "segmentation"),
    ):
        with pytest.raises(AttributionError, match=match):
            METHODS["LIME"](mnist_model, x, **bad)


def test_a_fill_value_on_a_grey_model():
    model = tiny_functional(channels=1, classes=3)
    x = np.random.default_rng(2).random((12, 12, 1)).astype(np.float32)
    fit = L.explain(model, x, samples=60, fill=0.25, superpixels=9)
    off = np.flatnonzero(fit.on_ns[5] == 0)
    image = np.where(np.isin(fit.segments_hw, off)[..., None], 0.25, x).astype(np.float32)
    probs = np.asarray(model.predict(image[None], verbose=0))[0]
    assert fit.probabilities[5] == pytest.approx(probs[fit.target], abs=1e-5)


# ----------------------------------------------------------------------------- the view


def test_view_marks_the_k_strongest_superpixels_of_each_sign(shapes_model, shapes):
    fit = L.explain(shapes_model, shapes.x_nhwc[0], target=int(shapes.y[0]), samples=300)
    v = L.view(fit, 3)
    w = fit.weights
    top = set(np.argsort(w)[::-1][:3]) if (np.sort(w)[::-1][:3] > 0).all() else None
    bottom = set(np.argsort(w)[:3])
    assert top is not None and (w[list(bottom)] < 0).all()  # this fit has 3 of each sign
    np.testing.assert_array_equal(v.mask_hw == 1, np.isin(fit.segments_hw, list(top)))
    np.testing.assert_array_equal(v.mask_hw == -1, np.isin(fit.segments_hw, list(bottom)))
    assert set(v.positive) == top and w[v.positive[0]] == w.max() and w[v.negative[0]] == w.min()
    assert (v.r2, v.samples) == (fit.r2, 300) and v.segments_hw is fit.segments_hw

    shown = L.mask_image(np.rint(shapes.x_nhwc[0] * 255).astype(np.uint8), v)
    assert shown.shape == (64, 64, 3) and shown.dtype == np.uint8
    green, red = shown[v.mask_hw == 1].mean(axis=0), shown[v.mask_hw == -1].mean(axis=0)
    assert green[1] > green[0] and red[0] > red[1]
    assert not L.view(fit, 0).mask_hw.any()


# ----------------------------------------------------------------------------- fidelity on the shapes model


def test_pointing_game_beats_a_random_map(shapes_model, shapes):
    lime_hits = pointing_game(shapes_model, shapes, METHODS["LIME"], 40)
    random_hits = pointing_game(shapes_model, shapes, random_map, 40)
    assert lime_hits > random_hits and lime_hits >= 0.8  # measured: 1.0 against 0.25
    auc = {
        name: np.mean(
            [
                deletion_curve(shapes_model, x, fn(shapes_model, x, target=int(y)), target=int(y)).auc
                for x, y in zip(shapes.x_nhwc[:10], shapes.y[:10])
            ]
        )
        for name, fn in (("LIME", METHODS["LIME"]), ("Random", random_map))
    }
    assert auc["LIME"] < auc["Random"] - 0.2  # the probability falls much faster when LIME's superpixels go


# ----------------------------------------------------------------------------- the page


def test_lime_on_the_attribution_page(mnist_model):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/attribution.py").run()
    at.multiselect(key="attr.methods").set_value(["Grad-CAM", "LIME"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("LIME 300 forward passes" in c.value for c in at.caption)
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("LIME ·") for c in captions) and any(c.startswith("Top ") for c in captions)
    x = first_digit()
    fit = L.explain(mnist_model, x)  # the page's default input, its top class, the default options
    summary = next(c.value for c in at.caption if "Weighted R²" in c.value)
    assert f"{fit.r2:.3f} · 300 samples · {len(fit.weights)} superpixels" in summary
    at.slider(key="attr.lime.k").set_value(1).run()
    assert not at.exception and any(c.startswith("Top 1 for") for img in at.get("image") for c in img.captions)
