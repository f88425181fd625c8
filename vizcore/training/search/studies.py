"""A study on disk: its folder and the token a page's address carries, Optuna's SQLite storage, its trials as rows.

A study lives in ``<runs_dir>/<session>/<study>/`` beside ``study.db`` (every report and result is
committed as it happens); its token is ``<session>.<study>``, two groups of 12 hex digits.

Example:
    >>> folder = new_study_folder(new_session_id())
    >>> find_study(runs_dir(), study_token(folder)) == folder     # once the study has started
    True
    >>> best_row(rows_of(load_study(folder))).value
    0.978
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from vizcore.errors import TrainingError
from vizcore.training.config import TrainConfig
from vizcore.training.run import runs_dir
from vizcore.training.search.space import SearchSpace

STUDY_DB, STUDY_NAME = "study.db", "convlens"
STUDY_TOKEN = re.compile(r"^([0-9a-f]{12})\.([0-9a-f]{12})$")
optuna.logging.set_verbosity(optuna.logging.WARNING)


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
