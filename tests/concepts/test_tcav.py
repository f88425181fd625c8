"""TCAV on the bundled shapes CNN: triangles as the concept, against closed forms and independent gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from vizcore import concepts
from vizcore.data import datasets
from vizcore.errors import ConceptError
from vizcore.models import graph

CIRCLE, SQUARE, TRIANGLE = (datasets.SHAPE_CLASSES.index(c) for c in ("circle", "square", "triangle"))


@pytest.fixture(scope="module")
def sets(shapes):
    """50 triangles as the concept, 200 random shapes (another seed), 100 test images per class."""
    tri = np.flatnonzero(shapes.y == TRIANGLE)
    concept = shapes.x_nhwc[tri[:50]]
    random = datasets.make_shapes(200, seed=7).x_nhwc
    by_class = {c: shapes.x_nhwc[np.flatnonzero(shapes.y == c)[-100:]] for c in (CIRCLE, SQUARE, TRIANGLE)}
    return concept, random, by_class


def test_triangles_score_high_and_significant_for_triangle_and_low_for_circle(shapes_cnn, sets):
    concept, random, by_class = sets
    tri = concepts.tcav(shapes_cnn, "pool2", concept, random, by_class[TRIANGLE], TRIANGLE, runs=10)
    circle = concepts.tcav(shapes_cnn, "pool2", concept, random, by_class[CIRCLE], CIRCLE, runs=10)
    assert tri.scores.shape == tri.random_scores.shape == (10,)
    assert tri.score >= 0.9 and tri.significant and tri.p_value < 0.05, (tri.score, tri.p_value)  # 1.0, p=0.008
    assert circle.score <= 0.1, circle.score  # measured 0.0
    assert 0.5 < tri.accuracy <= 1.0


def test_random_against_random_is_not_significant(shapes_cnn, sets):
    _, random, by_class = sets
    fake = datasets.make_shapes(50, seed=11).x_nhwc  # random shapes posing as a concept
    for target in (CIRCLE, SQUARE, TRIANGLE):
        t = concepts.tcav(shapes_cnn, "pool2", fake, random, by_class[target], target, runs=10)
        assert not t.significant, (target, t.score, t.p_value)


def test_directional_derivatives_match_the_dense_layer_in_closed_form(shapes_cnn, sets):
    """After pool2 the network is Flatten + Dense: d logit_c / d pool2 is the Dense kernel's column c, for any image."""
    _, random, by_class = sets
    v = np.random.default_rng(0).normal(size=(3, 13 * 13 * 10))
    d = concepts.derivatives(shapes_cnn, "pool2", by_class[SQUARE][:5], SQUARE, v)
    kernel = shapes_cnn.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(d, np.tile(kernel[:, SQUARE] @ v.T, (5, 1)), rtol=1e-4, atol=1e-5)


def test_scores_match_an_independent_gradient_at_an_earlier_layer(shapes_cnn, sets):
    concept, random, by_class = sets
    cavs = concepts.cavs(shapes_cnn, "conv2_1", concept, random, runs=4, seed=3)
    t = concepts.score(shapes_cnn, cavs, by_class[TRIANGLE], TRIANGLE)
    traced = graph.trace(shapes_cnn)
    sub = keras.Model(traced.input, [traced["conv2_1"].output, traced["logits"].output])
    x = tf.constant(by_class[TRIANGLE])
    with tf.GradientTape() as tape:
        acts, logits = sub(x)
        score = logits[:, TRIANGLE]
    grads = tape.gradient(score, acts).numpy().reshape(len(x), -1)
    np.testing.assert_allclose(t.scores, (grads @ cavs.concept.T > 0).mean(axis=0))
    np.testing.assert_allclose(t.random_scores, (grads @ cavs.random.T > 0).mean(axis=0))
    flat = lambda a: sub(a)[0].numpy().reshape(len(a), -1)  # noqa: E731
    assert np.mean(flat(concept) @ cavs.concept.T) > np.mean(flat(random) @ cavs.concept.T)  # towards the concept
    np.testing.assert_allclose(np.linalg.norm(cavs.concept, axis=1), 1.0, rtol=1e-6)


def test_a_sweep_finds_each_layers_cavs_once_and_agrees_with_single_calls(shapes_cnn, sets):
    concept, random, by_class = sets
    seen = []
    out = concepts.sweep(
        shapes_cnn,
        ["pool1", "pool2"],
        concept,
        random,
        [by_class[TRIANGLE], by_class[CIRCLE]],
        [TRIANGLE, CIRCLE],
        runs=3,
        on_progress=lambda d, t: seen.append((d, t)),
    )
    assert list(out) == ["pool1", "pool2"] and [t.target for t in out["pool2"]] == [TRIANGLE, CIRCLE]
    single = concepts.tcav(shapes_cnn, "pool1", concept, random, by_class[CIRCLE], CIRCLE, runs=3)
    np.testing.assert_array_equal(out["pool1"][1].scores, single.scores)
    assert out["pool1"][1].p_value == single.p_value
    total = 2 * (50 + 200 + 200)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    with pytest.raises(concepts.Cancelled):
        concepts.sweep(
            shapes_cnn,
            ["pool2"],
            concept,
            random,
            [by_class[TRIANGLE]],
            [TRIANGLE],
            runs=2,
            on_progress=lambda d, t: d > 0,
        )


def test_typed_errors(shapes_cnn, sets):
    concept, random, by_class = sets
    with pytest.raises(ConceptError, match="at least 5 concept images"):
        concepts.tcav(shapes_cnn, "pool2", concept[:4], random, by_class[TRIANGLE], TRIANGLE)
    with pytest.raises(ConceptError, match="at least 2 runs"):
        concepts.tcav(shapes_cnn, "pool2", concept, random, by_class[TRIANGLE], TRIANGLE, runs=1)
    with pytest.raises(ConceptError, match="target"):
        concepts.tcav(shapes_cnn, "pool2", concept, random, by_class[TRIANGLE], 3)
