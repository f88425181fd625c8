"""``teach``: transfer learning the way Teachable Machine does it, with keras.io's fine-tuning as a second phase.

1. The images are fitted to the base (its size, channels, fit and range) and the base runs **once** over
   them, in batches (``features.extract``); with ``augment``, a fixed number of augmented copies of each
   training image goes through it once too.
2. Phase 1: Teachable Machine's head, Dense(head_units, relu) then Dense(n, softmax, no bias), trains
   with Adam on the cached feature vectors: no base pass per epoch.
3. The base's feature part (a private copy: the base itself is never changed) and the head become one
   self-contained ``keras.Model``; the base's layers are frozen in it.
4. Phase 2 (``fine_tune_blocks`` >= 1): the last blocks' layers become trainable, BatchNormalization
   stays frozen (and so in inference mode: its statistics never move), the model is recompiled with a
   low learning rate and trained on the images; the layers before those blocks stay bit-identical.

Progress goes to ``on_progress`` as ``FeatureRecord`` (the base's pass), then the training's
``BatchRecord`` and ``EpochRecord`` (``vizcore.training.records``), with ``progress`` and ``eta_s``
over the whole run.

Example:
    >>> result = teach(models.open_application("MobileNetV2_0.35"), my_photos, TeachSettings(epochs=20))
    >>> result.feature_layer, result.history["val_accuracy"][-1], result.loaded.class_names
    ('out_relu', 0.95, ('cat', 'dog', 'teapot'))
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import keras
import numpy as np

from vizcore.data import images
from vizcore.data.datasets import ImageDataset, stratified_split
from vizcore.errors import TrainingError, TransferError
from vizcore.inspect import evaluation
from vizcore.models import LoadedModel, blocks, graph
from vizcore.training import ProgressReporter, StopGuard, history_dict, trainable_copy
from vizcore.transfer.features import (
    Augmenter,
    extract,
    feature_layer,
    feature_part,
    fit_images,
)
from vizcore.transfer.settings import TeachSettings

HIDDEN, SCORES = "teach_hidden", "teach_scores"
NORMALIZATION = (keras.layers.BatchNormalization,)
HEAD_COST = 0.01  # one feature vector through the head, in base passes of one image (for progress only)
DEFAULT_SETTINGS = TeachSettings()
STOPPED_EARLY = "Stopped while the base was computing the features; nothing was trained yet."


@dataclass(frozen=True)
class FeatureRecord:
    """Progress of the base's one pass over the images, before the head trains."""

    done: int
    total: int
    progress: float
    elapsed_s: float
    eta_s: float | None
    kind: str = "features"


@dataclass(frozen=True, eq=False)
class TeachResult:
    """What ``teach`` made.

    Attributes:
        model: one keras.Model, the base's feature part plus the head (base layers frozen in it).
        loaded: ``model`` as a working model: the dataset's class names, the base's preprocess and fit.
        history: per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (phase 2's epochs follow phase 1's).
        validation_indices, train_indices: the stratified split, indices into the dataset (seeded).
        feature_layer: the path, in the base, of the layer whose output feeds the head.
        status: 'completed', 'stopped' (Stop was asked; the weights so far are kept) or 'diverged'.
        message: one sentence on how it ended.
        records: every progress record sent.
        notes: what was done to the images, one sentence each (grey made colour, cropped, ...).
        validation: the model on the validation images (``evaluation.Report``), None without them.
        timings: seconds of ``features`` (fitting the images and the base's pass), ``head`` (phase 1), ``fine_tune``
            and ``total``; ``features_cpu`` and ``head_cpu``: the process's CPU seconds of the first two.
        base_images: images the base ran on before phase 1 (each image once, plus the augmented copies).
        fine_tuned: paths of the base layers phase 2 trained.
    """

    model: keras.Model
    loaded: LoadedModel
    history: dict[str, list[float | None]]
    validation_indices: np.ndarray
    feature_layer: str
    train_indices: np.ndarray
    status: str
    message: str
    records: tuple
    notes: tuple[str, ...]
    validation: evaluation.Report | None
    timings: Mapping[str, float]
    base_images: int
    fine_tuned: tuple[str, ...] = ()


