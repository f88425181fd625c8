"""``fit``: train a model in place with progress records, Stop, checkpoints and snapshots.

Example:
    >>> model = trainable_copy(loaded.model)          # never train a shared (cached) model
    >>> train, val = split_for_training(load_mnist_sample(), config)
    >>> result = fit(model, train, val, config, on_progress=print, checkpoint_path="runs/a.keras")
    >>> result.status, result.history["val_accuracy"][-1]
    ('completed', 0.97)
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vizcore.data.datasets import ImageDataset
from vizcore.errors import TrainingError
from vizcore.models.graph import head_type
from vizcore.training.callbacks import EpochCheckpoint, ProgressReporter, SnapshotRecorder, StopGuard
from vizcore.training.config import TrainConfig, make_optimizer
from vizcore.training.distribute import global_batch, write_path
from vizcore.training.inputs import check_compat, make_dataset, steps_per_epoch
from vizcore.training.records import EpochRecord, Record, history_dict
from vizcore.training.replay import choose_probes


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` did. ``status``: 'completed', 'stopped' (Stop was asked) or 'diverged'
    (the loss became NaN/infinite; the model holds the last good epoch's weights)."""

    status: str
    message: str
    records: tuple[Record, ...]
    seconds: float
    checkpoint_path: Path | None = None
    snapshot_path: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def epochs(self) -> tuple[EpochRecord, ...]:
        return tuple(r for r in self.records if isinstance(r, EpochRecord))

    @property
    def history(self) -> dict[str, list[float | None]]:
        """Per-epoch lists, like ``keras.callbacks.History.history``."""
        return history_dict(self.records)


def loss_and_metric(model: keras.Model):
    """The loss and accuracy metric for the model's head (softmax, sigmoid or linear logits)."""
    head = head_type(model)
    if head == "sigmoid":
        return keras.losses.BinaryCrossentropy(), keras.metrics.BinaryAccuracy(name="accuracy")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=head == "linear")
    return loss, keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def reseed(model: keras.Model, seed: int) -> None:
    """Reset the random state of the model's own layers (Dropout masks, ...) from ``seed``."""
    for i, layer in enumerate(model._flatten_layers(include_self=False, recursive=True)):
        for j, generator in enumerate(getattr(layer, "_seed_generators", ())):
            state = getattr(generator, "state", None)
            if state is not None:
                state.assign(np.array([seed * 1000 + 97 * i + j, 0], dtype=state.dtype))


def fit(
    model: keras.Model,
    train: ImageDataset,
    val: ImageDataset | None = None,
    config: TrainConfig | None = None,
    *,
    on_progress: Callable[[Record], object] | None = None,
    stop: threading.Event | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    snapshot_path: str | os.PathLike | None = None,
    initial_epoch: int = 0,
    min_interval_s: float = 0.25,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> FitResult:
    """Train ``model`` in place on ``train``, reporting to ``on_progress``; returns what happened.

    Args:
        model: the model to train; it is changed (pass ``trainable_copy(shared_model)``).
        train: training images; ``val``: validation images or None (see ``split_for_training``).
        config: the settings; ``check_compat`` problems raise TrainingError before anything runs.
            A model made inside a ``strategy_for()`` scope trains on all its replicas, each
            step on ``batch_size`` images per replica (see ``distribute``).
        on_progress: called in the training thread with BatchRecords (at most every
            ``min_interval_s``) and an EpochRecord after each epoch; keep it quick.
        stop: set it (from any thread) to end training after the current batch, keeping the weights.
        checkpoint_path: ``.keras`` file saved atomically after each epoch, with
            ``<stem>.history.json`` and ``<stem>.history.csv`` beside it.
        snapshot_path: ``.npz`` of kernels / feature maps / probabilities of 4 validation probes,
            every ``config.snapshot_interval`` batches and after each epoch.
        initial_epoch: resume from a ``load_checkpoint`` model: its compiled optimizer is kept.
        callbacks: more Keras callbacks, run after ConvLens's own.

    Returns:
        FitResult with status 'completed', 'stopped' or 'diverged', every record and the time.

    Raises:
        TrainingError: the data does not fit the model, or the settings cannot work.
    """
    if config is None:
        config = TrainConfig()
    strategy = model.distribute_strategy  # the one the model was made in; the default: one device
    saved_config, config = config, config.replace(batch_size=global_batch(config, strategy))
    problems = check_compat(model, train, config, val=val, split=False)
    if problems:
        raise TrainingError(" ".join(problems))
    spe = steps_per_epoch(len(train), config.batch_size)
    head = head_type(model)
    if initial_epoch == 0 or getattr(model, "optimizer", None) is None:
        loss, metric = loss_and_metric(model)
        with strategy.scope():
            model.compile(optimizer=make_optimizer(config, spe), loss=loss, metrics=[metric])
    reseed(model, config.seed)
    guard = StopGuard(stop)
    reporter = ProgressReporter(
        on_progress,
        n_images=len(train),
        batch_size=config.batch_size,
        learning_rate_at=lambda step: config.learning_rate_at(step, spe),
        min_interval_s=min_interval_s,
    )
    own: list[keras.callbacks.Callback] = [reporter, guard]  # the guard sees a Stop set by the sink at once
    notes: list[str] = []
    if snapshot_path is not None:
        source = val if val is not None and len(val) else train
        probes = choose_probes(source, 4, seed=config.seed)
        own.append(
            SnapshotRecorder(
                write_path(snapshot_path, strategy),
                source.floats(probes),
                source.y[probes],
                source.class_names,
                every_batches=config.snapshot_interval(spe),
                probe_indices=probes,
            )
        )
    if checkpoint_path is not None:
        own.append(EpochCheckpoint(write_path(checkpoint_path, strategy), lambda: reporter.records, saved_config))
    if config.tensorboard_dir:
        if importlib.util.find_spec("tensorboard") is None:
            notes.append("No TensorBoard logs: the tensorboard package is not installed (pip install tensorboard).")
        else:
            own.append(keras.callbacks.TensorBoard(config.tensorboard_dir, write_graph=False, profile_batch=0))
    start = time.perf_counter()
    model.fit(
        make_dataset(train, config, head=head, training=True),
        validation_data=make_dataset(val, config, head=head, training=False) if val is not None and len(val) else None,
        epochs=initial_epoch + config.epochs,
        initial_epoch=initial_epoch,
        callbacks=own + list(callbacks),
        verbose=0,
        shuffle=False,  # make_dataset shuffles, seeded
    )
    seconds = time.perf_counter() - start
    status, message = _outcome(guard, spe)
    if reporter.sink_errors:
        notes.append(f"The progress callable raised {reporter.sink_errors} time(s); training went on.")
    return FitResult(
        status,
        message,
        tuple(reporter.records),
        seconds,
        Path(checkpoint_path) if checkpoint_path else None,
        Path(snapshot_path) if snapshot_path else None,
        tuple(notes),
    )


def _outcome(guard: StopGuard, spe: int) -> tuple[str, str]:
    if guard.reason == "non_finite":
        epoch, batch = guard.where
        return "diverged", (
            f"The loss or the weights became NaN or infinite in epoch {epoch + 1} (batch {batch + 1} of {spe}), "
            "so training stopped and "
            "the weights of the last good epoch were kept. Try a learning rate 10 times smaller."
        )
    if guard.reason == "requested":
        epoch, batch = guard.where
        return (
            "stopped",
            f"Stopped in epoch {epoch + 1} after batch {min(batch + 1, spe)} of {spe}; "
            "the weights trained so far are kept.",
        )
    return "completed", "Training finished."
