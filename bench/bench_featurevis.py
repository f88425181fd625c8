"""Feature visualization: a whole layer as one batch vs one filter per call of the same algorithm.

Both sides run ``vizcore.featurevis.optimize`` with the same settings and seed, after a warm-up
call (the compiled graph is traced once per batch size and cached), so the figures compare
optimization, not tracing. The per-filter loop is timed on a few filters and scaled to the layer.
The sides are timed in turns and each keeps its fastest run: on a shared machine a median moves
with the neighbours' load, and taking turns lets both sides see the same load.
A third row shows what the channel slicing of the target conv layer (used on both sides) saves.
Steps follow $CONVLENS_MAX_STEPS when it is set; the row names say the steps run.

The MobileNetV2 224 rows compare with the keras.io recipe "Visualizing what convnets learn": one
filter at a time, pixels, gradient ascent with the L2-normalized gradient (step 10), a tf.function
step, 30 steps, the same seeds, at the model's 224 px. One measure for both sides' final images
(``tiled_activation``): each image mapped into the input range [-1, 1], tiled to 224 px (the loop's
already are), and the filter's mean activation over its map, border excluded. The loop's pixels
leave the range, so it is mapped both ways, clipped and min-max stretched, and ours is held to the
better of the two; ours stay inside the range by construction (either mapping leaves them nearly
unchanged). Timed in turns, medians of 3 warm calls.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

from bench.common import FIRST_ROWS_ONLY, ROOT, Row

# `CONVLENS_BENCH_KERAS_IO_ONLY=1 python -m bench featurevis`: only the MobileNetV2 224 rows against the keras.io loop
KERAS_IO_ONLY = os.environ.get("CONVLENS_BENCH_KERAS_IO_ONLY") == "1"
GALLERY_PNG = ROOT / "docs" / "screenshots" / "featurevis_mobilenetv2_224_gallery.png"

MNIST_FILTERS = 64
MNIST_LOOP_SAMPLE = 8
MOBILENET_FILTERS = 64
MOBILENET_LOOP_SAMPLE = 4
MOBILENET_STEPS = 16
KERAS_IO_LAYER = "block_1_project"
KERAS_IO_STEPS = 30
KERAS_IO_FILTERS = 24
GALLERY_FILTERS = 16


def keras_io_loop(
    model, layer: str, filters, *, steps: int = KERAS_IO_STEPS, seed: int = 0, learning_rate: float = 10.0
):
    """The keras.io recipe, one filter at a time: images (N, H, W, C) in the model's range [-1, 1] (unclipped)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from vizcore.models import graph

    traced = graph.trace(model)
    extractor = keras.Model(traced.input, traced[graph.resolve_layer(model, layer)].output)

    @tf.function
    def step(img, f):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = tf.reduce_mean(tf.gather(extractor(img)[:, 2:-2, 2:-2, :], f, axis=3))
        return img + learning_rate * tf.math.l2_normalize(tape.gradient(loss, img))

    spec = graph.input_spec(model)
    out = []
    for f in filters:
        rng = np.random.default_rng([seed, int(f)])
        img = tf.constant(((rng.random((1, spec.height, spec.width, spec.channels)) - 0.5) * 0.25).astype(np.float32))
        index = tf.constant(int(f))
        for _ in range(steps):
            img = step(img, index)
        out.append(img[0].numpy())
    return np.stack(out)


def filter_means(model, layer: str, images_nhwc, filters):
    """Mean activation of filter i on image i (border excluded), at the image's own size."""
    import numpy as np
    import tensorflow as tf

    from vizcore.featurevis import objectives, slicing
    from vizcore.models import graph

    path = graph.resolve_layer(model, layer)
    acts = slicing.layers_model(model, (path,), False)(tf.constant(images_nhwc, tf.float32))[0][path]
    maps = objectives.crop_border(acts, None).numpy()
    return maps[np.arange(len(filters)), :, :, list(filters)].mean(axis=(1, 2))


