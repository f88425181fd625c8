"""Attribution speed: compiled and cached tf.functions against eager GradientTape code, batching against loops.

Rows:
* Grad-CAM, warm, on the bundled MNIST CNN and on an untrained MobileNetV2 224x224: the compiled
  pipeline (``vizcore.attribution.gradcam``) against an eager GradientTape implementation of the
  same method on the same input and sub-model;
* SmoothGrad (Saliency), 16 samples as one batch against a loop of 16 single gradient calls;
* every method of ``METHODS`` once (warm) on the MNIST CNN;
* Guided Backprop, Guided Grad-CAM, EigenCAM and RISE (warm, defaults) on MobileNetV2 224x224;
* LIME with 500 samples on the MNIST CNN and on an untrained MobileNetV2 224x224 (LIME's quickshift):
  batches of 32 against one forward pass per sample (``batch_size=1``);
* interactive occlusion (``interactive.occlude_boxes``: one box -> probabilities + Grad-CAM in one
  pass) on the MNIST CNN and MobileNetV2 224x224, against two separate calls; the page's goal is
  under 100 ms per update.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import FIRST_ROWS_ONLY, Row, timeit


def _eager_gradcam(fm, x_nhwc, target: int) -> np.ndarray:
    """Grad-CAM with an eager GradientTape: the textbook code a page would otherwise hold."""
    import tensorflow as tf

    from vizcore.attribution import normalize_map
    from vizcore.present.render import resize_map

    x = tf.constant(x_nhwc)
    with tf.GradientTape() as tape:
        acts, scores = fm.model(x, training=False)
        score = scores[:, target]
    grads = tape.gradient(score, acts)
    weights = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nk,nhwk->nhw", weights, acts))[0].numpy()
    return normalize_map(resize_map(cam, x_nhwc.shape[1:3]))


def _gradcam_rows(label: str, model, x_hwc: np.ndarray, repeat: int) -> list[Row]:
    from vizcore.attribution import gradcam, resolve_target
    from vizcore.models import features, graph

    layer = graph.last_conv_layer(model)
    target = resolve_target(model, x_hwc)
    start = time.perf_counter()
    compiled_map = gradcam(model, x_hwc, target=target, layer=layer)  # first call: builds and traces
    cold_ms = (time.perf_counter() - start) * 1000
    fm = features.feature_model(model, [layer])
    eager_map = _eager_gradcam(fm, x_hwc[None], target)
    assert np.allclose(compiled_map, eager_map, atol=1e-4), "compiled and eager Grad-CAM disagree"
    ms = timeit(lambda: gradcam(model, x_hwc, target=target, layer=layer), repeat=repeat)
    eager_ms = timeit(lambda: _eager_gradcam(fm, x_hwc[None], target), repeat=repeat)
    return [
        Row(
            "attribution",
            f"Grad-CAM warm, {label}",
            ms,
            "eager GradientTape, same input",
            eager_ms,
            f"first call {cold_ms:.0f} ms, layer {layer}",
        )
    ]


NEW_METHODS = ("Guided Backprop", "Guided Grad-CAM", "EigenCAM", "RISE")


def _new_method_rows(label: str, model, x_hwc: np.ndarray, *, repeat: int = 3, n_masks: int | None = None) -> list[Row]:
    """Warm time of each newer method with its defaults (``n_masks`` overrides RISE's, for a quick check)."""
    from vizcore.attribution import METHOD_INFO

    rows = []
    for name in NEW_METHODS:
        info = METHOD_INFO[name]
        opts = {"n_masks": n_masks} if name == "RISE" and n_masks else {}
        info.fn(model, x_hwc, **({**opts, "n_masks": 32} if name == "RISE" else opts))  # warm: builds and traces
        ms = timeit(lambda: info.fn(model, x_hwc, **opts), repeat=repeat, warmup=0)
        cost = info.cost_of(model, x_hwc.shape[:2], **opts)
        rows.append(Row("attribution", f"{name}, {label} (warm)", ms, note=f"{cost}"))
    return rows


def _lime_row(label: str, model, x_hwc: np.ndarray, repeat: int, **options) -> Row:
    import importlib

    lime = importlib.import_module("vizcore.attribution.lime")  # the package's `lime` name is free for the module
    fit = lime.explain(model, x_hwc, samples=500, **options)  # warm: traces the forward pass once
    batched = timeit(lambda: lime.explain(model, x_hwc, samples=500, **options), repeat=repeat, warmup=0)
    single = timeit(lambda: lime.explain(model, x_hwc, samples=500, batch_size=1, **options), repeat=1, warmup=0)
    return Row(
        "attribution",
        f"LIME 500 samples, batches of 32, {label}",
        batched,
        "one forward pass per sample",
        single,
        f"{len(fit.weights)} superpixels, R² {fit.r2:.2f}",
    )


def _occlusion_rows(label: str, model, x_hwc: np.ndarray, repeat: int) -> list[Row]:
    from vizcore.attribution import gradcam, resolve_target
    from vizcore.attribution.interactive import occlude, occlude_boxes
    from vizcore.models import blocks, predict

    layer = blocks.default_target_layer(model)
    target = resolve_target(model, x_hwc)
    h, w = x_hwc.shape[:2]
    boxes = [
        [(h // 4 + i % 3, w // 4, h // 2 + i % 3, w // 2)] for i in range(repeat + 2)
    ]  # a box that moves, as a drag does
    it = iter(boxes * 4)
    occlude_boxes(model, x_hwc, next(it), target=target, layer=layer)  # warm
    ms = timeit(lambda: occlude_boxes(model, x_hwc, next(it), target=target, layer=layer), repeat=repeat)

    def separate():
        occluded = occlude(x_hwc, next(it))
        return predict.image_probabilities(model, occluded), gradcam(model, occluded, target=target, layer=layer)

    separate_ms = timeit(separate, repeat=repeat)
    return [
        Row(
            "attribution",
            f"Interactive occlusion update, {label}",
            ms,
            "probabilities + Grad-CAM as two calls",
            separate_ms,
            f"goal < 100 ms; layer {layer}",
        )
    ]


def run() -> list[Row]:
    import keras

    from vizcore import models
    from vizcore.attribution import METHOD_INFO, METHODS, noisy_copies, smoothgrad_saliency
    from vizcore.data import datasets
    from vizcore.models import features

    rows: list[Row] = []
    mnist = models.open_bundled("mnist_cnn").model
    x = np.array(datasets.load_mnist_sample().x_nhwc[4321])
    rows += _gradcam_rows("MNIST CNN 28x28", mnist, x, repeat=50)

    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None)
    x224 = np.random.default_rng(0).uniform(-1, 1, (224, 224, 3)).astype(np.float32)
    rows += _gradcam_rows("MobileNetV2 224x224 untrained", mobilenet, x224, repeat=10)
    if not FIRST_ROWS_ONLY:
        rows += _new_method_rows("MobileNetV2 224x224 untrained", mobilenet, x224, repeat=3)
        rows.append(_lime_row("MNIST CNN 28x28", mnist, x, repeat=5))
        rows.append(_lime_row("MobileNetV2 224x224 untrained", mobilenet, x224, repeat=2, segmentation="quickshift"))
        rows += _occlusion_rows("MNIST CNN 28x28", mnist, x, repeat=30)
        rows += _occlusion_rows("MobileNetV2 224x224 untrained", mobilenet, x224, repeat=10)

    target = int(np.argmax(features.feature_model(mnist).predict(x[None])[1]))
    smoothgrad_saliency(mnist, x, target=target)  # warm
    batched = timeit(lambda: smoothgrad_saliency(mnist, x, target=target, samples=16), repeat=20)

    def loop():
        single = METHOD_INFO["Saliency"].batch  # one image at a time, as a loop would
        return np.mean([single(mnist, xi[None], target=target)[0] for xi in noisy_copies(x, 16, 0.15, 0)], axis=0)

    looped = timeit(loop, repeat=20)
    rows.append(
        Row(
            "attribution",
            "SmoothGrad (Saliency) 16 samples, one batch, MNIST CNN",
            batched,
            "loop of 16 single gradient calls",
            looped,
        )
    )

    for label, fn in METHODS.items():
        fn(mnist, x)  # warm: traces once per model, layer and kind
        ms = timeit(lambda fn=fn: fn(mnist, x), repeat=9, warmup=0)
        rows.append(Row("attribution", f"{label}, MNIST CNN 28x28 (warm)", ms, note="defaults"))
    return rows
