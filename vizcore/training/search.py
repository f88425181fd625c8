"""Hyperparameter search with Optuna: trials run one after another as ordinary training runs.

A study holds one of the server's training ``SLOTS`` from start to end; each trial is a ``start_run``
(its own folder, checkpoint and Stop) inside the study's folder, ``<runs_dir>/<session>/<study>/``,
beside ``study.db`` (Optuna's SQLite storage: every report and result is committed as it happens,
so Stop, a closed tab or a crash loses at most the running trial, and ``run_study`` on the same
folder resumes). The sampler is TPE with a fixed seed; a median pruner reads each epoch's
validation accuracy. The first trial is the base config (the recipe), so the study's best is
never worse than it on validation.

Example:
    >>> space = SearchSpace(learning_rate=(1e-4, 1e-2), batch_size=(32, 64), optimizer=("adam", "sgd"))
    >>> folder = new_study_folder(new_session_id())
    >>> result = run_study(loaded, train, val, space, RECOMMENDED["mnist_cnn"].replace(epochs=2),
    ...                    folder=folder, budget=Budget(trials=10), on_progress=print)
    >>> result.best.value, result.best.params["learning_rate"]
    (0.978, 0.0021)
    >>> working = best_model(folder, loaded)
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import optuna

from vizcore.data.datasets import ImageDataset
from vizcore.errors import ConvLensError, TrainingError
from vizcore.models import LoadedModel
from vizcore.training import builder
from vizcore.training.clone import trainable_copy
from vizcore.training.config import OPTIMIZERS, TrainConfig
from vizcore.training.inputs import check_compat
from vizcore.training.job import JobState
from vizcore.training.run import BUSY, SESSION_ID, SLOTS, Run, runs_dir, start_run
from vizcore.training.storage import load_checkpoint

STUDY_DB, STUDY_NAME = "study.db", "convlens"
STUDY_TOKEN = re.compile(r"^([0-9a-f]{12})\.([0-9a-f]{12})$")
NO_VALIDATION = "A search compares trials on validation images: set a validation share above 0."
NOT_A_CHAIN = (
    "Filters, dense units and dropout can be searched only for a plain chain of layers like the presets or a "
    "model from the Builder; this model is not one, so search only the training settings."
)
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SearchSpace:
    """What a study varies. A range ``(low, high)`` with low < high or two or more choices is searched;
    one value fixes it for every trial; None or ``()`` keeps the base config's (or model's) value.

    Attributes:
        learning_rate: log-uniform range.
        batch_size, optimizer: choices.
        step_every, step_factor: a step schedule's epochs between steps (integers) and factor;
            when either is set, trials use the step schedule.
        filters_scale: multiplies every convolution's filters (needs ``architecture_of(model)``).
        dense_units: units of the first hidden Dense layer; dropout: rate of the last Dropout layer
            (the one before the head); so the model's own values give back the model as it is.
        shift, rotation: augmentation ranges (fraction of the image, degrees).
    """

    learning_rate: tuple[float, float] | None = (1e-4, 1e-2)
    batch_size: tuple[int, ...] = (32, 64, 128)
    optimizer: tuple[str, ...] = ("adam", "sgd", "rmsprop")
    step_every: tuple[int, int] | None = (1, 5)
    step_factor: tuple[float, float] | None = (0.5, 1.0)
    filters_scale: tuple[float, ...] = ()
    dense_units: tuple[int, ...] = ()
    dropout: tuple[float, float] | None = None
    shift: tuple[float, float] | None = None
    rotation: tuple[float, float] | None = None

    RANGES = ("learning_rate", "step_every", "step_factor", "dropout", "shift", "rotation")
    ARCHITECTURE = ("filters_scale", "dense_units", "dropout")

    def searched(self) -> tuple[str, ...]:
        """Names of the settings that vary between trials."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value and (value[0] < value[1] if f.name in self.RANGES else len(set(value)) > 1):
                out.append(f.name)
        return tuple(out)

    @property
    def touches_architecture(self) -> bool:
        return any(getattr(self, name) for name in self.ARCHITECTURE)

    def problems(self) -> list[str]:
        """Spaces that cannot work, one sentence each; empty when all is well."""
        out = []
        if not self.searched():
            out.append("The search space is empty: give at least one setting a range or two choices to try.")
        for name in self.RANGES:
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or value[0] > value[1]):
                out.append(f"The {name.replace('_', ' ')} range must be (low, high) with low <= high, got {value}.")
        if self.learning_rate and not 0 < self.learning_rate[0] <= self.learning_rate[1] <= 10:
            out.append(f"The learning rate range must lie in (0, 10], got {self.learning_rate}.")
        if any(b < 1 for b in self.batch_size) or any(u < 1 for u in self.dense_units):
            out.append("Batch sizes and dense units must be at least 1.")
        if any(o not in OPTIMIZERS for o in self.optimizer):
            out.append(f"Optimizers are chosen among {', '.join(OPTIMIZERS)}, got {', '.join(self.optimizer)}.")
        if (
            self.step_every
            and self.step_every[0] < 1
            or self.step_factor
            and not 0 < self.step_factor[0] <= self.step_factor[1] <= 1
        ):
            out.append("A step schedule needs step sizes of at least 1 epoch and factors in (0, 1].")
        if any(s <= 0 for s in self.filters_scale):
            out.append("Filter multipliers must be above 0.")
        if (
            self.dropout
            and not 0 <= self.dropout[0] <= self.dropout[1] < 1
            or self.shift
            and not 0 <= self.shift[0] <= self.shift[1] < 1
        ):
            out.append("Dropout rates and random shifts are fractions in [0, 1).")
        if self.rotation and not 0 <= self.rotation[0] <= self.rotation[1] <= 180:
            out.append("Rotations are degrees in [0, 180].")
        return out

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's value for every setting the space names (searched ones from the sampler)."""
        searched, out = self.searched(), {}
        for name in ("learning_rate", "step_factor", "dropout", "shift", "rotation"):
            value = getattr(self, name)
            if value:
                out[name] = (
                    trial.suggest_float(name, *value, log=name == "learning_rate")
                    if name in searched
                    else float(value[0])
                )
        if self.step_every:
            out["step_every"] = (
                trial.suggest_int("step_every", *self.step_every)
                if "step_every" in searched
                else int(self.step_every[0])
            )
        for name in ("batch_size", "optimizer", "filters_scale", "dense_units"):
            value = getattr(self, name)
            if value:
                out[name] = trial.suggest_categorical(name, list(value)) if name in searched else value[0]
        return out

    def contains(self, name: str, value: Any) -> bool:
        """Whether ``value`` is one the space can give ``name`` (for enqueueing the base config)."""
        space = getattr(self, name)
        if not space:
            return False
        return space[0] <= value <= space[1] if name in self.RANGES else value in space

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(getattr(self, f.name)) if getattr(self, f.name) is not None else None) for f in fields(self)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SearchSpace:
        names = {f.name for f in fields(cls)}
        return cls(
            **{
                k: (tuple(v) if v is not None else (None if k in cls.RANGES else ()))
                for k, v in values.items()
                if k in names
            }
        )


