"""Run (or resume) a study: trials one after another as ordinary training runs, and its best model.

A study holds one of the server's training ``SLOTS`` from start to end; each trial is a ``start_run``
(its own folder, checkpoint and Stop) inside the study's folder. The sampler is TPE with a fixed
seed; a median pruner reads each epoch's validation accuracy. The first trial is the base config
(the recipe), so the study's best is never worse than it on validation.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from vizcore.data.datasets import ImageDataset
from vizcore.errors import ConvLensError, TrainingError
from vizcore.models import LoadedModel
from vizcore.training import builder
from vizcore.training.clone import trainable_copy
from vizcore.training.config import TrainConfig
from vizcore.training.inputs import check_compat
from vizcore.training.job import JobState
from vizcore.training.run import BUSY, SESSION_ID, SLOTS, Run, start_run
from vizcore.training.search.space import DEFAULT_BUDGET, Budget, SearchSpace
from vizcore.training.search.studies import TrialRow, best_row, load_study, open_study, rows_of
from vizcore.training.search.trials import base_params, model_for, trial_config
from vizcore.training.storage import load_checkpoint

NO_VALIDATION = "A search compares trials on validation images: set a validation share above 0."
NOT_A_CHAIN = (
    "Filters, dense units and dropout can be searched only for a plain chain of layers like the presets or a "
    "model from the Builder; this model is not one, so search only the training settings."
)


@dataclass(frozen=True)
class StudyResult:
    """What ``run_study`` did. ``status``: 'done' (trial budget), 'out of time' or 'stopped'."""

    status: str
    rows: tuple[TrialRow, ...]
    folder: Path
    seconds: float

    @property
    def best(self) -> TrialRow | None:
        return best_row(self.rows)


def run_study(
    source: LoadedModel,
    train: ImageDataset,
    val: ImageDataset | None,
    space: SearchSpace,
    base: TrainConfig,
    *,
    folder: str | os.PathLike,
    budget: Budget = DEFAULT_BUDGET,
    on_progress: Callable[[tuple[TrialRow, ...]], object] | None = None,
    stop: threading.Event | None = None,
    on_trial: Callable[[Run], object] | None = None,
    startup_trials: int = 4,
    prune_after: int = 2,
    slots: threading.Semaphore = SLOTS,
    poll_s: float = 0.2,
) -> StudyResult:
    """Run (or resume) the study in ``folder``: trials one after another until the budget or Stop.

    Args:
        source: the model to start each trial from (copied); with architecture settings in the
            space, each trial trains a fresh model built from ``builder.architecture_of(source.model)``.
        space, base: what varies, and every other setting (``base`` is also the first trial).
        folder: the study's folder (``new_study_folder``); an existing one resumes its study.
        on_progress: called in the study's thread with every row after each epoch and each trial.
        stop: set it to stop the running trial (kept as pruned) and end the study.
        on_trial: called with each trial's ``Run`` when it starts (to show its live progress).
        startup_trials: random trials before TPE models the results; prune_after: complete
            trials before the median pruner acts.
        slots: the server's training slots; the study holds one from start to end.

    Returns:
        StudyResult with every row (resumed trials included), the status and the time.

    Raises:
        TrainingError: an empty space, a zero budget, no validation data, data that does not fit,
            or no free slot.
    """
    specs, problems = check_study(source, val, space, base, budget, folder)
    problems = problems or check_compat(source.model, train, base, val=val, split=False)
    if problems:
        raise TrainingError(" ".join(problems))
    stop = stop or threading.Event()
    if not slots.acquire(blocking=False):
        raise TrainingError(BUSY)
    t0 = time.perf_counter()
    try:
        folder = Path(folder)
        study = open_study(folder, seed=base.seed, startup_trials=startup_trials, prune_after=prune_after)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left running by a crash: never resumed
        if not study.trials:
            study.set_user_attr("space", space.to_dict())
            study.set_user_attr("base", base.to_dict())
            study.enqueue_trial(base_params(space, base, specs))
        else:  # a resumed study: a fresh seed, so the sampler does not replay its first draws
            study.sampler = optuna.samplers.TPESampler(
                seed=base.seed + len(study.trials), n_startup_trials=startup_trials
            )
        deadline = t0 + budget.minutes * 60 if budget.minutes else math.inf
        inner = threading.BoundedSemaphore(1)
        status = "done"
        while True:
            finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
            if budget.trials is not None and finished >= budget.trials:
                break
            if stop.is_set() or time.perf_counter() >= deadline:
                status = "stopped" if stop.is_set() else "out of time"
                break
            trial = study.ask()
            params = space.suggest(trial)
            _run_trial(
                study,
                trial,
                params,
                source,
                specs,
                train,
                val,
                base,
                folder,
                inner,
                stop,
                deadline,
                on_progress,
                on_trial,
                poll_s,
            )
        rows = rows_of(study)
    finally:
        slots.release()
    return StudyResult(status, rows, folder, time.perf_counter() - t0)


def check_study(source, val, space, base, budget, folder) -> tuple[tuple | None, list[str]]:
    """(architecture specs, problems) of a study's inputs, before anything runs (``start_study`` checks
    them before its thread starts)."""
    problems = space.problems() + budget.problems() + base.problems()
    if val is None or not len(val):
        problems.append(NO_VALIDATION)
    specs = builder.architecture_of(source.model) if space.touches_architecture else None
    if space.touches_architecture and specs is None:
        problems.append(NOT_A_CHAIN)
    if not SESSION_ID.match(Path(folder).name):
        problems.append(f"A study's folder is named by new_study_folder (12 hex digits), got {Path(folder).name!r}.")
    return specs, problems


def _emit(study: optuna.Study, sink) -> None:
    if sink is not None:
        try:
            sink(rows_of(study))
        except Exception:  # noqa: BLE001 - a broken display must not stop the study
            pass


def _run_trial(
    study, trial, params, source, specs, train, val, base, folder, inner, stop, deadline, sink, on_trial, poll_s
) -> None:
    """One trial as a training run: report each epoch's validation accuracy, prune, tell the result."""
    State = optuna.trial.TrialState
    config = trial_config(base, params)
    trial.set_user_attr("settings", dict(params))
    try:
        problems = config.problems()
        if problems:
            raise TrainingError(" ".join(problems))
        model = model_for(source, specs, params, base.seed + trial.number)
        run = start_run(
            model,
            train,
            val,
            config,
            session=folder.name,
            root=folder.parent,
            slots=inner,
            label=f"{source.label.split(' (')[0]} · trial {trial.number}",
        )
    except (ConvLensError, ValueError) as err:
        trial.set_user_attr("note", f"failed: {err}")
        study.tell(trial, state=State.FAIL)
        _emit(study, sink)
        return
    trial.set_user_attr("run", run.id)
    if on_trial is not None:
        on_trial(run)
    _emit(study, sink)
    reported, why, trial_reports = 0, None, []
    while True:
        ended = run.job.wait(poll_s)
        state = run.job.snapshot()
        for record in state.epochs[reported:]:
            reported += 1
            if not record.complete or record.val_accuracy is None or not math.isfinite(record.val_accuracy):
                continue
            trial.report(float(record.val_accuracy), record.epoch)
            trial_reports.append(record.epoch)
            if why is None and trial.should_prune():
                why = f"pruned after epoch {record.epoch + 1}: validation accuracy below the median of earlier trials"
                run.stop()
            _emit(study, sink)
        if ended:
            break
        if why is None and (stop.is_set() or time.perf_counter() >= deadline):
            why = "stopped" if stop.is_set() else "stopped: out of time"
            run.stop()
    _tell(study, trial, run.job.snapshot(), why, reported=bool(trial_reports))
    _emit(study, sink)


