"""TCAV (Kim et al., ICML 2018): does a concept the user supplies push a class's score up?

A concept activation vector (CAV) is the normal of a linear classifier between the layer's
activations of concept images and of random images (scikit-learn's ``SGDClassifier`` with the
official TCAV / Xplique settings: hinge loss, alpha 0.01, 1,000 iterations, tol 1e-3, fit on 80%,
the other 20% giving its accuracy), on activations in units of the power of ten nearest their root
mean square (``nmf.unit_of``: the official units for a layer whose RMS is between 0.32 and 3.2), so
that the penalty weighs about the same in any layer. The TCAV score of a class is the fraction of the class's
images whose pre-softmax score rises along the CAV (a positive directional derivative
grad_layer(score) . CAV). Each run draws a fresh random set; random-against-random CAVs (two
disjoint random sets) give the scores chance alone produces, and a two-sided t-test compares
the two distributions.

Activations and gradients come from the compiled passes of ``vizcore.attribution.engines`` (one
forward and one forward + backward function per layer, cached per model), in batches.

Example:
    >>> t = tcav(model, "pool2", triangles, shapes_sample, triangles_test, target=2, runs=10)
    >>> t.score, t.p_value < 0.05, t.significant
    (0.98, True, True)
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from vizcore.attribution.cost import PASSES, pass_seconds
from vizcore.attribution.engines import DEFAULT_BATCH, engine, forward
from vizcore.attribution.progress import Progress, advance, progress_to
from vizcore.concepts.nmf import unit_of
from vizcore.errors import ConceptError
from vizcore.models import graph
from vizcore.models.batches import as_batch

SIGNIFICANCE = 0.05  # two-sided t-test level
MIN_IMAGES = 5  # per side of a CAV: 4 to fit on, 1 to check
TEST_FRACTION = 0.2
MAX_ACTIVATION_BYTES = 256 * 2**20  # the flattened activations of the concept and random images, kept for the fits


@dataclass(frozen=True, eq=False)
class Cavs:
    """Concept and random CAVs of one layer, one per run (unit vectors over the flattened activations).

    ``accuracy`` / ``random_accuracy``: held-out accuracy of each run's classifier (near 0.5: the
    layer does not separate the concept from random images).
    """

    layer: str
    concept: np.ndarray  # (runs, F)
    random: np.ndarray  # (runs, F)
    accuracy: np.ndarray  # (runs,)
    random_accuracy: np.ndarray  # (runs,)

    @property
    def runs(self) -> int:
        return len(self.concept)


@dataclass(frozen=True, eq=False)
class Tcav:
    """TCAV of one concept, layer and class.

    Attributes:
        scores: (runs,) fraction of the class's images with a positive directional derivative, per CAV.
        random_scores: (runs,) the same for random-against-random CAVs.
        p_value: two-sided t-test of ``scores`` against ``random_scores``.
        accuracy: mean held-out accuracy of the concept CAVs.
    """

    layer: str
    target: int
    scores: np.ndarray
    random_scores: np.ndarray
    p_value: float
    accuracy: float

    @property
    def score(self) -> float:
        """The mean TCAV score over runs."""
        return float(np.mean(self.scores))

    @property
    def significant(self) -> bool:
        """Whether the concept's scores differ from chance (p < 0.05)."""
        return self.p_value < SIGNIFICANCE


