"""Record how a network changes while it trains, for replay with an epoch slider.

Every N batches and after every epoch, ``SnapshotRecorder`` stores the first conv layer's kernels
and, for a few fixed probe images, each conv layer's feature maps and the predicted
probabilities. Everything goes into one compressed ``.npz`` beside the model (float16 for kernels,
maps and images; written atomically after every epoch), and ``load_snapshots`` reads it back.

Threading: Keras 3 may run batch-end hooks on a thread pool, but only when every callback leaves
``on_train_batch_end`` alone or declares ``async_safe``; this callback overrides it without
``async_safe``, so Keras calls it synchronously in the training thread, between two steps, with
consistent weights (and the TensorFlow backend never dispatches asynchronously at all).

Example:
    >>> probes = choose_probes(val, n=4)
    >>> rec = SnapshotRecorder("runs/lenet.snapshots.npz", val.x_nhwc[probes], val.y[probes], val.class_names)
    >>> model.fit(ds, epochs=5, callbacks=[rec])
    >>> snaps = load_snapshots("runs/lenet.snapshots.npz")
    >>> snaps.steps[:2], snaps.feature_maps(snaps.index_at(2.0), "conv1").shape
    (((0, 0), (0, 100)), (4, 28, 28, 6))
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vizcore import heads
from vizcore.data import ImageDataset
from vizcore.graph import conv_layers, feature_model, iter_layers

FLOAT16_MAX = 65000.0
FORMAT_VERSION = 1
MAX_LAYERS = 8  # conv layers whose maps are kept by default (evenly spaced, first and last included)


def choose_probes(dataset: ImageDataset, n: int = 4, *, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` fixed probe images: one per class where possible, classes spread over the list.

    Returns:
        int64 indices into ``dataset``, in class order; fewer than ``n`` only when the data is smaller.
    """
    rng = np.random.default_rng(seed)
    present = [c for c in range(dataset.num_classes) if np.any(dataset.y == c)]
    if not present or n < 1:
        return np.zeros(0, dtype=np.int64)
    if len(present) >= n:
        chosen = [present[int(round(i))] for i in np.linspace(0, len(present) - 1, n)]
    else:
        chosen = [present[i % len(present)] for i in range(n)]
    picks: list[int] = []
    pools = {c: list(rng.permutation(np.flatnonzero(dataset.y == c))) for c in set(chosen)}
    for c in sorted(chosen):
        if pools[c]:
            picks.append(int(pools[c].pop(0)))
    return np.asarray(picks, dtype=np.int64)


