"""Hyperparameter search with Optuna: trials run one after another as ordinary training runs.

A study holds one of the server's training ``SLOTS`` from start to end; each trial is a ``start_run``
(its own folder, checkpoint and Stop) inside the study's folder, ``<runs_dir>/<session>/<study>/``,
beside ``study.db`` (Optuna's SQLite storage: every report and result is committed as it happens,
so Stop, a closed tab or a crash loses at most the running trial, and ``run_study`` on the same
folder resumes). The sampler is TPE with a fixed seed; a median pruner reads each epoch's
validation accuracy. The first trial is the base config (the recipe), so the study's best is
never worse than it on validation.

Modules, lowest first: ``space`` (SearchSpace, Budget), ``studies`` (folders, tokens, the SQLite
storage, trials as rows), ``trials`` (one trial's config and model; the architecture comes from
``builder.architecture_of``), ``runner`` (``run_study``, ``best_model``), ``job`` (``StudyJob`` on a
thread for a page), ``figures`` (the trial table and Optuna's figures).

Example:
    >>> space = SearchSpace(learning_rate=(1e-4, 1e-2), batch_size=(32, 64), optimizer=("adam", "sgd"))
    >>> folder = new_study_folder(new_session_id())
    >>> result = run_study(loaded, train, val, space, RECOMMENDED["mnist_cnn"].replace(epochs=2),
    ...                    folder=folder, budget=Budget(trials=10), on_progress=print)
    >>> result.best.value, result.best.params["learning_rate"]
    (0.978, 0.0021)
    >>> working = best_model(folder, loaded)
"""

from vizcore.training.search.figures import study_figures, table
from vizcore.training.search.job import StudyJob, start_study
from vizcore.training.search.runner import NO_VALIDATION, NOT_A_CHAIN, StudyResult, best_model, check_study, run_study
from vizcore.training.search.space import DEFAULT_BUDGET, Budget, SearchSpace
from vizcore.training.search.studies import (
    STUDY_DB,
    STUDY_NAME,
    STUDY_TOKEN,
    TrialRow,
    best_row,
    find_study,
    load_study,
    new_study_folder,
    open_study,
    rows_of,
    saved_settings,
    study_token,
)
from vizcore.training.search.trials import apply_architecture, base_params, model_for, trial_config

__all__ = [
    "DEFAULT_BUDGET",
    "Budget",
    "NOT_A_CHAIN",
    "NO_VALIDATION",
    "STUDY_DB",
    "STUDY_NAME",
    "STUDY_TOKEN",
    "SearchSpace",
    "StudyJob",
    "StudyResult",
    "TrialRow",
    "apply_architecture",
    "base_params",
    "best_model",
    "best_row",
    "check_study",
    "find_study",
    "load_study",
    "model_for",
    "new_study_folder",
    "open_study",
    "rows_of",
    "run_study",
    "saved_settings",
    "start_study",
    "study_figures",
    "study_token",
    "table",
    "trial_config",
]