@dataclass(frozen=True)
class Budget:
    """When a study ends: after ``trials`` finished trials in all (resumed ones count) and/or ``minutes``
    of this call (the running trial is stopped then). None: no limit of that kind."""

    trials: int | None = 10
    minutes: float | None = None

    def problems(self) -> list[str]:
        if self.trials is None and self.minutes is None:
            return ["Give the study a budget: a number of trials or of minutes."]
        if (self.trials is not None and self.trials < 1) or (self.minutes is not None and not self.minutes > 0):
            return [
                f"A budget of {self.trials or 0} trials or {self.minutes or 0} minutes runs nothing: give at least 1."
            ]
        return []


@dataclass(frozen=True)
class TrialRow:
    """One line of the trial table.

    ``state``: 'running', 'complete', 'pruned' or 'failed'; ``value``: the last epoch's validation
    accuracy (a pruned trial's last report); ``curve``: validation accuracy after each epoch.
    """

    number: int
    state: str
    params: Mapping[str, Any]
    value: float | None
    curve: tuple[float, ...]
    seconds: float | None
    note: str
    run: str | None


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


def best_row(rows: tuple[TrialRow, ...]) -> TrialRow | None:
    """The complete trial with the highest value (the earliest on a tie)."""
    done = [r for r in rows if r.state == "complete" and r.value is not None]
    return max(done, key=lambda r: (r.value, -r.number)) if done else None


