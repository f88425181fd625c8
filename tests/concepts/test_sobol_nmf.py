"""The Sobol estimator and the factorization, against brute force and reconstruction."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vizcore import concepts
from vizcore.concepts import nmf, sobol


def _grid_total_indices(f, dim: int, side: int) -> np.ndarray:
    """ST_i = E[Var(f | x_~i)] / Var(f) by brute force on a side^dim grid of cell centres (uniform inputs)."""
    t = (np.arange(side) + 0.5) / side
    x = np.stack(np.meshgrid(*[t] * dim, indexing="ij"), axis=-1)
    values = f(x)
    return np.array([values.var(axis=i).mean() for i in range(dim)]) / values.var()


def test_jansen_total_indices_match_a_brute_force_variance_decomposition():
    def f(m):
        return m[..., 0] + 2 * m[..., 1] ** 2 + 3 * m[..., 0] * m[..., 2]

    want = _grid_total_indices(f, 3, 64)
    a, c = sobol.design(3, 4096)
    got = sobol.jansen_total(f(a), f(c))
    np.testing.assert_allclose(got, want, atol=0.01)
    assert np.argsort(got).tolist() == np.argsort(want).tolist()


def test_the_design_replicates_one_column_at_a_time():
    a, c = sobol.design(4, 32)
    assert a.shape == (32, 4) and c.shape == (4, 32, 4)
    for i in range(4):
        others = [j for j in range(4) if j != i]
        np.testing.assert_array_equal(c[i][:, others], a[:, others])
        assert not np.allclose(c[i][:, i], a[:, i])
    assert 0.0 <= a.min() and a.max() < 1.0


def test_a_variable_that_does_nothing_has_index_zero():
    a, c = sobol.design(3, 32)
    f = lambda m: np.sin(3 * m[..., 0]) + m[..., 1]  # noqa: E731
    st = sobol.jansen_total(f(a), f(c))
    assert st[2] == 0.0 and st[0] > 0.1 and st[1] > 0.1


def _tiny_tail_model() -> keras.Model:
    """A seeded 6x6 CNN whose layer 'feat' (3 ReLU channels) feeds a non-linear rest."""
    keras.utils.set_random_seed(4)
    x_in = keras.Input((6, 6, 1))
    feat = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="feat")(x_in)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="after")(feat)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax", name="pred")(x)
    return keras.Model(x_in, out)


def test_concept_importances_match_brute_force_over_the_mask_cube():
    model = _tiny_tail_model()
    rng = np.random.default_rng(0)
    u = rng.uniform(0.0, 1.0, (2, 6, 6, 3)).astype(np.float32)  # 2 images, 3 concepts at every position
    w = rng.uniform(0.0, 1.0, (3, 3)).astype(np.float32)
    conv, dense = model.get_layer("after"), model.get_layer("pred")  # the rest of the network, layer by layer

    def brute(i):
        side = 16
        t = (np.arange(side) + 0.5) / side
        grid = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
        acts = np.einsum("hwr,mr,rk->mhwk", u[i], grid, w)
        pooled = np.asarray(conv(acts.astype(np.float32))).mean(axis=(1, 2))
        logits = pooled @ dense.kernel.numpy() + dense.bias.numpy()
        values = logits[:, 1].reshape(side, side, side)
        return np.array([values.var(axis=j).mean() for j in range(3)]) / values.var()

    got = concepts.concept_importances(model, "feat", u, w, 1, nb_design=2048)
    want = np.stack([brute(0), brute(1)])
    np.testing.assert_allclose(got, want, atol=0.01)


def test_factorization_is_non_negative_and_reconstructs():
    rng = np.random.default_rng(1)
    u_true = rng.gamma(1.0, 1.0, (400, 4))
    w_true = rng.gamma(1.0, 1.0, (4, 12))
    a = (u_true @ w_true).astype(np.float32)
    f = nmf.factorize(a, 4, seed=0)
    assert f.u.shape == (400, 4) and f.w.shape == (4, 12)
    assert f.u.min() >= 0 and f.w.min() >= 0
    assert f.scale == 10.0 ** np.round(np.log10(np.sqrt(np.mean(a.astype(np.float64) ** 2))))  # RMS ~5: units of 10
    error = np.linalg.norm(a - f.scale * f.u @ f.w) / np.linalg.norm(a)
    assert error == pytest.approx(f.error, rel=1e-4)
    assert error < 0.05  # rank-4 data, 4 components (the small penalty alpha_W=0.01 keeps it above 0)
    noisy = a + rng.uniform(0, 0.5, a.shape).astype(np.float32)
    f2 = nmf.factorize(noisy, 2, seed=0)
    assert 0.05 < f2.error < 0.5  # too few components: a real, bounded error
    again = f.transform(a[:50])  # U for W fixed: the same coefficients back
    assert again.min() >= 0
    assert np.linalg.norm(f.scale * again @ f.w - a[:50]) / np.linalg.norm(a[:50]) < 0.05
    assert np.linalg.norm(again - f.u[:50]) / np.linalg.norm(f.u[:50]) < 0.1


def test_tiny_activations_are_factorized_in_their_own_units():
    """An untrained network's deep layer holds values near 1e-11: the penalty must not zero every concept."""
    rng = np.random.default_rng(2)
    a = (rng.gamma(1.0, 1.0, (300, 3)) @ rng.gamma(1.0, 1.0, (3, 8))).astype(np.float32)
    f, tiny = nmf.factorize(a, 3), nmf.factorize(a * 1e-11, 3)
    assert tiny.scale == pytest.approx(1e-11 * f.scale, rel=1e-6)
    assert tiny.error == pytest.approx(f.error, rel=1e-3) and tiny.error < 0.05
    np.testing.assert_allclose(tiny.w, f.w, rtol=1e-3, atol=1e-4)
    assert nmf.unit_of(0.614) == nmf.unit_of(3.1) == 1.0 and nmf.unit_of(3.3) == 10.0
    assert nmf.unit_of(4e-11) == pytest.approx(1e-10)


def test_factorization_refuses_negative_activations():
    with pytest.raises(ValueError, match="non-negative"):
        nmf.factorize(np.array([[1.0, -0.5], [0.2, 0.3], [0.4, 0.1]]), 1)
    with pytest.raises(ValueError, match="all zero"):
        nmf.factorize(np.zeros((4, 3)), 2)
