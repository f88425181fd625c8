"""Robustness speed: the ε sweep batched over ε against a per-ε loop, and PGD on a 224 px network.

Rows:
* FGSM accuracy at 7 ε on the 1,000 held-out bundled digits (the MNIST CNN's test split):
  ``robustness.sweep`` (one gradient per image, every ε in one batched forward pass) against a plain
  compiled per-ε loop (a ``tf.function`` FGSM and a forward pass per ε, the whole set as one batch),
  both checked to give the same accuracies; the note gives them;
* PGD, 40 steps, one image, on an untrained MobileNetV2 224x224 (``weights=None``: ImageNet weights
  are not reachable offline; the speed does not depend on them) against ART's
  ProjectedGradientDescent with the same settings (``num_random_init=0``), checked to agree; and
  on a batch of 8 images.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np

from bench.common import ROOT, Row, timeit

AREA = "robustness"
EPSILONS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def held_out_digits():
    """The MNIST CNN's held-out 1,000 digits, as ``models/build_models.py`` splits them."""
    spec = importlib.util.spec_from_file_location("build_models", ROOT / "models" / "build_models.py")
    build_models = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["build_models"] = build_models  # dataclasses look their module up
    spec.loader.exec_module(build_models)
    return build_models.load_split("mnist_sample")[1]


def _per_eps_loop(model, x: np.ndarray, y: np.ndarray) -> list[float]:
    """The plain way: a compiled FGSM and a forward pass per ε, on the logits (the softmax layer left out)."""
    import keras
    import tensorflow as tf

    logits = keras.Model(model.input, model.get_layer("logits").output)

    @tf.function
    def fgsm(x, y, eps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits(x)))
        return tf.clip_by_value(x + eps * tf.sign(tape.gradient(loss, x)), 0.0, 1.0)

    @tf.function
    def correct(x, y):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits(x), axis=1, output_type=tf.int32), y), tf.float32))

    xt, yt = tf.constant(x), tf.constant(y, tf.int32)
    return [float(correct(fgsm(xt, yt, tf.constant(e, tf.float32)), yt)) for e in EPSILONS]


def sweep_rows() -> list[Row]:
    from vizcore import models, robustness

    model = models.open_bundled("mnist_cnn").model
    test = held_out_digits()
    x, y = np.asarray(test.x_nhwc, np.float32), test.y.astype(np.int32)
    ours = robustness.sweep(model, x, y, EPSILONS)
    plain = _per_eps_loop(model, x, y)
    assert np.allclose(ours, plain, atol=1.5 / len(x)), (ours, plain)  # one image at most, float order
    ms = timeit(lambda: robustness.sweep(model, x, y, EPSILONS), repeat=3, warmup=0)  # warm: both ran above
    base_ms = timeit(lambda: _per_eps_loop(model, x, y), repeat=3, warmup=0)
    return [
        Row(
            AREA,
            f"FGSM sweep, 7 ε, MNIST CNN, {len(x):,} held-out digits",
            ms,
            "compiled FGSM + forward per ε (whole set per call)",
            base_ms,
            "accuracy " + " ".join(f"{a:.3f}" for a in ours),
        )
    ]


def pgd_rows() -> list[Row]:
    import keras

    from vizcore import robustness
    from vizcore.models import applications, features

    model = applications.load_application("MobileNetV2", weights=None)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 224, 224, 3)).astype(np.float32)
    one = x[:1]
    options = dict(eps=0.01, step=0.001, steps=40, random_start=False, input_range="symmetric")
    start = time.perf_counter()
    ours = robustness.pgd(model, one, **options)
    cold_ms = (time.perf_counter() - start) * 1000
    ms = timeit(lambda: robustness.pgd(model, one, **options), repeat=3, warmup=0)
    batch_ms = timeit(lambda: robustness.pgd(model, x, **options), repeat=1, warmup=1)
    name = "PGD 40 steps, MobileNetV2 224 (untrained), {} image{}"
    rows = [Row(AREA, name.format(8, "s"), batch_ms, note=f"{batch_ms / 8:.0f} ms per image")]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PyTorch not found", UserWarning)
        try:
            from art.attacks.evasion import ProjectedGradientDescent
            from art.estimators.classification import TensorFlowV2Classifier
        except ImportError:  # ART is a test-only dependency (requirements-dev.txt)
            return [Row(AREA, name.format(1, ""), ms, note=f"first call {cold_ms:.0f} ms; ART not installed")] + rows
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    art = TensorFlowV2Classifier(
        features.feature_model(model).model,
        nb_classes=1000,
        input_shape=(224, 224, 3),
        clip_values=(-1.0, 1.0),
        loss_object=loss,
    )
    attack = ProjectedGradientDescent(art, eps=0.02, eps_step=0.002, max_iter=40, num_random_init=0, verbose=False)
    theirs = attack.generate(one)
    diff = float(np.abs(theirs - ours).max())
    share = float(np.mean(np.abs(theirs - ours) > 1e-6))
    art_ms = timeit(lambda: attack.generate(one), repeat=1, warmup=0)  # warm: it ran above
    note = f"first call {cold_ms:.0f} ms; vs ART: max |diff| {diff:.3g}, {share:.2%} of values differ"
    return [Row(AREA, name.format(1, ""), ms, "ART 1.20.1 PGD, same settings", art_ms, note)] + rows


def run() -> list[Row]:
    return sweep_rows() + pgd_rows()