def new_study_folder(session: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<session>/<12 hex digits>``: a fresh study's folder (made when the study starts)."""
    return Path(root or runs_dir()) / session / uuid.uuid4().hex[:12]


def open_study(
    folder: str | os.PathLike, *, seed: int = 0, startup_trials: int = 4, prune_after: int = 2
) -> optuna.Study:
    """The study in ``folder/study.db``, created when missing: maximize, TPE (seeded), and a median pruner
    that starts once ``prune_after`` trials are complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / STUDY_DB}"
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=prune_after, n_warmup_steps=0)
    return optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        study_name=STUDY_NAME,
        direction="maximize",
        load_if_exists=True,
    )


def study_token(folder: str | os.PathLike) -> str:
    """``<session>.<study>``: what a page's address carries to find the study again."""
    folder = Path(folder)
    return f"{folder.parent.name}.{folder.name}"


def find_study(root: str | os.PathLike, token: str) -> Path | None:
    """The folder of the study ``token`` names under ``root``; None for a malformed token or no study."""
    match = STUDY_TOKEN.match(token or "")
    if not match:
        return None
    folder = Path(root) / match.group(1) / match.group(2)
    return folder if (folder / STUDY_DB).is_file() else None


def saved_settings(folder: str | os.PathLike) -> tuple[SearchSpace, TrainConfig] | None:
    """The space and base config a study was started with (None when it has none recorded)."""
    attrs = load_study(folder).user_attrs
    if "space" not in attrs or "base" not in attrs:
        return None
    return SearchSpace.from_dict(attrs["space"]), TrainConfig.from_dict(attrs["base"])


def table(rows: tuple[TrialRow, ...]) -> dict[str, list]:
    """The trial table as columns: trial, state, validation accuracy, epochs, seconds, each setting, note."""
    names = list(dict.fromkeys(k for r in rows for k in r.params))
    out: dict[str, list] = {
        "trial": [r.number for r in rows],
        "state": [r.state for r in rows],
        "val accuracy": [r.value for r in rows],
        "epochs": [len(r.curve) for r in rows],
        "seconds": [None if r.seconds is None else round(r.seconds, 1) for r in rows],
    }
    out.update({name: [r.params.get(name) for r in rows] for name in names})
    out["note"] = [r.note for r in rows]
    return out


def load_study(folder: str | os.PathLike) -> optuna.Study:
    """A saved study, for its rows and figures.

    Raises:
        TrainingError: no study in ``folder``.
    """
    path = Path(folder) / STUDY_DB
    if not path.is_file():
        raise TrainingError(f"No saved study in {Path(folder).name}.")
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path}")


def rows_of(study: optuna.Study) -> tuple[TrialRow, ...]:
    """Every trial of ``study`` as a table row."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        curve = tuple(t.intermediate_values[k] for k in sorted(t.intermediate_values))
        value = t.value if t.value is not None else (curve[-1] if curve else None)
        state = {"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running"}.get(t.state.name, "failed")
        seconds = t.duration.total_seconds() if t.duration else None
        rows.append(
            TrialRow(
                t.number,
                state,
                {**t.user_attrs.get("settings", {}), **t.params},
                value,
                curve,
                seconds,
                str(t.user_attrs.get("note", "")),
                t.user_attrs.get("run"),
            )
        )
    return tuple(rows)


def architecture_of(model: keras.Model) -> tuple[builder.LayerSpec, ...] | None:
    """The builder specs of a plain chain model (its head left out), or None when it is not one."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if layers and isinstance(layers[-1], keras.layers.Activation):
        layers = layers[:-1]
    if not layers or not isinstance(layers[-1], keras.layers.Dense):
        return None
    specs: list[builder.LayerSpec] = []
    for layer in layers[:-1]:
        c = layer.get_config()
        act = c.get("activation")
        if (
            type(layer) is keras.layers.Conv2D
            and act in builder.ACTIVATIONS
            and len(set(c["kernel_size"])) == 1
            and len(set(c["strides"])) == 1
            and set(c["dilation_rate"]) == {1}
            and c.get("groups", 1) == 1
        ):
            specs.append(
                builder.Conv(c["filters"], c["kernel_size"][0], c["strides"][0], c["padding"], act, layer.name)
            )
        elif (
            type(layer) in (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D) and len(set(c["pool_size"])) == 1
        ):
            kind = builder.MaxPool if type(layer) is keras.layers.MaxPooling2D else builder.AvgPool
            stride = None if tuple(c["strides"] or c["pool_size"]) == tuple(c["pool_size"]) else c["strides"][0]
            specs.append(kind(c["pool_size"][0], stride, c["padding"], layer.name))
        elif type(layer) is keras.layers.Dropout:
            specs.append(builder.Dropout(float(c["rate"]), layer.name))
        elif type(layer) is keras.layers.Flatten:
            specs.append(builder.Flatten(layer.name))
        elif type(layer) is keras.layers.GlobalAveragePooling2D:
            specs.append(builder.GlobalAvgPool(layer.name))
        elif type(layer) is keras.layers.BatchNormalization:
            specs.append(builder.BatchNorm(layer.name))
        elif type(layer) is keras.layers.Dense and act in builder.ACTIVATIONS:
            specs.append(builder.Dense(c["units"], act, layer.name))
        else:
            return None
    return tuple(specs)