def _tell(study, trial, state: JobState, why: str | None, *, reported: bool) -> None:
    State = optuna.trial.TrialState
    result = state.result
    if result is not None and result.status == "diverged":
        trial.set_user_attr("note", "pruned: " + result.message)
        study.tell(trial, state=State.PRUNED)
    elif result is None:
        trial.set_user_attr("note", f"failed: {state.error}")
        study.tell(trial, state=State.FAIL)
    elif why is not None:
        trial.set_user_attr("note", why)
        study.tell(trial, state=State.PRUNED if reported else State.FAIL)
    else:
        last = state.epochs[-1].val_accuracy if state.epochs else None
        if last is None or not math.isfinite(last):
            trial.set_user_attr("note", "failed: no validation accuracy")
            study.tell(trial, state=State.FAIL)
        else:
            study.tell(trial, float(last))


def best_model(folder: str | os.PathLike, source: LoadedModel) -> LoadedModel:
    """The best trial's trained model (from its checkpoint), as a working model named after ``source``.

    Raises:
        TrainingError: no complete trial, or its checkpoint cannot be read.
    """
    folder = Path(folder)
    best = best_row(rows_of(load_study(folder)))
    if best is None or best.run is None:
        raise TrainingError("The study has no complete trial yet, so there is no best model.")
    checkpoint = load_checkpoint(folder / best.run / "checkpoint.keras")
    card = {
        "trained_here": True,
        "status": "search best",
        "snapshots": str(folder / best.run / "snapshots.npz"),
        "params": dict(best.params),
        "val_accuracy": best.value,
        "study": folder.name,
        "trial": best.number,
    }
    return LoadedModel(
        trainable_copy(checkpoint.model),
        f"trained:{folder.name}.{best.run}",
        f"{source.label.split(' (')[0]} (search best, trial {best.number})",
        source.class_names,
        source.preprocess,
        card,
    )
