"""SnapshotRecorder: record kernels, feature maps and probabilities of probe images while a model trains.

Every N batches and after every epoch it stores the first conv layer's kernels and, for a few
fixed probe images, each recorded conv layer's feature maps and the predicted probabilities, in
one compressed ``.npz`` (float16 for kernels, maps and images) written atomically after every
epoch; ``vizcore.training.replay.load_snapshots`` reads it back for the epoch slider.

Threading: Keras 3 may run batch-end hooks on a thread pool, but only when every callback leaves
``on_train_batch_end`` alone or declares ``async_safe``; this callback overrides it without
``async_safe``, so Keras calls it synchronously in the training thread, between two steps, with
consistent weights (and the TensorFlow backend never dispatches asynchronously at all).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from vizcore.models import heads
from vizcore.models.features import feature_model
from vizcore.models.graph import conv_layers, iter_layers
from vizcore.training.replay import FORMAT_VERSION, default_layers
from vizcore.training.storage import atomic_save_npz

FLOAT16_MAX = 65000.0


def _half(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x, dtype=np.float32)), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)


class SnapshotRecorder(keras.callbacks.Callback):
    """Record kernels, feature maps and probabilities of probe images every N batches and every epoch.

    Args:
        path: the ``.npz`` file, rewritten atomically after every epoch and at the end.
        probes_nhwc: the fixed probe images, float32 (P, H, W, C) as the model takes them.
        probe_labels: their true classes (P,).
        class_names: one name per class.
        every_batches: also record every this many batches within an epoch (0: epoch ends only).
        layers: conv layers whose maps are kept (default: ``default_layers``, all of a small CNN).
        max_snapshots: beyond this many, only epoch ends are recorded (bounds memory and file size).
        probe_indices: where the probes come from in their dataset (kept for the page).

    Steps are ``(epoch, batch)``: ``(e, 0)`` before epoch ``e`` trains (the starting weights),
    ``(e, b)`` after ``b`` batches of it; ``epoch + batch / steps_per_epoch`` is the slider value.

    Example:
        >>> probes = choose_probes(val, n=4)
        >>> rec = SnapshotRecorder("runs/lenet.snapshots.npz", val.x_nhwc[probes], val.y[probes], val.class_names)
        >>> model.fit(ds, epochs=5, callbacks=[rec])
        >>> load_snapshots("runs/lenet.snapshots.npz").steps[:2]  # untrained, then after epoch 1 (125 batches)
        ((0, 0), (0, 125))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        probes_nhwc: np.ndarray,
        probe_labels: np.ndarray,
        class_names: Sequence[str],
        *,
        every_batches: int = 0,
        layers: Sequence[str] | None = None,
        max_snapshots: int = 400,
        probe_indices: np.ndarray | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.probes = np.asarray(probes_nhwc, dtype=np.float32)
        self.probe_labels = np.asarray(probe_labels, dtype=np.int64)
        self.probe_indices = (
            np.arange(len(self.probes)) if probe_indices is None else np.asarray(probe_indices, dtype=np.int64)
        )
        self.class_names = tuple(class_names)
        self.every, self.layers, self.max_snapshots = int(every_batches), layers, max_snapshots
        self.steps: list[tuple[int, int]] = []
        self.kernels: list[np.ndarray] = []
        self.maps: dict[str, list[np.ndarray]] = {}
        self.probs: list[np.ndarray] = []

    def on_train_begin(self, logs=None):
        paths = tuple(self.layers) if self.layers else default_layers(self.model)
        self.fm = feature_model(self.model, paths)
        self.maps = {p: self.maps.get(p, []) for p in self.fm.layers}
        layers = {p: layer for p, layer, _ in iter_layers(self.model)}
        self.kernel_layer = conv_layers(self.model)[0]
        self._kernel_source = layers[self.kernel_layer]
        self.steps_per_epoch = int(self.params.get("steps") or 0)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batches = epoch, 0
        if not self.steps:
            self.record(epoch, 0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1
        if (
            self.every
            and self.batches % self.every == 0
            and self.batches != self.steps_per_epoch
            and len(self.steps) < self.max_snapshots
        ):
            self.record(self.epoch, self.batches)

    def on_epoch_end(self, epoch, logs=None):
        self.steps_per_epoch = self.steps_per_epoch or self.batches
        if not self.steps or self.steps[-1] != (epoch, self.batches):
            self.record(epoch, self.batches)
        self.write()

    def record(self, epoch: int, batch: int) -> None:
        """Take one snapshot now, labelled (epoch, batch)."""
        acts, scores = self.fm.predict(self.probes)
        for path in self.fm.layers:
            self.maps[path].append(_half(acts[path]))
        self.kernels.append(_half(self._kernel_source.get_weights()[0]))
        self.probs.append(heads.probabilities(scores, self.fm.head).astype(np.float32))
        self.steps.append((int(epoch), int(batch)))

    def write(self) -> Path:
        """Write every snapshot so far to ``path`` atomically."""
        meta = {
            "version": FORMAT_VERSION,
            "layers": list(self.fm.layers),
            "kernel_layer": self.kernel_layer,
            "class_names": list(self.class_names),
            "steps_per_epoch": self.steps_per_epoch,
        }
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "steps": np.asarray(self.steps, dtype=np.int64).reshape(-1, 2),
            "kernels": np.stack(self.kernels),
            "probabilities": np.stack(self.probs),
            "probe_images": _half(self.probes),
            "probe_labels": self.probe_labels,
            "probe_indices": self.probe_indices,
        }
        arrays.update({f"maps_{i}": np.stack(self.maps[p]) for i, p in enumerate(self.fm.layers)})
        return atomic_save_npz(self.path, arrays)
