"""``run_study`` on a daemon thread, polled by a page like ``TrainingJob``."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from vizcore.data.datasets import ImageDataset
from vizcore.errors import ConvLensError, TrainingError
from vizcore.models import LoadedModel
from vizcore.training.config import TrainConfig
from vizcore.training.job import JobState
from vizcore.training.run import SLOTS, Run
from vizcore.training.search.runner import StudyResult, check_study, run_study
from vizcore.training.search.space import DEFAULT_BUDGET, Budget, SearchSpace
from vizcore.training.search.studies import TrialRow


@dataclass
class StudyJob:
    """``run_study`` on a daemon thread, polled by a page like ``TrainingJob``.

    The worker thread writes ``rows`` (every trial so far, after each epoch and trial), ``current``
    (the running trial's ``Run``), then ``result`` or ``error``; a page reads them, and
    ``trial_state()`` for the running trial's progress.

    Example:
        >>> job = start_study(loaded, train, val, SearchSpace(), TrainConfig(epochs=1), folder=new_study_folder(sid))
        >>> job.done, job.rows                     # at once: the thread runs the first trial
        (False, ())
        >>> job.wait(), job.result.status, job.rows[0].state
        (True, 'done', 'complete')
    """

    folder: Path
    thread: threading.Thread | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    rows: tuple[TrialRow, ...] = ()
    current: Run | None = None
    result: StudyResult | None = None
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)

    def stop(self) -> None:
        """Stop the running trial (kept as pruned) and end the study; returns at once."""
        self.stop_event.set()

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
        return self.done

    def trial_state(self) -> JobState | None:
        """The running trial's training state (progress, ETA), None between trials."""
        return self.current.job.snapshot() if self.current is not None and not self.done else None


def start_study(
    source: LoadedModel,
    train: ImageDataset,
    val: ImageDataset | None,
    space: SearchSpace,
    base: TrainConfig,
    *,
    folder: str | os.PathLike,
    budget: Budget = DEFAULT_BUDGET,
    slots: threading.Semaphore = SLOTS,
    **kwargs,
) -> StudyJob:
    """Check everything, then run the study on a daemon thread; returns its job at once.

    Raises:
        TrainingError: what ``run_study`` refuses (checked here, before the thread starts).
    """
    _, problems = check_study(source, val, space, base, budget, folder)
    if problems:
        raise TrainingError(" ".join(problems))
    job = StudyJob(Path(folder))

    def sink(rows):
        job.rows = rows

    def work():
        try:
            job.result = run_study(
                source,
                train,
                val,
                space,
                base,
                folder=folder,
                budget=budget,
                on_progress=sink,
                stop=job.stop_event,
                on_trial=lambda run: setattr(job, "current", run),
                slots=slots,
                **kwargs,
            )
            job.rows = job.result.rows
        except ConvLensError as err:
            job.error = str(err)
        except Exception as err:  # noqa: BLE001 - report anything to the page
            job.error = f"The study failed: {type(err).__name__}: {str(err)[:300]}"

    job.thread = threading.Thread(target=work, name="convlens-study", daemon=True)
    job.thread.start()
    return job
