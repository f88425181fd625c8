"""Files of training: atomic writes, checkpoints with their history, and trained models saved by name.

Every file is written to a temporary name in the same folder and moved over the target with
``os.replace``, so a reader (or a tab closed mid-write) sees the old file or the new one, never half.

Example:
    >>> path = save_trained(model, "my LeNet (run 2)", "trained/")
    >>> path.name
    'my_LeNet_run_2.keras'
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vizcore.errors import TrainingError
from vizcore.training.clone import trainable_copy
from vizcore.training.config import TrainConfig
from vizcore.training.records import Record, history_csv, record_dict, record_from_dict

MAX_NAME = 64


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; on success it replaces ``path``, on error it is removed.

    Example:
        >>> with atomic_path("runs/a.keras") as tmp:
        ...     model.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """``model.save(path)`` atomically; ``path`` ends in ``.keras``."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def atomic_save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """``np.savez_compressed`` of ``arrays`` to ``path`` atomically (no pickles)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def history_paths(checkpoint_path: str | os.PathLike) -> tuple[Path, Path]:
    """(JSON, CSV) history files beside a checkpoint: ``run.keras`` -> ``run.history.json``, ``run.history.csv``."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + ".history.json"), path.with_name(path.stem + ".history.csv")


def write_history(
    checkpoint_path: str | os.PathLike, records: Iterable[Record], config: TrainConfig | None = None
) -> None:
    """Write the history JSON (config and every record) and the per-epoch CSV beside a checkpoint."""
    records = list(records)
    json_path, csv_path = history_paths(checkpoint_path)
    payload = {
        "version": 1,
        "config": config.to_dict() if config else None,
        "records": [record_dict(r) for r in records],
    }
    atomic_write_text(json_path, json.dumps(payload, separators=(",", ":")))
    atomic_write_text(csv_path, history_csv([r for r in records if r.kind == "epoch"]))


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: the compiled model (optimizer state included) and its history."""

    model: object
    records: tuple[Record, ...]
    config: TrainConfig | None

    @property
    def next_epoch(self) -> int:
        """The epoch to resume from (``fit(..., initial_epoch=ckpt.next_epoch)``)."""
        done = [r.epoch for r in self.records if r.kind == "epoch" and r.complete]
        return max(done) + 1 if done else 0


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint written during ``fit`` (safe mode), with its history when present.

    Raises:
        TrainingError: no such file, or not a readable checkpoint.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"No checkpoint at {path}.")
    try:
        model = keras.models.load_model(path, compile=True, safe_mode=True)
    except Exception as err:  # Keras raises many types for a damaged file
        raise TrainingError(
            f"The checkpoint {path.name} cannot be read: {type(err).__name__}: {str(err)[:200]}"
        ) from err
    records, config = read_history(path)
    return Checkpoint(model, records, config)


def read_history(checkpoint_path: str | os.PathLike) -> tuple[tuple[Record, ...], TrainConfig | None]:
    """The records and settings ``write_history`` saved beside a checkpoint (none: ``((), None)``)."""
    json_path, _ = history_paths(checkpoint_path)
    if not json_path.is_file():
        return (), None
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    records = tuple(record_from_dict(r) for r in payload.get("records", []))
    return records, TrainConfig.from_dict(payload["config"]) if payload.get("config") else None


def sanitize_name(name: str) -> str:
    """A safe file stem: letters, digits, '-' and '_' (other runs become one '_'), at most 64 characters.

    Raises:
        TrainingError: nothing usable is left (empty, only symbols or dots).
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name).strip()).strip("_-")[:MAX_NAME].strip("_-")
    if not stem:
        raise TrainingError(f"{name!r} cannot be used as a model name: use letters, digits, '-' or '_'.")
    return stem


def save_trained(model, name: str, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save a trained model as ``folder/<sanitized name>.keras``, atomically, without optimizer state.

    Args:
        model: the trained model (not changed; an uncompiled copy is saved).
        name: what the person typed; sanitized with ``sanitize_name``.
        folder: where trained models live (created when missing).
        overwrite: replace a model of the same name; otherwise TrainingError.

    Returns:
        The path written, always inside ``folder``.
    """
    folder = Path(folder).resolve()
    path = (folder / f"{sanitize_name(name)}.keras").resolve()
    if path.parent != folder:  # cannot happen after sanitizing; kept as the last line of defence
        raise TrainingError(f"{name!r} would be saved outside {folder}.")
    if path.exists() and not overwrite:
        raise TrainingError(f"A model named '{path.stem}' already exists; choose another name or overwrite it.")
    return atomic_save_model(trainable_copy(model), path)  # an uncompiled copy: no optimizer state in the file