def _cav(pos: np.ndarray, neg: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The unit normal pointing to ``pos`` of a linear classifier, and its held-out accuracy."""
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)]
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    clf = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_fit, y_fit)
    v = clf.coef_[0].astype(np.float64)
    return v / max(np.linalg.norm(v), 1e-12), float(clf.score(x_test, y_test))


def _flat_acts(model: keras.Model, x: np.ndarray, path: str) -> np.ndarray:
    acts = forward(model, x, path)[0]
    return acts.reshape(len(acts), -1)


def _features(model: keras.Model, path: str) -> int:
    return int(np.prod(engine(model, "forward", path).layer_shape[1:]))


def fits(model: keras.Model, layer: str, n_images: int) -> bool:
    """Whether the flattened activations of ``n_images`` concept and random images at ``layer`` stay within
    ``MAX_ACTIVATION_BYTES`` (the CAV fits need them all at once)."""
    return _features(model, graph.resolve_layer(model, layer)) * n_images * 4 <= MAX_ACTIVATION_BYTES


def run_sets(
    n_concept: int, n_random: int, runs: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per run, (concept rows, random set A, random set B): m = min(n_concept, n_random // 2) rows each, A and B
    disjoint; the concept CAV separates the concept rows from A, the random CAV B from A."""
    m = min(n_concept, n_random // 2)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        pick = rng.choice(n_concept, m, replace=False)
        a, b = np.split(rng.permutation(n_random)[: 2 * m], 2)
        out.append((pick, a, b))
    return out


def cavs(
    model: keras.Model,
    layer: str,
    concept_images: np.ndarray,
    random_images: np.ndarray,
    *,
    runs: int = 10,
    seed: int = 0,
) -> Cavs:
    """One concept CAV and one random CAV per run, each on a fresh random set.

    Each run takes m = min(#concept, #random // 2) images of each set: m concept images against a
    random set A, and a disjoint random set B against A for the random CAV.

    Raises:
        ConceptError: fewer than 5 concept images or 10 random images, or runs < 2.
    """
    path = graph.resolve_layer(model, layer)
    xc, xr = as_batch(model, concept_images), as_batch(model, random_images)
    m = min(len(xc), len(xr) // 2)
    if m < MIN_IMAGES:
        raise ConceptError(
            f"TCAV needs at least {MIN_IMAGES} concept images and {2 * MIN_IMAGES} random images; "
            f"got {len(xc)} and {len(xr)}."
        )
    if runs < 2:
        raise ConceptError(f"TCAV needs at least 2 runs for its t-test, got {runs}.")
    features = _features(model, path)
    if not fits(model, path, len(xc) + len(xr)):
        raise ConceptError(
            f"The activations of {len(xc) + len(xr)} images at '{path}' ({features:,} values each) "
            f"would take more than {MAX_ACTIVATION_BYTES // 2**20} MB; use fewer images or a deeper "
            "layer."
        )
    ac, ar = _flat_acts(model, xc, path), _flat_acts(model, xr, path)
    rms = float(np.sqrt(np.mean(np.square(np.concatenate([ac, ar]), dtype=np.float64))))
    scale = unit_of(rms) if rms > 0 else 1.0
    ac, ar = ac / np.float32(scale), ar / np.float32(scale)
    out: list[tuple[np.ndarray, float, np.ndarray, float]] = []
    for run, (pick, a, b) in enumerate(run_sets(len(xc), len(xr), runs, seed)):  # the images went through above
        out.append((*_cav(ac[pick], ar[a], seed * 1000 + run), *_cav(ar[b], ar[a], seed * 1000 + runs + run)))
    v, acc, vr, acc_r = zip(*out)
    return Cavs(path, np.stack(v), np.stack(vr), np.array(acc), np.array(acc_r))


def _check_target(model: keras.Model, target: int) -> None:
    eng = engine(model, "forward")
    limit = 2 if eng.binary else eng.classes
    if not 0 <= int(target) < limit:
        raise ConceptError(f"target must be a class index in 0..{limit - 1}, got {target}.")


def derivatives(
    model: keras.Model,
    layer: str,
    class_images: np.ndarray,
    target: int,
    vectors: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Directional derivatives (N, V) of the class's pre-softmax score along each vector (V, F) at ``layer``.

    A binary head's target 1 is its logit, target 0 minus it (as the attribution methods).
    """
    path = graph.resolve_layer(model, layer)
    x = as_batch(model, class_images)
    eng = engine(model, "cam", path)
    _check_target(model, target)
    t = tf.constant(int(target), tf.int32)
    vt = tf.constant(np.asarray(vectors, np.float32).T)  # (F, V)
    parts = []
    for i in range(0, len(x), batch_size):
        grads = eng.fn(tf.constant(x[i : i + batch_size]), t)[1]
        parts.append(np.asarray(tf.reshape(grads, (tf.shape(grads)[0], -1)) @ vt))
        advance(len(x[i : i + batch_size]))
    return np.concatenate(parts) if parts else np.zeros((0, len(vectors)), np.float32)


def _t_test(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():  # scores that are all 0 or all 1 are a normal outcome, not a precision problem
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b).pvalue)
    if np.isnan(p):  # both constant: the same value is no evidence, different ones are all of it
        return 1.0 if np.isclose(np.mean(a), np.mean(b)) else 0.0
    return p


def score(model: keras.Model, c: Cavs, class_images: np.ndarray, target: int) -> Tcav:
    """TCAV scores of a class for CAVs already found (one gradient pass over the class's images)."""
    d = derivatives(model, c.layer, class_images, target, np.concatenate([c.concept, c.random]))
    positive = (d > 0).mean(axis=0)
    scores, random_scores = positive[: c.runs], positive[c.runs :]
    return Tcav(c.layer, int(target), scores, random_scores, _t_test(scores, random_scores), float(c.accuracy.mean()))


def tcav(
    model: keras.Model,
    layer: str,
    concept_images: np.ndarray,
    random_images: np.ndarray,
    class_images: np.ndarray,
    target: int,
    *,
    runs: int = 10,
    seed: int = 0,
) -> Tcav:
    """TCAV of a concept for class ``target`` at ``layer``: ``runs`` CAVs, each on a fresh random set.

    Args:
        concept_images, random_images, class_images: float32 NHWC in the model's input range.
    Raises:
        ConceptError: too few images or runs, a bad target. InputShapeError: images that do not fit.
    """
    _check_target(model, target)  # before the CAVs are fitted
    return score(model, cavs(model, layer, concept_images, random_images, runs=runs, seed=seed), class_images, target)


def cost(n_concept: int, n_random: int, n_class: int, layers: int = 1) -> int:
    """Images through the model of ``sweep`` (forward passes, and gradients for the ``n_class`` class images
    of every class together): its ``on_progress`` total."""
    return layers * (n_concept + n_random + n_class)


def sweep(
    model: keras.Model,
    layers: Sequence[str],
    concept_images: np.ndarray,
    random_images: np.ndarray,
    class_images: Sequence[np.ndarray],
    targets: Sequence[int],
    *,
    runs: int = 10,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> dict[str, list[Tcav]]:
    """TCAV at every layer for several classes: {layer: [Tcav per target]}; the CAVs of a layer are found once.

    ``class_images[i]`` are the images of ``targets[i]``. ``on_progress(done, total) -> True to cancel``
    counts images (``cost``).
    """
    if len(class_images) != len(targets):
        raise ConceptError(f"{len(class_images)} image sets for {len(targets)} classes.")
    for t in targets:
        _check_target(model, t)
    total = cost(len(concept_images), len(random_images), sum(len(x) for x in class_images), len(layers))
    out: dict[str, list[Tcav]] = {}
    with progress_to(on_progress, total):
        for layer in layers:
            c = cavs(model, layer, concept_images, random_images, runs=runs, seed=seed)
            out[c.layer] = [score(model, c, x, t) for x, t in zip(class_images, targets)]
    return out


@functools.lru_cache(maxsize=32)
def fit_seconds(features: int, m: int) -> float:
    """Seconds of one CAV fit on m against m rows of ``features`` values, measured once per size (on at most
    20,000 features, scaled linearly beyond)."""
    measured = min(features, 20_000)
    rng = np.random.default_rng(0)
    pos, neg = rng.random((m, measured), np.float32), rng.random((m, measured), np.float32)
    start = time.perf_counter()
    _cav(pos + 0.05, neg, 0)
    return (time.perf_counter() - start) * features / measured


def estimate_seconds(
    model: keras.Model, layers: Sequence[str], n_concept: int, n_random: int, n_class: int, *, runs: int = 10
) -> float:
    """An estimate of ``sweep``'s seconds on this machine: measured passes, gradients and CAV fits."""
    spec = graph.input_spec(model)
    per_pass = pass_seconds(model, (spec.height or 224, spec.width or 224))
    m = max(MIN_IMAGES, min(n_concept, n_random // 2))
    sizes = [_features(model, graph.resolve_layer(model, layer)) for layer in layers]
    fits = sum(2 * runs * fit_seconds(features, m) for features in sizes)
    return len(layers) * (n_concept + n_random + PASSES["gradient"] * n_class) * per_pass + fits