def _in_turns(fns: list[Callable[[], object]], repeat: int, stat: Callable[[list[float]], float] = min) -> list[float]:
    """Wall time (ms) of each function, run in turns after one untimed call each: the fastest, or ``stat``."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t0) * 1000.0)
    return [stat(t) for t in times]


def _batched_vs_loop(model, objective, filters, sample, settings, repeat):
    from vizcore import featurevis as fv

    def batch():
        fv.optimize(model, objective, range(filters), settings=settings)

    def loop():
        for f in range(sample):
            fv.optimize(model, objective, [f], settings=settings)

    batched, looped = _in_turns([batch, loop], repeat)
    return batched, looped / sample * filters


def run() -> list[Row]:
    import keras

    from vizcore import featurevis as fv
    from vizcore import models
    from vizcore.models import graph

    if KERAS_IO_ONLY:
        return keras_io_rows()
    rows = []
    mnist = models.open_bundled("mnist_cnn")
    settings = fv.default_settings(mnist.spec)
    steps = fv.capped_steps(settings.steps)
    objective = fv.Channel("conv2")

    def batch():
        fv.optimize(mnist, objective, range(MNIST_FILTERS), settings=settings)

    def loop():
        for f in range(MNIST_LOOP_SAMPLE):
            fv.optimize(mnist, objective, [f], settings=settings)

    def whole_layer():  # 1.0 * Channel is a Sum, which reads the whole layer: no channel slicing
        fv.optimize(mnist, 1.0 * objective, range(MNIST_FILTERS), settings=settings)

    batched, looped, full = _in_turns([batch, loop, whole_layer], repeat=5)
    rows.append(
        Row(
            "featurevis",
            f"MNIST CNN conv2, all {MNIST_FILTERS} filters, 28x28x1, {steps} steps (the default), one batch",
            batched,
            f"same algorithm, one filter per call ({MNIST_LOOP_SAMPLE} timed, x{MNIST_FILTERS // MNIST_LOOP_SAMPLE})",
            looped / MNIST_LOOP_SAMPLE * MNIST_FILTERS,
            note="whole optimize() call, warm; fastest of 5 runs in turns",
        )
    )
    rows.append(
        Row(
            "featurevis",
            f"MNIST CNN conv2, {MNIST_FILTERS} filters, {steps} steps, one batch, "
            "each image computing its own channel only",
            batched,
            "same batch computing all 64 channels of conv2 for every image",
            full,
            note="what the channel slicing saves; same runs",
        )
    )

    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(128, 128, 3))
    default = fv.default_settings(graph.input_spec(mobilenet))
    settings = dataclasses.replace(default, steps=MOBILENET_STEPS)
    batched, loop = _batched_vs_loop(
        mobilenet, fv.Channel("block_6_expand_relu"), MOBILENET_FILTERS, MOBILENET_LOOP_SAMPLE, settings, repeat=2
    )
    rows.append(
        Row(
            "featurevis",
            f"MobileNetV2 (untrained) block_6_expand_relu, {MOBILENET_FILTERS} filters, 128x128x3, "
            f"{fv.capped_steps(MOBILENET_STEPS)} steps, one batch",
            batched,
            f"same algorithm, one filter per call "
            f"({MOBILENET_LOOP_SAMPLE} timed, x{MOBILENET_FILTERS // MOBILENET_LOOP_SAMPLE})",
            loop,
            note=f"few steps for the bench; the default at this size is {default.steps}",
        )
    )
    if not FIRST_ROWS_ONLY:
        rows += keras_io_rows()
    return rows


def tiled_activation(model, layer: str, images_nhwc, filters, mapping: str = "clip"):
    """Mean activation of filter i on image i, the image mapped into [-1, 1] ('clip', or 'minmax' per
    image) and tiled to the model's input size; border excluded as ``Channel`` does."""
    import numpy as np

    x = np.asarray(images_nhwc, np.float32)
    if mapping == "minmax":
        low, high = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
        x = -1.0 + 2.0 * (x - low) / np.maximum(high - low, 1e-12)
    else:
        x = np.clip(x, -1.0, 1.0)
    spec_h, spec_w = model.input_shape[1:3]
    h, w = x.shape[1:3]
    x = np.tile(x, (1, -(-spec_h // h), -(-spec_w // w), 1))[:, :spec_h, :spec_w]
    return filter_means(model, layer, x, filters)


def keras_io_rows() -> list[Row]:
    """MobileNetV2 224 (untrained, seeded) against the keras.io per-filter loop, in one run, in turns."""
    import statistics

    import keras
    import numpy as np

    from vizcore import featurevis as fv

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    layer, filters = KERAS_IO_LAYER, list(range(KERAS_IO_FILTERS))
    objective = fv.Channel(layer)
    default = fv.layer_settings(model, objective)  # what optimize() and the Filters page use: a tiled texture
    found = {}

    def run(name, fn):
        def timed():
            found[name] = fn()

        return timed

    def ours(targets, steps=None):
        return lambda: fv.optimize(model, objective, targets, steps=steps, preprocess="symmetric")

    fns = [
        run("loop", lambda: keras_io_loop(model, layer, filters)),
        run("default", ours(filters)),
        run("at30", ours(filters, KERAS_IO_STEPS)),
        run("loop1", lambda: keras_io_loop(model, layer, [0])),
        run("default1", ours([0])),
    ]
    loop, default_ms, at30_ms, loop1, default1 = _in_turns(fns, repeat=3, stat=statistics.median)
    images = {k: v if k.startswith("loop") else v.images_nhwc for k, v in found.items()}
    act = {
        (k, m): tiled_activation(model, layer, images[k], filters, m)
        for k in ("loop", "default", "at30")
        for m in ("clip", "minmax")
    }
    bar_mapping = max(("clip", "minmax"), key=lambda m: act["loop", m].mean())
    bar = act["loop", bar_mapping]

    def versus(k):
        mine = act[k, "clip"]
        return (
            f"mean activation tiled to 224 px {mine.mean():.5f} ({act[k, 'minmax'].mean():.5f} min-max) = "
            f"{mine.mean() / bar.mean():.2f}x the loop's {bar.mean():.5f} ({bar_mapping}; "
            f"{act['loop', 'clip'].mean():.5f} clipped, {act['loop', 'minmax'].mean():.5f} min-max); "
            f">= the loop on {(mine >= bar).sum()}/{len(filters)} filters; "
            f"in range: {bool(np.abs(images[k]).max() <= 1.0)}"
        )

    gallery = fv.optimize(model, objective, range(GALLERY_FILTERS), preprocess="symmetric")  # traces once
    gallery_ms = _in_turns([lambda: fv.optimize(model, objective, range(GALLERY_FILTERS), preprocess="symmetric")], 1)[
        0
    ]
    side = gallery.images_nhwc.shape[1]
    _save_gallery(gallery)
    name = f"MobileNetV2 224 (untrained) {layer}"
    steps = fv.capped_steps(default.steps)
    return [
        Row(
            "featurevis",
            f"{name}, {len(filters)} filters, default settings ({steps} steps, {_recipe(gallery.settings)}, "
            f"{side} px), one batch",
            default_ms,
            f"keras.io per-filter loop, {KERAS_IO_STEPS} steps, 224 px",
            loop,
            note=versus("default") + f"; time {default_ms / loop:.2f}x the loop's",
        ),
        Row(
            "featurevis",
            f"{name}, {len(filters)} filters, {fv.capped_steps(KERAS_IO_STEPS)} steps (the loop's), one batch",
            at30_ms,
            "keras.io per-filter loop, same run",
            loop,
            note=versus("at30") + f"; time {at30_ms / loop:.2f}x the loop's",
        ),
        Row(
            "featurevis",
            f"{name}, 1 filter, default settings ({steps} steps)",
            default1,
            f"keras.io loop, 1 filter, {KERAS_IO_STEPS} steps",
            loop1,
        ),
        Row(
            "featurevis",
            f"{name}, {GALLERY_FILTERS}-filter gallery, default settings ({steps} steps, {side} px)",
            gallery_ms,
            "goal: 30 s on 2 cores",
            30_000.0,
            note=f"dead {int(gallery.dead.sum())}; {GALLERY_PNG.name}",
        ),
    ]


def _recipe(settings) -> str:
    param = settings.param
    kind = f"a {param.period} px tile of {param.inner.name}s" if param.name == "tiled" else param.name
    return ", ".join([kind, f"lr {settings.learning_rate:g}", *(repr(t) for t in settings.transforms)])


def _save_gallery(result) -> None:
    """The gallery as one PNG (2 rows of 8, each tile 4x), written atomically."""
    import numpy as np
    from PIL import Image

    from vizcore import featurevis as fv
    from vizcore.present import render

    tiles = fv.to_uint8(result.images_nhwc, result.input_range)
    tiles = np.stack([render.resize(t, (4 * t.shape[0], 4 * t.shape[1]), smooth=False) for t in tiles])
    tmp = GALLERY_PNG.with_suffix(".tmp.png")
    Image.fromarray(render.montage(tiles, columns=8, pad=4)).save(tmp)
    tmp.replace(GALLERY_PNG)
