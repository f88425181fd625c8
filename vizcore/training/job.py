"""TrainingJob: ``fit`` in a daemon worker thread, polled by a page without blocking it.

A Streamlit page starts a job on a button click, keeps the job in ``st.session_state``, and
draws ``job.snapshot()`` from an ``st.fragment(run_every=...)``: widget reruns never touch the
worker thread, so they never interrupt training.

Example:
    >>> job = start_job(trainable_copy(model), train, val, config, checkpoint_path="runs/a.keras")
    >>> state = job.snapshot()            # any thread, any time; cheap
    >>> state.status, round(state.progress, 2), [r.val_accuracy for r in state.epochs]
    ('running', 0.35, [0.91, 0.95])
    >>> job.stop(); job.wait(10)          # ends after the current batch, weights kept
    True
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from vizcore.data.datasets import ImageDataset
from vizcore.errors import ConvLensError
from vizcore.training.config import TrainConfig
from vizcore.training.fit import FitResult, fit
from vizcore.training.records import BatchRecord, EpochRecord, Record

STATUSES = ("running", "stopping", "done", "stopped", "failed")


@dataclass(frozen=True)
class JobState:
    """One consistent look at a job. ``version`` grows with every new record (skip redraws when unchanged)."""

    status: str  # 'running' | 'stopping' | 'done' | 'stopped' | 'failed'
    records: tuple[Record, ...]
    error: str | None
    progress: float  # share of all batches done, 0..1
    eta_s: float | None
    elapsed_s: float
    version: int
    result: FitResult | None = None

    @property
    def batches(self) -> tuple[BatchRecord, ...]:
        return tuple(r for r in self.records if isinstance(r, BatchRecord))

    @property
    def epochs(self) -> tuple[EpochRecord, ...]:
        return tuple(r for r in self.records if isinstance(r, EpochRecord))

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")


class TrainingJob:
    """Run ``fit`` on a daemon thread; thread-safe ``snapshot``, ``stop`` and ``wait``.

    The model is trained in place: pass a private copy (``trainable_copy``). Batch records beyond
    ``max_batch_records`` are thinned (every second old one dropped); epoch records are all kept.
    ``on_finish`` is called in the worker thread when the job ends, however it ends, before ``wait`` returns.
    ``fit_fn`` is the work the thread does (default ``fit``); another recipe (``vizcore.transfer``) passes its
    own with ``fit``'s signature and result. Any record with a ``progress`` (not only a BatchRecord) sets
    the job's progress and ETA.
    """

    def __init__(
        self,
        model,
        train: ImageDataset,
        val: ImageDataset | None,
        config: TrainConfig,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        snapshot_path: str | os.PathLike | None = None,
        on_progress=None,
        on_finish: Callable[[], object] | None = None,
        max_batch_records: int = 4000,
        fit_fn: Callable[..., FitResult] = fit,
        **fit_kwargs,
    ):
        self.model, self.train, self.val, self.config = model, train, val, config
        self._fit_kwargs = dict(checkpoint_path=checkpoint_path, snapshot_path=snapshot_path, **fit_kwargs)
        self._fit_fn = fit_fn
        self._user_sink = on_progress
        self._on_finish = on_finish
        self._max_batch = max_batch_records
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._records: list[Record] = []
        self._n_batch = 0
        self._version = 0
        self._status = "running"
        self._error: str | None = None
        self._result: FitResult | None = None
        self._t0 = time.perf_counter()
        self._t_end: float | None = None
        self._thread = threading.Thread(target=self._run, name="convlens-training", daemon=True)

    def start(self) -> TrainingJob:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _sink(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)
            self._version += 1
            if isinstance(record, BatchRecord):
                self._n_batch += 1
                if self._n_batch > self._max_batch:
                    self._thin()
        if self._user_sink is not None:
            self._user_sink(record)

    def _thin(self) -> None:
        """Drop every second batch record of the older half (lock held)."""
        batch_positions = [i for i, r in enumerate(self._records) if isinstance(r, BatchRecord)]
        drop = set(batch_positions[: len(batch_positions) // 2][1::2])
        self._records = [r for i, r in enumerate(self._records) if i not in drop]
        self._n_batch -= len(drop)

    def _run(self) -> None:
        status, error, result = "failed", None, None
        try:
            result = self._fit_fn(
                self.model,
                self.train,
                self.val,
                self.config,
                on_progress=self._sink,
                stop=self._stop,
                **self._fit_kwargs,
            )
            status = {"completed": "done", "stopped": "stopped"}.get(result.status, "failed")
            error = result.message if result.status == "diverged" else None
        except ConvLensError as err:
            error = str(err)
        except Exception as err:  # noqa: BLE001 - report anything to the page instead of dying silently
            last = traceback.extract_tb(err.__traceback__)[-1:]
            where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
            error = f"Training failed: {type(err).__name__}: {str(err)[:500]}{where}"
        finally:
            with self._lock:
                self._status, self._error, self._result = status, error, result
                self._t_end = time.perf_counter()
                self._version += 1
            try:
                if self._on_finish is not None:
                    self._on_finish()
            finally:
                self._done.set()

    def snapshot(self) -> JobState:
        """The current state: status, records so far, error, progress and ETA (thread-safe, cheap)."""
        with self._lock:
            records = tuple(self._records)
            status = self._status
            if status == "running" and self._stop.is_set():
                status = "stopping"
            last = next(
                (r for r in reversed(records) if hasattr(r, "progress")), None
            )  # a BatchRecord, or another stage's
            finished = status in ("done", "stopped", "failed")
            progress = 1.0 if status == "done" else (last.progress if last else 0.0)
            eta = 0.0 if finished else (last.eta_s if last else None)
            elapsed = (self._t_end or time.perf_counter()) - self._t0
            return JobState(status, records, self._error, progress, eta, elapsed, self._version, self._result)

    def stop(self) -> None:
        """Ask training to end after the current batch (returns at once; see ``wait``)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished or ``timeout`` seconds passed; True when finished."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()


def start_job(model, train: ImageDataset, val: ImageDataset | None, config: TrainConfig, **kwargs) -> TrainingJob:
    """Start ``fit(model, train, val, config, ...)`` in a daemon thread and return its job at once.

    Keyword arguments are those of ``TrainingJob`` (checkpoint_path, snapshot_path, on_progress, on_finish, ...).
    Problems found by ``check_compat`` end the job as 'failed' with their message; call
    ``check_compat`` first to show them before starting.
    """
    return TrainingJob(model, train, val, config, **kwargs).start()
