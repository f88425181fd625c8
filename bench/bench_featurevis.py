"""Feature visualization: a whole layer as one batch vs one filter per call of the same algorithm.

Both sides run ``vizcore.featurevis.optimize`` with the same settings and seed, after a warm-up
call (the compiled graph is traced once per batch size and cached), so the figures compare
optimization, not tracing. The per-filter loop is timed on a few filters and scaled to the layer.
The sides are timed in turns and each keeps its fastest run: on a shared machine a median moves
with the neighbours' load, and taking turns lets both sides see the same load.
A third row shows what the channel slicing of the target conv layer (used on both sides) saves.
Steps follow $CONVLENS_MAX_STEPS when it is set; the row names say the steps run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from bench.common import Row

MNIST_FILTERS = 64
MNIST_LOOP_SAMPLE = 8
MOBILENET_FILTERS = 64
MOBILENET_LOOP_SAMPLE = 4
MOBILENET_STEPS = 16


def _in_turns(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Fastest wall time (ms) of each function, run in turns after one untimed call each."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], (time.perf_counter() - t0) * 1000.0)
    return best


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
    from vizcore import graph, models

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
    rows.append(Row(
        "featurevis",
        f"MNIST CNN conv2, all {MNIST_FILTERS} filters, 28x28x1, {steps} steps (the default), one batch",
        batched,
        f"same algorithm, one filter per call ({MNIST_LOOP_SAMPLE} timed, x{MNIST_FILTERS // MNIST_LOOP_SAMPLE})",
        looped / MNIST_LOOP_SAMPLE * MNIST_FILTERS,
        note="whole optimize() call, warm; fastest of 5 runs in turns",
    ))
    rows.append(Row(
        "featurevis",
        f"MNIST CNN conv2, {MNIST_FILTERS} filters, {steps} steps, one batch, each image computing its own channel only",
        batched,
        "same batch computing all 64 channels of conv2 for every image",
        full,
        note="what the channel slicing saves; same runs",
    ))

    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(128, 128, 3))
    default = fv.default_settings(graph.input_spec(mobilenet))
    settings = dataclasses.replace(default, steps=MOBILENET_STEPS)
    batched, loop = _batched_vs_loop(
        mobilenet, fv.Channel("block_6_expand_relu"), MOBILENET_FILTERS, MOBILENET_LOOP_SAMPLE, settings, repeat=2
    )
    rows.append(Row(
        "featurevis",
        f"MobileNetV2 (untrained) block_6_expand_relu, {MOBILENET_FILTERS} filters, 128x128x3, "
        f"{fv.capped_steps(MOBILENET_STEPS)} steps, one batch",
        batched,
        f"same algorithm, one filter per call ({MOBILENET_LOOP_SAMPLE} timed, x{MOBILENET_FILTERS // MOBILENET_LOOP_SAMPLE})",
        loop,
        note=f"few steps for the bench; the default at this size is {default.steps}",
    ))
    return rows
