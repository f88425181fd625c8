"""What training reports: one frozen record per (throttled) batch and one per epoch, and their CSV.

Epochs and batches are 0-based as in Keras; ``epoch_float`` (e.g. 2.5 = halfway through the third
epoch) is the x axis for curves that mix both.

Example:
    >>> rec = EpochRecord(epoch=0, loss=0.9, accuracy=0.7, val_loss=0.5, val_accuracy=0.85,
    ...                   learning_rate=1e-3, seconds=3.2, elapsed_s=3.2)
    >>> history_csv([rec]).splitlines()[0]
    'kind,epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,elapsed_s,complete,epoch_float'
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchRecord:
    """One training step, sent at most every ``min_interval_s`` (and for each epoch's first and last batch).

    ``loss`` and ``accuracy`` are this batch's own values; ``smooth_*`` are a bias-corrected
    exponential moving average over every batch so far (not only the sent ones).
    """

    epoch: int
    batch: int  # index within the epoch of the batch just finished
    steps_per_epoch: int
    step: int  # global index of the batch, over all epochs
    loss: float
    accuracy: float
    smooth_loss: float
    smooth_accuracy: float
    learning_rate: float
    images_per_s: float | None  # None for the very first batch (its time includes building the graph)
    elapsed_s: float  # since training started
    eta_s: float | None  # until the last epoch ends; None while unknown
    progress: float  # share of all steps done, in [0, 1]
    kind: str = "batch"

    @property
    def epoch_float(self) -> float:
        return self.epoch + (self.batch + 1) / self.steps_per_epoch


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's averages, always sent. ``val_*`` are None without validation data.

    ``complete`` is False for an epoch cut short by Stop (its averages cover the batches run).
    """

    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    elapsed_s: float
    complete: bool = True
    kind: str = "epoch"

    @property
    def epoch_float(self) -> float:
        return self.epoch + 1.0


Record = BatchRecord | EpochRecord


def record_dict(record: Record) -> dict[str, Any]:
    """The record's fields plus ``epoch_float``, JSON-able (NaN and infinity become None)."""
    out = dataclasses.asdict(record)
    out["epoch_float"] = record.epoch_float
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def record_from_dict(values: dict[str, Any]) -> Record:
    """The record ``record_dict`` wrote."""
    cls = EpochRecord if values.get("kind") == "epoch" else BatchRecord
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def history_dict(records: Iterable[Record]) -> dict[str, list[float | None]]:
    """Per-epoch lists like Keras' ``History.history``: loss, accuracy, val_loss, val_accuracy, learning_rate."""
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    return {k: [getattr(r, k) for r in epochs] for k in keys}


def history_csv(records: Iterable[Record]) -> str:
    """CSV text of the records, one row each, ``kind`` first; columns of both kinds when mixed.

    Args:
        records: batch and/or epoch records, e.g. ``job.snapshot().epochs``.

    Returns:
        The CSV with a header row; empty cells for None and for fields the row's kind lacks.
    """
    rows = [record_dict(r) for r in records]
    columns: list[str] = ["kind"]
    for cls in (EpochRecord, BatchRecord):
        if any(r["kind"] == cls.kind for r in rows) or not rows and cls is EpochRecord:
            columns += [f.name for f in dataclasses.fields(cls) if f.name not in columns]
    columns.append("epoch_float")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
