"""EpochCheckpoint: after each epoch, save the model and the history so far, atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from vizcore.training.config import TrainConfig
from vizcore.training.records import Record
from vizcore.training.storage import atomic_save_model, write_history


class EpochCheckpoint(keras.callbacks.Callback):
    """Save ``model`` (with optimizer state) to ``path`` and the history beside it after every epoch.

    Each file is written to a temporary name in the same folder and then moved into place with
    ``os.replace``, so closing the tab or killing the process loses at most the current epoch and
    never leaves a half-written file. An epoch whose loss or weights are NaN or infinite is not
    saved: the file keeps the last good weights.

    Args:
        path: the ``.keras`` file to keep up to date.
        records: returns the records so far (the history files are written from them).
        config: written into the history JSON, so a run can be resumed with the same settings.

    Example:
        >>> reporter = ProgressReporter(None, n_images=4000, batch_size=32)
        >>> ckpt = EpochCheckpoint("runs/lenet.keras", lambda: reporter.records)
        >>> model.fit(ds, epochs=3, callbacks=[reporter, ckpt])  # reporter first: it makes the records
        >>> sorted(p.name for p in Path("runs").iterdir())
        ['lenet.history.csv', 'lenet.history.json', 'lenet.keras']
    """

    def __init__(
        self,
        path: str | os.PathLike,
        records: Callable[[], Sequence[Record]] | None = None,
        config: TrainConfig | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        if self.path.suffix != ".keras":
            raise ValueError(f"A checkpoint path must end in .keras, got {self.path.name}")
        self.records = records or (lambda: ())
        self.config = config
        self.saved_epochs: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            return
        if not all(np.isfinite(np.asarray(v)).all() for v in self.model.weights):
            return
        atomic_save_model(self.model, self.path)
        write_history(self.path, self.records(), self.config)
        self.saved_epochs.append(epoch)