def check_classes(class_names, y) -> None:
    """Raise TransferError, in one sentence, for classes a classifier cannot be taught from.

    Fewer than 2 classes, a class without a name, two classes with the same name, a class with no image.
    """
    names = [str(n).strip() for n in class_names]
    if len(names) < 2:
        raise TransferError("Teaching needs at least 2 classes, each with images; add another class.")
    for i, name in enumerate(names):
        if not name:
            raise TransferError(f"Class {i + 1} has no name; give every class a name.")
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            raise TransferError(f"Two classes are named '{name}'; give each class its own name.")
        seen.add(name.casefold())
    counts = np.bincount(np.asarray(y, np.int64), minlength=len(names)) if len(y) else np.zeros(len(names), int)
    for name, count in zip(names, counts):
        if count == 0:
            raise TransferError(f"The class '{name}' has no images; add some, or remove the class.")


def split(y: np.ndarray, settings: TeachSettings) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: ``validation_fraction`` of each class held out, seeded; none at 0."""
    y = np.asarray(y)
    if settings.validation_fraction <= 0:
        return np.arange(len(y), dtype=np.int64), np.zeros(0, np.int64)
    return stratified_split(y, validation_fraction=settings.validation_fraction, seed=settings.seed)


def head_layers(classes: int, units: int = 100, *, seed: int = 0) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """Teachable Machine's head: Dense(units, relu), then Dense(classes, softmax) without a bias, seeded."""
    return (
        keras.layers.Dense(
            units, activation="relu", name=HIDDEN, kernel_initializer=keras.initializers.GlorotUniform(seed=seed)
        ),
        keras.layers.Dense(
            classes,
            activation="softmax",
            use_bias=False,
            name=SCORES,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        ),
    )


def fine_tune_layers(model: keras.Model, layer: str, n_blocks: int) -> tuple[str, ...]:
    """Paths of the layers in the last ``n_blocks`` blocks up to ``layer``, BatchNorm left out.

    Blocks as ``vizcore.models.blocks`` groups them.
    """
    order = graph.trace(model).paths
    upto = set(order[: order.index(layer) + 1])
    groups = [g for g in blocks.layer_groups(model) if any(p in upto for p in g.layers)]
    kinds = {path: lay for path, lay, _ in graph.iter_layers(model)}
    chosen = groups[-n_blocks:] if n_blocks > 0 else []
    trainable = {p for p, layer in kinds.items() if layer.weights and not isinstance(layer, NORMALIZATION)}
    return tuple(p for g in chosen for p in g.layers if p in upto and p in trainable)


class _Progress:
    """Records to the caller's sink with ``progress`` and ``eta_s`` over the whole run (stages weighted by cost)."""

    def __init__(self, sink, costs: Mapping[str, float]) -> None:
        self.sink, self.t0, self.records = sink, time.perf_counter(), []
        total = max(sum(costs.values()), 1e-9)
        self.spans, start = {}, 0.0
        for stage, cost in costs.items():
            self.spans[stage] = (start, cost / total)
            start += cost / total
        self.stage = next(iter(costs))

    def __call__(self, record) -> None:
        if hasattr(record, "progress"):
            offset, share = self.spans[self.stage]
            p = min(1.0, offset + share * record.progress)
            elapsed = time.perf_counter() - self.t0
            record = dataclasses.replace(record, progress=p, eta_s=elapsed * (1 - p) / p if p > 0 else None)
        self.records.append(record)
        if self.sink is not None:
            self.sink(record)


class _Asked:
    """``should_stop`` as the ``is_set`` that StopGuard reads."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.is_set = should_stop


def _fit(
    model,
    train,
    val,
    *,
    n_rows: int,
    settings: TeachSettings,
    lr: float,
    epochs: int,
    initial_epoch: int,
    sink,
    should_stop,
) -> tuple[str, str, int]:
    """Compile and fit with ConvLens's progress and Stop callbacks; (status, message, epochs done)."""
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    reporter = ProgressReporter(sink, n_images=n_rows, batch_size=settings.batch_size, learning_rate_at=lambda step: lr)
    guard = StopGuard(_Asked(should_stop))
    model.fit(
        train,
        validation_data=val,
        epochs=initial_epoch + epochs,
        initial_epoch=initial_epoch,
        callbacks=[reporter, guard],
        verbose=0,
        shuffle=False,
    )
    done = sum(1 for r in reporter.records if getattr(r, "kind", "") == "epoch")
    if guard.reason == "non_finite":
        return (
            "diverged",
            (
                "The loss became NaN or infinite, so training stopped with the last good weights; "
                "try a smaller learning rate."
            ),
            done,
        )
    if guard.reason == "requested":
        return "stopped", f"Stopped after {initial_epoch + done} epoch(s); the weights trained so far are kept.", done
    return "completed", "Teaching finished.", done


