"""Embedding view: pooled layer features, PCA against an eigen-decomposition, t-SNE keeping clusters apart."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore.errors import InputShapeError
from vizcore.inspect import embedding
from vizcore.models import graph


def test_layer_features_are_the_maps_averaged_over_positions():
    model = tiny_functional()
    x = np.random.default_rng(0).uniform(size=(7, 12, 12, 1)).astype(np.float32)
    seen = []
    feats = embedding.layer_features(model, "conv_b", x, batch_size=3, on_progress=lambda d, t: seen.append(d))
    maps = np.asarray(keras.Model(graph.trace(model).input, graph.trace(model)["conv_b"].output)(x))
    np.testing.assert_allclose(feats, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert seen == [3, 6, 7]
    vec = embedding.layer_features(model, "logits", x)
    assert vec.shape == (7, 3)


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 3.0
    xy = embedding.pca(feats)
    centred = feats - feats.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    top = vectors[:, ::-1][:, :2]
    for axis in range(2):  # the same axis up to sign
        want = centred @ top[:, axis]
        np.testing.assert_allclose(np.abs(xy[:, axis]), np.abs(want), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.var(xy, axis=0, ddof=1), values[::-1][:2], rtol=1e-4)
    share = embedding.explained_variance(feats)
    np.testing.assert_allclose(share, values[::-1][:2] / values.sum(), rtol=1e-6)


def test_pca_pads_features_with_one_dimension():
    xy = embedding.pca(np.arange(5, dtype=np.float32)[:, None])
    np.testing.assert_allclose(xy[:, 1], 0.0)
    np.testing.assert_allclose(np.abs(xy[:, 0]), [2, 1, 0, 1, 2])


def test_tsne_keeps_far_clusters_apart():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 40)
    feats = rng.normal(size=(120, 10)) + labels[:, None] * 20.0
    xy = embedding.project(feats, "t-SNE", seed=0)
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    dist = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    assert (labels[dist.argmin(axis=1)] == labels).all()  # each point's nearest neighbour is in its cluster


def test_unknown_projection_and_bad_layer():
    with pytest.raises(ValueError):
        embedding.project(np.zeros((4, 2)), "MDS")
    with pytest.raises(InputShapeError):
        embedding.layer_features(tiny_functional(), "conv_b", np.zeros((2, 5, 5, 1), np.float32))


def test_layer_choices_and_default():
    model = tiny_functional()
    assert embedding.embedding_layers(model) == ("conv_a", "pool", "conv_b", "flat", "logits")
    assert embedding.default_layer(model) == "flat"  # logits has as many units as the scores


def test_default_layer_skips_a_dropout_after_the_dense_layer():
    import keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(6, name="fc")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="scores")(x))
    assert "drop" in embedding.embedding_layers(model)  # still offered
    assert embedding.default_layer(model) == "fc"
