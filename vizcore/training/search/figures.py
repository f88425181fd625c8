"""A study for the page: its trial table as columns, and Optuna's own Plotly figures."""

from __future__ import annotations

from typing import Any

import optuna

from vizcore.training.search.studies import TrialRow


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