def apply_architecture(
    specs: tuple[builder.LayerSpec, ...], params: Mapping[str, Any]
) -> tuple[builder.LayerSpec, ...]:
    """The specs with a trial's ``filters_scale`` (every conv), ``dense_units`` (the first hidden Dense)
    and ``dropout`` (the last Dropout) applied."""
    dense = [i for i, s in enumerate(specs) if isinstance(s, builder.Dense)][:1]
    drop = [i for i, s in enumerate(specs) if isinstance(s, builder.Dropout)][-1:]
    out = []
    for i, spec in enumerate(specs):
        if isinstance(spec, builder.Conv) and "filters_scale" in params:
            spec = replace(spec, filters=max(1, round(spec.filters * params["filters_scale"])))
        elif i in dense and "dense_units" in params:
            spec = replace(spec, units=int(params["dense_units"]))
        elif i in drop and "dropout" in params:
            spec = replace(spec, rate=float(params["dropout"]))
        out.append(spec)
    return tuple(out)


def trial_config(base: TrainConfig, params: Mapping[str, Any]) -> TrainConfig:
    """The base config with a trial's training settings (architecture ones are left to the model)."""
    names = {f.name for f in fields(TrainConfig)}
    config = base.replace(**{k: v for k, v in params.items() if k in names}, snapshot_every_batches=0)
    return config.replace(schedule="step") if "step_every" in params or "step_factor" in params else config


def base_params(space: SearchSpace, base: TrainConfig, specs: tuple[builder.LayerSpec, ...] | None) -> dict[str, Any]:
    """The base config's (and model's) values of the searched settings that lie inside the space."""
    values = {k: getattr(base, k) for k in ("learning_rate", "batch_size", "optimizer", "shift", "rotation")}
    # a constant learning rate is a step schedule with factor 1
    values.update(step_every=base.step_every, step_factor=base.step_factor if base.schedule == "step" else 1.0)
    if specs:
        values["filters_scale"] = 1.0
        dense = [s.units for s in specs if isinstance(s, builder.Dense)]
        drops = [s.rate for s in specs if isinstance(s, builder.Dropout)]
        values.update({"dense_units": dense[0]} if dense else {}, **({"dropout": drops[-1]} if drops else {}))
    searched = space.searched()
    return {k: v for k, v in values.items() if k in searched and space.contains(k, v)}


def model_for(
    source: LoadedModel, specs: tuple[builder.LayerSpec, ...] | None, params: Mapping[str, Any], seed: int
) -> LoadedModel:
    """What a trial trains: the source model, or a fresh one built from the trial's architecture.

    A fresh model's weights come from ``keras.utils.set_random_seed(seed)`` (process-wide seeds).
    """
    if specs is None:
        return source
    keras.utils.set_random_seed(seed)
    model = builder.build(
        apply_architecture(specs, params),
        tuple(source.model.input_shape[1:]),
        int(source.model.output_shape[-1]),
        name=source.model.name,
    )
    return replace(source, model=model)


def run_study(
    source: LoadedModel,
    train: ImageDataset,
    val: ImageDataset | None,
    space: SearchSpace,
    base: TrainConfig,
    *,
    folder: str | os.PathLike,
    budget: Budget = Budget(),
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
            space, each trial trains a fresh model built from ``architecture_of(source.model)``.
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
    specs, problems = _check(source, val, space, base, budget, folder)
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


def _check(source, val, space, base, budget, folder) -> tuple[tuple | None, list[str]]:
    """(architecture specs, problems) of a study's inputs, before anything runs."""
    problems = space.problems() + budget.problems() + base.problems()
    if val is None or not len(val):
        problems.append(NO_VALIDATION)
    specs = architecture_of(source.model) if space.touches_architecture else None
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


def study_figures(study: optuna.Study) -> dict[str, Any]:
    """Optuna's own Plotly figures by title; those that need more finished trials are left out."""
    import optuna.visualization as vis

    makers = {
        "Optimization history": vis.plot_optimization_history,
        "Parameter importances": vis.plot_param_importances,
        "Parallel coordinates": vis.plot_parallel_coordinate,
        "Slice plot": vis.plot_slice,
        "Intermediate values": vis.plot_intermediate_values,
    }
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    out = {}
    for title, make in makers.items():
        if title == "Parameter importances" and (len(complete) < 2 or not any(t.params for t in complete)):
            continue
        try:
            out[title] = make(study)
        except (ValueError, RuntimeError):  # too few trials or parameters for this figure
            continue
    return out


@dataclass
class StudyJob:
    """``run_study`` on a daemon thread, polled by a page like ``TrainingJob``.

    Example:
        >>> job = start_study(loaded, train, val, SearchSpace(), TrainConfig(epochs=1), folder=new_study_folder(sid))
        >>> job.snapshot()["rows"][0].state
        'running'
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
    budget: Budget = Budget(),
    slots: threading.Semaphore = SLOTS,
    **kwargs,
) -> StudyJob:
    """Check everything, then run the study on a daemon thread; returns its job at once.

    Raises:
        TrainingError: what ``run_study`` refuses (checked here, before the thread starts).
    """
    _, problems = _check(source, val, space, base, budget, folder)
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
