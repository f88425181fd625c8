"""Teach: 50 epochs of the head on cached features against one pass of the base over the same images (goal: <= 3x),
and the same run with a pass of the base per epoch, for comparison.

Teachable Machine's base, MobileNetV2 alpha 0.35 at 224x224 (untrained here: no network for the ImageNet
weights, and the weights do not change the time), 96 photos of 3 classes, its recipe (batch 16, Adam
1e-3, 15% validation). "One base pass" is ``transfer.extract`` over all 96 images (eager, batches of 32),
warm. The per-epoch baseline is the same model (frozen base + head) fitted on the images with Keras,
so every epoch runs the base over the 81 training and 15 validation images; 5 epochs are timed and
scaled to 50.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Row

N_PER_CLASS, EPOCHS, TIMED_EPOCHS = 32, 50, 5


def run() -> list[Row]:
    import keras

    from vizcore import models, transfer
    from vizcore.data import datasets, images

    base = models.open_application(models.applications.TEACHABLE_BASE, weights=None)
    rng = np.random.default_rng(0)
    colours = np.array([(200, 60, 60), (60, 180, 80), (60, 80, 200)], np.float32)
    x = np.clip(
        colours.repeat(N_PER_CLASS, axis=0)[:, None, None, :] + rng.normal(0, 50, (3 * N_PER_CLASS, 224, 224, 3)),
        0,
        255,
    ).astype(np.uint8)
    y = np.repeat(np.arange(3), N_PER_CLASS)
    photos = datasets.ImageDataset(x, y, ("red", "green", "blue"), "bench photos")

    part = transfer.feature_part(base.model, transfer.feature_layer(base.model))
    every = np.arange(len(x))
    transfer.extract(part, x[:32], base.preprocess, np.arange(32))  # warm
    passes = []
    for _ in range(2):
        t0, c0 = time.perf_counter(), time.process_time()
        transfer.extract(part, x, base.preprocess, every, batch=32)
        passes.append(((time.perf_counter() - t0) * 1000, time.process_time() - c0))
    pass_ms, pass_cpu = min(passes)

    result = transfer.teach(base, photos, transfer.TeachSettings(epochs=EPOCHS))
    head_ms, total_ms, head_cpu = (
        result.timings["head"] * 1000,
        result.timings["total"] * 1000,
        result.timings["head_cpu"],
    )

    # the same run with a base pass per epoch: the taught model (frozen base + head) fitted on the images
    model = keras.models.clone_model(result.model)
    model.set_weights(result.model.get_weights())
    for layer in model.layers[:-2]:
        layer.trainable = False
    train, val = result.train_indices, result.validation_indices
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_model = images.to_model_range(x, base.preprocess)
    model.fit(
        x_model[train], y[train], batch_size=16, epochs=1, validation_data=(x_model[val], y[val]), verbose=0
    )  # trace
    t0 = time.perf_counter()
    model.fit(
        x_model[train], y[train], batch_size=16, epochs=TIMED_EPOCHS, validation_data=(x_model[val], y[val]), verbose=0
    )
    per_epoch_ms = (time.perf_counter() - t0) * 1000 / TIMED_EPOCHS

    ratio, cpu_ratio = head_ms / pass_ms, head_cpu / pass_cpu
    return [
        Row(
            "teach",
            f"head, {EPOCHS} epochs on cached features (MobileNetV2 alpha 0.35 224, {len(x)} images, 1,280 "
            f"features; {ratio:.2f}x one base pass in wall time, {cpu_ratio:.2f}x in CPU time ({head_cpu:.1f} vs "
            f"{pass_cpu:.1f} CPU-s); goal <= 3x)",
            head_ms,
            f"one base pass over the same {len(x)} images",
            pass_ms,
        ),
        Row(
            "teach",
            f"whole teach call, phase 1: images fitted, one base pass, {EPOCHS} epochs of the head, validation",
            total_ms,
            f"the same {EPOCHS} epochs with a base pass per epoch (Keras fit, frozen base; "
            f"{TIMED_EPOCHS} epochs timed, x{EPOCHS // TIMED_EPOCHS})",
            per_epoch_ms * EPOCHS,
        ),
    ]