def _feature_dataset(x, y, settings: TeachSettings, *, training: bool):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(x), seed=settings.seed, reshuffle_each_iteration=True)
    return ds.batch(settings.batch_size).prefetch(2)


def _image_dataset(pixels, y, mode: str, settings: TeachSettings, *, training: bool, augment: Augmenter | None):
    """uint8 images -> batches in the base's range (the mapping and any augmentation per batch)."""
    import tensorflow as tf

    shape = (None, *pixels.shape[1:])
    ds = tf.data.Dataset.from_tensor_slices((pixels, y.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(pixels), seed=settings.seed, reshuffle_each_iteration=True)
    ds = ds.batch(settings.batch_size)
    if augment is not None:
        ds = ds.map(lambda xb, yb: (augment.apply(xb), yb))

    def to_range(xb):
        out = tf.numpy_function(lambda a: images.to_model_range(a, mode).astype(np.float32), [xb], tf.float32)
        out.set_shape(shape)
        return out

    return ds.map(lambda xb, yb: (to_range(xb), yb)).prefetch(2)


def teach(
    base: LoadedModel,
    dataset: ImageDataset,
    settings: TeachSettings = DEFAULT_SETTINGS,
    on_progress=None,
    should_stop: Callable[[], bool] | None = None,
) -> TeachResult:
    """Teach a classifier of ``dataset``'s classes on top of ``base``; ``base.model`` is never changed.

    Args:
        base: the pretrained model (keras.applications, a Teachable Machine upload, a bundled or trained one).
        dataset: the photos, uint8 or float32 in [0, 1], any size (each is fitted the way the base expects).
        settings: the recipe; the defaults are Teachable Machine's.
        on_progress: called in this thread with each ``FeatureRecord``, ``BatchRecord`` and ``EpochRecord``.
        should_stop: asked often; True ends the run after the current batch, keeping the weights so far.

    Raises:
        TransferError: settings that cannot work, fewer than 2 classes, an empty or unnamed class, two
            classes with one name, a base without spatial features.
        TrainingError: stopped before the features were computed (nothing to keep).
    """
    problems = settings.problems()
    if problems:
        raise TransferError(" ".join(problems))
    check_classes(dataset.class_names, dataset.y)
    path = feature_layer(base.model, settings.feature_layer)
    stop = should_stop or (lambda: False)
    t0, c0 = time.perf_counter(), time.process_time()
    copy = trainable_copy(base.model)  # the base (often shared by a cache) is never touched
    part = feature_part(copy, path)
    pixels, notes = fit_images(base, dataset)
    y = np.asarray(dataset.y, np.int64)
    train_idx, val_idx = split(y, settings)
    copies = settings.augment_copies if settings.augment else 0
    n_base = len(dataset) + copies * len(train_idx)
    n_rows = len(train_idx) * (1 + copies)
    costs = {"features": n_base, "head": HEAD_COST * settings.epochs * n_rows}
    if settings.fine_tunes:
        costs["fine_tune"] = settings.fine_tune_epochs * (3 * len(train_idx) + len(val_idx))
    progress = _Progress(on_progress, costs)

    # the base's one pass: every image once, each augmented copy once
    done = [0]

    def on_batch(k: int) -> None:
        done[0] += k
        progress(FeatureRecord(done[0], n_base, done[0] / n_base, time.perf_counter() - t0, None))

    every = extract(
        part,
        pixels,
        base.preprocess,
        np.arange(len(dataset)),
        batch=settings.feature_batch,
        on_batch=on_batch,
        should_stop=stop,
    )
    if every is None:
        raise TrainingError(STOPPED_EARLY)
    x_rows, y_rows = [every[train_idx]], [y[train_idx]]
    augment = Augmenter(settings.seed) if copies else None
    for _ in range(copies):
        more = extract(
            part,
            pixels,
            base.preprocess,
            train_idx,
            batch=settings.feature_batch,
            augment=augment,
            on_batch=on_batch,
            should_stop=stop,
        )
        if more is None:
            raise TrainingError(STOPPED_EARLY)
        x_rows.append(more)
        y_rows.append(y[train_idx])
    t_features, c_features = time.perf_counter() - t0, time.process_time() - c0

    # phase 1: the head on the cached features
    progress.stage = "head"
    hidden, scores = head_layers(dataset.num_classes, settings.head_units, seed=settings.seed)
    head = keras.Sequential([keras.Input((every.shape[1],)), hidden, scores], name="teach_head")
    val = _feature_dataset(every[val_idx], y[val_idx], settings, training=False) if len(val_idx) else None
    rows = _feature_dataset(np.concatenate(x_rows), np.concatenate(y_rows), settings, training=True)
    status, message, epochs = _fit(
        head,
        rows,
        val,
        n_rows=n_rows,
        settings=settings,
        lr=settings.learning_rate,
        epochs=settings.epochs,
        initial_epoch=0,
        sink=progress,
        should_stop=stop,
    )
    t_head, c_head = time.perf_counter() - t0 - t_features, time.process_time() - c0 - c_features

    # one model: the base's feature part (frozen) and the head
    for _, layer, _ in graph.iter_layers(copy):
        layer.trainable = False
    model = keras.Model(part.input, scores(hidden(part.output)), name=f"taught_{copy.name}"[:60])

    fine_tuned: tuple[str, ...] = ()
    if settings.fine_tunes and status == "completed":
        progress.stage = "fine_tune"
        fine_tuned = fine_tune_layers(copy, path, settings.fine_tune_blocks)
        by_path = {p: layer for p, layer, _ in graph.iter_layers(copy)}
        for p in fine_tuned:
            by_path[p].trainable = True  # BatchNormalization stays frozen: inference mode, statistics unchanged
        mode = base.preprocess
        train = _image_dataset(pixels[train_idx], y[train_idx], mode, settings, training=True, augment=augment)
        val_images = (
            _image_dataset(pixels[val_idx], y[val_idx], mode, settings, training=False, augment=None)
            if len(val_idx)
            else None
        )
        status, message, _ = _fit(
            model,
            train,
            val_images,
            n_rows=len(train_idx),
            settings=settings,
            lr=settings.fine_tune_learning_rate,
            epochs=settings.fine_tune_epochs,
            initial_epoch=epochs,
            sink=progress,
            should_stop=stop,
        )
    t_fine = time.perf_counter() - t0 - t_features - t_head

    report = None
    if len(val_idx) and fine_tuned:  # the base changed: run the whole model over the validation images
        report = evaluation.report(
            model, images.to_model_range(pixels[val_idx], base.preprocess), y[val_idx], dataset.class_names, ks=(1,)
        )
    elif len(val_idx):  # the same function as the model on the images, from the features computed once
        probs = keras.ops.convert_to_numpy(head(every[val_idx], training=False))
        report = evaluation.report_of(evaluation.evaluation_of(probs, y[val_idx], dataset.class_names), ks=(1,))
    names = tuple(str(n).strip() for n in dataset.class_names)
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    history = history_dict(progress.records)
    loaded = LoadedModel(
        model,
        f"trained:teach.{uuid.uuid4().hex[:8]}",
        f"{shown} (taught on {base.label})",
        names,
        base.preprocess,
        fit=base.fit,
        card={  # what a report says of its training: the curves and the settings, with no file to read them from
            "trained_here": True,
            "status": status,
            "training": f"taught on {base.label} (transfer learning, the base frozen up to its feature layer)",
            "dataset": dataset.name,
            "history": history,
            "settings": dataclasses.asdict(settings),
        },
        origin={"format": "taught here", "base": base.label, "feature_layer": path},
    )
    return TeachResult(
        model,
        loaded,
        history,
        val_idx,
        path,
        train_idx,
        status,
        message,
        tuple(progress.records),
        notes,
        report,
        {
            "features": t_features,
            "head": t_head,
            "fine_tune": t_fine,
            "total": time.perf_counter() - t0,
            "features_cpu": c_features,
            "head_cpu": c_head,
        },
        n_base,
        fine_tuned,
    )
