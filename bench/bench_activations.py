"""Activation explorer: all layers in one forward pass vs one pass per layer; grid redraw times.

On the bundled MNIST CNN and Shapes CNN, one image:

* first pass, on a model not seen before (a fresh clone each time, so nothing is cached): trace it,
  build the all-layers sub-model and run it once (what a page pays the first time it shows a
  model) vs the naive way, one sub-model and one eager pass per layer;
* warm pass (a new image on the same model): the cached all-layers sub-model vs cached per-layer
  sub-models, each compiled (the strongest form of the naive way);
* switching the shown layer or the scale mode after that is ``feature_grid`` only (NumPy), and
  the whole overview is ``overview(...).composite()``.
"""

from __future__ import annotations

import keras

from bench.common import Row, timeit
from vizcore import models
from vizcore.data import datasets
from vizcore.inspect import activations
from vizcore.models import features
from vizcore.present import grids

AREA = "activations"


def _image(name: str):
    if name == "mnist_cnn":
        return datasets.load_mnist_sample().x_nhwc[7]
    return datasets.make_shapes(1, size=64, seed=3).x_nhwc[0]


def _fresh_models(model: keras.Model, count: int) -> list[keras.Model]:
    """``count`` clones with the same weights: new models, so every per-model cache starts cold."""
    clones = []
    for _ in range(count):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        clones.append(clone)
    return clones


def _model_rows(name: str) -> list[Row]:
    loaded = models.open_bundled(name)
    model, label = loaded.model, loaded.label
    image = _image(name)
    layers = activations.activation_layers(model)
    n = len(layers)

    fresh = _fresh_models(model, 8)  # 3 timed + 1 warm-up call for each of the two ways

    def ours_cold() -> None:
        activations.get_activations(fresh.pop(), image)

    def naive_cold() -> None:
        new = fresh.pop()
        for layer in layers:
            features.feature_model(new, [layer]).predict(image[None])

    cold = timeit(ours_cold, repeat=3, warmup=1)
    cold_naive = timeit(naive_cold, repeat=3, warmup=1)

    per_layer = [features.feature_model(model, [layer]).model for layer in layers]
    batch = image[None]

    def naive_warm() -> None:
        for sub in per_layer:
            sub.predict_on_batch(batch)

    activations.get_activations(model, image)
    warm = timeit(lambda: activations.get_activations(model, image), repeat=20)
    warm_naive = timeit(naive_warm, repeat=10)

    acts = activations.get_activations(model, image)
    maps = {p: a for p, a in acts.items() if a.ndim == 3}
    biggest = max(maps, key=lambda p: maps[p].size)
    shape = "x".join(str(d) for d in maps[biggest].shape)
    bounds = grids.activation_bounds(acts, list(maps))
    rows = [
        Row(
            AREA,
            f"first pass, {n} layers, {label}",
            cold,
            f"{n} sub-models, one eager pass each",
            cold_naive,
            "build + one pass",
        ),
        Row(
            AREA, f"warm pass, {n} layers, {label}", warm, f"{n} cached compiled sub-models, one pass each", warm_naive
        ),
    ]
    for scale in ("map", "layer", "global"):
        ms = timeit(lambda s=scale: grids.feature_grid(maps[biggest], scale=s, global_bounds=bounds), repeat=20)
        rows.append(Row(AREA, f"switch layer/scale: feature_grid {biggest} {shape}, scale={scale}, {label}", ms))
    ms = timeit(lambda: grids.overview(acts, layers, scale="global").composite(), repeat=20)
    rows.append(Row(AREA, f"overview of all {n} layers as one image, {label}", ms))
    ms = timeit(lambda: [activations.channel_stats(a) for a in acts.values()], repeat=20)
    rows.append(Row(AREA, f"channel_stats of all {n} layers, {label}", ms))
    return rows


def run() -> list[Row]:
    rows: list[Row] = []
    for name in ("mnist_cnn", "shapes_cnn"):
        rows += _model_rows(name)
    return rows
