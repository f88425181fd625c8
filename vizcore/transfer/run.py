"""A teach run as a training job: one of the server's training slots, a worker thread, Stop, polled records.

``start_teach`` runs ``teach`` inside ``training.TrainingJob`` (its ``fit_fn``), so a page drives it
exactly like a training: ``run.job.snapshot()`` from a fragment (records, progress, ETA), ``run.stop()``,
and ``_shared.on_session_end(run.stop)`` so a closed tab stops it. The slot is given back when the job ends.

Example:
    >>> run = start_teach(base, dataset, TeachSettings(), session=training.new_session_id())
    >>> run.job.wait(); run.result.history["val_accuracy"][-1]
    0.95
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from vizcore.data.datasets import ImageDataset
from vizcore.errors import TrainingError
from vizcore.models import LoadedModel
from vizcore.training import SLOTS, FitResult, TrainingJob
from vizcore.training.run import BUSY, SESSION_ID
from vizcore.transfer.phases import DEFAULT_SETTINGS, TeachResult, teach
from vizcore.transfer.settings import TeachSettings


@dataclass(eq=False)
class TeachRun:
    """One teach run started from a page: its job and, once it has ended well, its result."""

    id: str
    session: str
    base: LoadedModel
    dataset: ImageDataset
    settings: TeachSettings
    job: TrainingJob | None = None
    result: TeachResult | None = None
    started: float = 0.0

    def stop(self) -> None:
        """End after the current batch (the head or fine-tuning keeps its weights so far); returns at once."""
        if self.job is not None:
            self.job.stop()

    @property
    def finished(self) -> bool:
        return self.job is not None and self.job.done

    def _work(self, _model, train, _val, settings, *, on_progress, stop, **_unused) -> FitResult:
        """``teach`` with ``fit``'s signature and result, for ``TrainingJob``."""
        result = teach(self.base, train, settings, on_progress=on_progress, should_stop=stop.is_set)
        self.result = result
        return FitResult(result.status, result.message, result.records, result.timings["total"])


def start_teach(
    base: LoadedModel,
    dataset: ImageDataset,
    settings: TeachSettings = DEFAULT_SETTINGS,
    *,
    session: str,
    slots: threading.Semaphore = SLOTS,
) -> TeachRun:
    """Take a training slot and start ``teach(base, dataset, settings)`` on a worker thread.

    Raises:
        TrainingError: the server already runs as many trainings as it has slots.
    """
    if not SESSION_ID.match(session):
        raise ValueError(f"A session id is 12 hex digits (training.new_session_id()), got {session!r}.")
    if not slots.acquire(blocking=False):
        raise TrainingError(BUSY)
    run = TeachRun(uuid.uuid4().hex[:8], session, base, dataset, settings, started=time.time())
    try:
        run.job = TrainingJob(None, dataset, None, settings, on_finish=slots.release, fit_fn=run._work).start()
    except BaseException:
        slots.release()
        raise
    return run
