"""Replay how a network changed while it trained: the probes, the recorded layers, and the file read back.

``vizcore.training.callbacks.SnapshotRecorder`` writes the file while training (the first conv
layer's kernels and, for a few fixed probe images, each conv layer's feature maps and the predicted
probabilities, float16, in one compressed ``.npz``); ``load_snapshots`` reads it back.

Example:
    >>> probes = choose_probes(val, n=4)
    >>> snaps = load_snapshots("runs/lenet.snapshots.npz")
    >>> snaps.steps[:2], snaps.feature_maps(snaps.index_at(2.0), "conv1").shape
    (((0, 0), (0, 100)), (4, 28, 28, 6))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vizcore.data.datasets import ImageDataset
from vizcore.models.graph import conv_layers

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
    """Read a file written by ``vizcore.training.callbacks.SnapshotRecorder`` (no pickles).

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
