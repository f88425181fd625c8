"""The Training page's hyperparameter search: a search-space form, a live trial table, Optuna's figures."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages import _rerun, _sessions, _working
from vizcore import training
from vizcore.errors import TrainingError
from vizcore.training import builder

# optuna keeps the ImportErrors of its optional backends: imported here, they would pin the session
search = _rerun.import_detached("vizcore.training.search")
JOB, FOLDER = "search.job", "search.folder"  # this session's StudyJob, and the folder of its last study
BATCHES, FILTERS, UNITS = (16, 32, 64, 128, 256), (0.5, 1.0, 2.0), (32, 64, 128, 256, 512)


def space_form(loaded, disabled: bool) -> search.SearchSpace:
    """The search space from its widgets (a setting left unticked keeps the training settings' value)."""
    c = st.columns(3)
    lr = c[0].checkbox("Learning rate (log scale)", True, key="search.lr", disabled=disabled)
    lo = c[1].number_input("from", 1e-6, 10.0, 1e-4, format="%.5f", key="search.lr_lo", disabled=disabled or not lr)
    hi = c[2].number_input("to", 1e-6, 10.0, 1e-2, format="%.5f", key="search.lr_hi", disabled=disabled or not lr)
    c = st.columns(2)
    batches = c[0].multiselect("Batch sizes", BATCHES, [32, 64, 128], key="search.batch", disabled=disabled)
    optimizers = c[1].multiselect(
        "Optimizers", training.OPTIMIZERS, list(training.OPTIMIZERS), key="search.opt", disabled=disabled
    )
    c = st.columns(3)
    step = c[0].checkbox("Step schedule: step size and factor", True, key="search.step", disabled=disabled)
    every = c[1].slider("step every (epochs)", 1, 20, (1, 5), key="search.step_every", disabled=disabled or not step)
    factor = c[2].slider(
        "factor", 0.05, 1.0, (0.5, 1.0), step=0.05, key="search.step_factor", disabled=disabled or not step
    )
    chain = builder.architecture_of(loaded.model) is not None
    c = st.columns(3)
    filters = c[0].multiselect(
        "Filters (× every conv layer's)", FILTERS, [], key="search.filters", disabled=disabled or not chain
    )
    units = c[1].multiselect(
        "Units of the first dense layer", UNITS, [], key="search.dense", disabled=disabled or not chain
    )
    drop = c[2].checkbox("Dropout before the head", False, key="search.dropout_on", disabled=disabled or not chain)
    dropout = c[2].slider(
        "dropout",
        0.0,
        0.8,
        (0.2, 0.5),
        step=0.05,
        key="search.dropout",
        disabled=disabled or not drop,
        label_visibility="collapsed",
    )
    if not chain:
        st.caption(
            "Filters, units and dropout can be searched for a plain chain of layers (the presets, a Builder model)."
        )
    c = st.columns(2)
    shift_on = c[0].checkbox("Random shift", False, key="search.shift_on", disabled=disabled)
    shift = c[0].slider(
        "shift",
        0.0,
        0.3,
        (0.0, 0.15),
        step=0.025,
        key="search.shift",
        disabled=disabled or not shift_on,
        label_visibility="collapsed",
    )
    rot_on = c[1].checkbox("Rotation (°)", False, key="search.rot_on", disabled=disabled)
    rot = c[1].slider(
        "rotation",
        0.0,
        45.0,
        (0.0, 15.0),
        step=1.0,
        key="search.rot",
        disabled=disabled or not rot_on,
        label_visibility="collapsed",
    )
    return search.SearchSpace(
        learning_rate=(lo, hi) if lr else None,
        batch_size=tuple(batches),
        optimizer=tuple(optimizers),
        step_every=every if step else None,
        step_factor=factor if step else None,
        filters_scale=tuple(filters) if chain else (),
        dense_units=tuple(units) if chain else (),
        dropout=dropout if chain and drop else None,
        shift=shift if shift_on else None,
        rotation=rot if rot_on else None,
    )


def budget_form(disabled: bool) -> tuple[search.Budget, int]:
    """The budget (trials or minutes) and the epochs of each trial."""
    c = st.columns(3)
    kind = c[0].radio("Budget", ("trials", "minutes"), horizontal=True, key="search.budget_kind", disabled=disabled)
    amount = c[1].number_input(f"Number of {kind}", 0, 1000, 10, key="search.budget", disabled=disabled)
    epochs = c[2].number_input("Epochs per trial", 1, 100, 2, key="search.epochs", disabled=disabled)
    budget = (
        search.Budget(trials=int(amount)) if kind == "trials" else search.Budget(trials=None, minutes=float(amount))
    )
    return budget, int(epochs)


def start(loaded, train, val, space, base, budget, folder) -> None:
    try:
        job = search.start_study(loaded, train, val, space, base, folder=folder, budget=budget)
    except TrainingError as err:
        st.error(str(err), icon="⚠️")
        return
    _sessions.on_session_end(job.stop)  # a closed tab stops its study (finished trials stay in study.db)
    st.session_state[JOB], st.session_state[FOLDER] = job, job.folder
    st.query_params["study"] = search.study_token(job.folder)  # reopening this address finds the study
    st.rerun()


def live() -> None:
    """Polls the study: the running trial's progress, Stop, the trial table."""
    job: search.StudyJob | None = st.session_state.get(JOB)
    if job is None:
        return
    rows = job.rows
    trial = job.trial_state()
    done = sum(r.state != "running" for r in rows)
    status = "running" if not job.done else job.result.status if job.result is not None else "failed"
    text = f"{status} · {done} trial(s) finished"  # status: running, done, stopped, out of time or failed
    if trial is not None and rows:
        text += f" · trial {rows[-1].number}: {trial.progress:.0%}"
    st.progress(min(1.0, trial.progress if trial is not None else 1.0 if job.done else 0.0), text=text)
    if not job.done and st.button(
        "Stop the search", key="search.stop", help="Stops the running trial and ends the study"
    ):
        job.stop()
    if job.error:
        st.error(job.error)
    if rows:
        st.dataframe(search.table(rows), hide_index=True, key="search.table")
    if job.done and not st.session_state.get("search.shown"):
        st.session_state["search.shown"] = True  # one full rerun draws the figures and "Use best"
        st.rerun()


def results(loaded, folder) -> None:
    """The saved study: its table, Optuna's figures and "Use best"."""
    try:
        study = search.load_study(folder)
    except TrainingError:
        return
    rows = search.rows_of(study)
    best = search.best_row(rows)
    if JOB not in st.session_state and rows:
        st.dataframe(search.table(rows), hide_index=True, key="search.saved_table")
    if best is None:
        return
    st.metric("Best validation accuracy", f"{best.value:.1%}", help=f"Trial {best.number}: {dict(best.params)}")
    figures = search.study_figures(study)
    for tab, (title, figure) in zip(st.tabs(list(figures)), figures.items()):
        tab.plotly_chart(figure, key=f"search.fig.{title}")
    if st.button(
        "Use best", key="search.use_best", type="primary", help="Makes the best trial's trained model the working model"
    ):
        try:
            model = search.best_model(folder, loaded)
        except TrainingError as err:
            st.error(str(err))
            return
        _working.set_working(_working.add_session_model("trained", model))
        st.rerun()  # every part of the page, the sidebar too, shows the new working model
    if loaded.card.get("study") == Path(folder).name:
        st.success(
            f"Trial {loaded.card['trial']}'s model ({loaded.card['val_accuracy']:.1%} on validation) is the working "
            "model on every page."
        )


def section(loaded, train, val, config: training.TrainConfig, *, busy: bool = False) -> None:
    """The search section: the form, Start/Resume, the live table, figures and "Use best".

    ``train``/``val`` are None when the training settings have problems; ``busy``: this session trains.
    """
    job: search.StudyJob | None = st.session_state.get(JOB)
    running = job is not None and not job.done
    if FOLDER not in st.session_state:
        found = search.find_study(training.runs_dir(), st.query_params.get("study", ""))
        if found is not None:
            st.session_state[FOLDER] = found
    folder = st.session_state.get(FOLDER)
    with st.expander("🔎 Hyperparameter search (Optuna)", expanded=running or folder is not None):
        st.caption(
            "Trials train one after another with the settings above, varied within these ranges (TPE sampler, "
            "seeded; trials below the median after an epoch are pruned). The first trial is the settings above."
        )
        space = space_form(loaded, running)
        budget, epochs = budget_form(running)
        base = config.replace(epochs=epochs)
        ready = train is not None and not busy and not running
        c = st.columns(2)
        if c[0].button("Start a new search", key="search.start", disabled=not ready):
            session = st.session_state.setdefault("train.session", training.new_session_id())
            st.session_state["search.shown"] = False
            start(loaded, train, val, space, base, budget, search.new_study_folder(session))
        if folder is not None and c[1].button(
            "Resume this search",
            key="search.resume",
            disabled=not ready,
            help="Runs trials until the study has as many as the budget says",
        ):
            saved = search.saved_settings(folder)
            st.session_state["search.shown"] = False
            start(loaded, train, val, *(saved or (space, base)), budget, folder)
        if train is None:
            st.caption("Fix the training settings above to search.")
        st.fragment(run_every=1.0 if running else None)(live)()
        if folder is not None and not running:
            results(loaded, folder)