def default_layers(model: keras.Model, max_layers: int = MAX_LAYERS) -> tuple[str, ...]:
    """The conv layers to record: all of them, or ``max_layers`` evenly spaced ones (first and last kept)."""
    convs = conv_layers(model)
    if len(convs) <= max_layers:
        return tuple(convs)
    picks = sorted({int(round(i)) for i in np.linspace(0, len(convs) - 1, max_layers)})
    return tuple(convs[i] for i in picks)


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
    """

    def __init__(self, path: str | os.PathLike, probes_nhwc: np.ndarray, probe_labels: np.ndarray,
                 class_names: Sequence[str], *, every_batches: int = 0, layers: Sequence[str] | None = None,
                 max_snapshots: int = 400, probe_indices: np.ndarray | None = None):
        super().__init__()
        self.path = Path(path)
        self.probes = np.asarray(probes_nhwc, dtype=np.float32)
        self.probe_labels = np.asarray(probe_labels, dtype=np.int64)
        self.probe_indices = np.arange(len(self.probes)) if probe_indices is None else np.asarray(probe_indices, dtype=np.int64)
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
        if self.every and self.batches % self.every == 0 and self.batches != self.steps_per_epoch and len(self.steps) < self.max_snapshots:
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
        meta = {"version": FORMAT_VERSION, "layers": list(self.fm.layers), "kernel_layer": self.kernel_layer,
                "class_names": list(self.class_names), "steps_per_epoch": self.steps_per_epoch}
        arrays = {"meta": np.array(json.dumps(meta)), "steps": np.asarray(self.steps, dtype=np.int64).reshape(-1, 2),
                  "kernels": np.stack(self.kernels), "probabilities": np.stack(self.probs),
                  "probe_images": _half(self.probes), "probe_labels": self.probe_labels, "probe_indices": self.probe_indices}
        arrays.update({f"maps_{i}": np.stack(self.maps[p]) for i, p in enumerate(self.fm.layers)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.npz", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return self.path


@dataclass(frozen=True, eq=False)
class Snapshots:
    """Snapshots read back from a file; index them by position or by ``index_at(epoch_float)``.

    Attributes:
        steps: (epoch, batch) of each snapshot, in time order.
        kernels_skhwio: (S, kh, kw, in, out) float16, the first conv layer's kernels.
        maps: layer -> (S, P, h, w, c) float16 feature maps of the probes.
        probabilities_spk: (S, P, K) float32 predicted probabilities of the probes.
    """

    steps: tuple[tuple[int, int], ...]
    steps_per_epoch: int
    layers: tuple[str, ...]
    kernel_layer: str
    class_names: tuple[str, ...]
    probe_images: np.ndarray  # (P, H, W, C) float32
    probe_labels: np.ndarray  # (P,) int64
    probe_indices: np.ndarray  # (P,) int64, in the dataset the probes came from
    kernels_skhwio: np.ndarray
    maps: Mapping[str, np.ndarray]
    probabilities_spk: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def epoch_floats(self) -> np.ndarray:
        """Each snapshot's position in epochs: ``epoch + batch / steps_per_epoch`` (0.0 = untrained)."""
        spe = max(1, self.steps_per_epoch)
        return np.array([e + b / spe for e, b in self.steps], dtype=np.float64)

    def index_at(self, epoch_float: float) -> int:
        """The last snapshot taken at or before ``epoch_float`` (the first one before any)."""
        i = int(np.searchsorted(self.epoch_floats, epoch_float + 1e-9, side="right")) - 1
        return min(max(i, 0), len(self) - 1)

    def kernels(self, i: int) -> np.ndarray:
        """float32 (kh, kw, in, out) kernels of ``kernel_layer`` at snapshot ``i``."""
        return self.kernels_skhwio[i].astype(np.float32)

    def feature_maps(self, i: int, layer: str) -> np.ndarray:
        """float32 (P, h, w, c) maps of ``layer`` for the probes at snapshot ``i``."""
        if layer not in self.maps:
            raise KeyError(f"No snapshots of layer '{layer}'; recorded: {', '.join(self.layers)}")
        return self.maps[layer][i].astype(np.float32)

    def probabilities(self, i: int) -> np.ndarray:
        """(P, K) probabilities of the probes at snapshot ``i``."""
        return self.probabilities_spk[i]

    def predictions(self, i: int) -> np.ndarray:
        """(P,) predicted class of each probe at snapshot ``i``."""
        return self.probabilities_spk[i].argmax(axis=-1)


def load_snapshots(path: str | os.PathLike) -> Snapshots:
    """Read a file written by ``SnapshotRecorder`` (no pickles).

    Raises:
        ValueError: not a snapshot file, or one from a newer format.
    """
    with np.load(path, allow_pickle=False) as npz:
        if "meta" not in npz.files:
            raise ValueError(f"{Path(path).name} is not a ConvLens snapshot file.")
        meta = json.loads(str(npz["meta"]))
        if meta.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"{Path(path).name} was written by a newer ConvLens (format {meta['version']}).")
        layers = tuple(meta["layers"])
        return Snapshots(
            steps=tuple((int(e), int(b)) for e, b in npz["steps"]),
            steps_per_epoch=int(meta["steps_per_epoch"] or 0) or 1,
            layers=layers,
            kernel_layer=meta["kernel_layer"],
            class_names=tuple(meta["class_names"]),
            probe_images=npz["probe_images"].astype(np.float32),
            probe_labels=npz["probe_labels"],
            probe_indices=npz["probe_indices"],
            kernels_skhwio=npz["kernels"],
            maps={p: npz[f"maps_{i}"] for i, p in enumerate(layers)},
            probabilities_spk=npz["probabilities"],
        )
