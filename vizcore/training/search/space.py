"""What a study varies (``SearchSpace``) and when it ends (``Budget``).

Example:
    >>> space = SearchSpace(learning_rate=(1e-4, 1e-2), batch_size=(32, 64), optimizer=("adam", "sgd"))
    >>> space.searched(), space.problems()
    (('learning_rate', 'batch_size', 'optimizer', 'step_every', 'step_factor'), [])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import optuna

from vizcore.training.config import OPTIMIZERS


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


DEFAULT_BUDGET = Budget()  # frozen: one shared default for run_study and start_study
