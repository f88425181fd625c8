"""The Teach page's "Under the hood" settings, its Train button and the live view of a teach run.

A run is a ``transfer.TeachRun``: ``teach`` inside a training job (one of the server's training slots),
polled by a fragment every second; Stop ends it after the current batch, and a closed tab stops it.
"""

from __future__ import annotations

import streamlit as st

from pages import _sessions, _state, _teach_base, _train_results
from vizcore import training, transfer
from vizcore.errors import ConvLensError, TrainingError

RUN = "teach.run"
DEFAULTS = transfer.TeachSettings()
FIELDS = {  # TeachSettings field -> widget key
    "epochs": "teach.epochs",
    "batch_size": "teach.batch",
    "learning_rate": "teach.lr",
    "head_units": "teach.units",
    "validation_fraction": "teach.val",
    "fine_tune_blocks": "teach.blocks",
    "fine_tune_epochs": "teach.ft_epochs",
    "fine_tune_learning_rate": "teach.ft_lr",
    "augment": "teach.augment",
    "augment_copies": "teach.copies",
}


def under_the_hood(base, *, disabled: bool) -> transfer.TeachSettings:
    """The settings, Teachable Machine's by default, in an expander."""
    for field, key in FIELDS.items():
        _state.keep(key, getattr(DEFAULTS, field))
    with st.expander("Under the hood", expanded=False):
        c = st.columns(4)
        c[0].number_input(
            "Epochs",
            1,
            1000,
            key="teach.epochs",
            disabled=disabled,
            help="Passes of the head over the features; the base runs once, whatever this is",
        )
        c[1].number_input("Batch size", 1, 512, key="teach.batch", disabled=disabled)
        c[2].number_input("Learning rate", 1e-6, 1.0, format="%.5f", key="teach.lr", disabled=disabled)
        c[3].number_input(
            "Head units", 1, 2048, key="teach.units", disabled=disabled, help="Dense(units, relu), then the classes"
        )
        c = st.columns(4)
        c[0].number_input(
            "Blocks to fine-tune",
            0,
            50,
            key="teach.blocks",
            disabled=disabled,
            help="0: Teachable Machine's recipe. 1 or more: a second phase trains the base's last blocks "
            "(BatchNorm stays frozen) with a low learning rate, a pass of the base per epoch",
        )
        c[1].number_input("Fine-tuning epochs", 1, 200, key="teach.ft_epochs", disabled=disabled)
        c[2].number_input("Fine-tuning learning rate", 1e-7, 1e-2, format="%.6f", key="teach.ft_lr", disabled=disabled)
        c[3].slider("Validation share", 0.0, 0.5, step=0.05, key="teach.val", disabled=disabled)
        c = st.columns(4)
        c[0].checkbox(
            "Augmentation",
            key="teach.augment",
            disabled=disabled,
            help="Flipped, slightly cropped and turned copies of each training image, computed once",
        )
        c[1].number_input(
            "Copies per image", 1, 10, key="teach.copies", disabled=disabled or not st.session_state["teach.augment"]
        )
        layer = None
        if base is not None:
            choices, auto = _teach_base.layer_choices(base)
            picked = c[2].selectbox(
                "Feature layer",
                list(choices),
                list(choices).index(auto) if auto in choices else 0,
                key=f"teach.layer.{base.key}",
                disabled=disabled,
                help="Its output, averaged over positions, feeds the head",
            )
            layer = None if picked == auto else picked
    values = {field: st.session_state[key] for field, key in FIELDS.items()}
    return transfer.TeachSettings.from_dict({**values, "feature_layer": layer})


def start(base, classes, settings: transfer.TeachSettings, *, disabled: bool) -> None:
    """The Train button: the classes to a dataset (one sentence for what is wrong), then a teach run."""
    if not st.button("🎓 Train", key="teach.train", type="primary", disabled=disabled or base is None):
        return
    problems = settings.problems()
    try:
        if problems:
            raise ConvLensError(" ".join(problems))
        with st.spinner("Fitting the images to the base…"):
            dataset, notes = transfer.dataset_from_classes(classes, base)
        session = st.session_state.setdefault("train.session", training.new_session_id())
        run = transfer.start_teach(base, dataset, settings, session=session)
    except (ConvLensError, TrainingError) as err:
        st.error(str(err), icon="⚠️")
        return
    st.session_state["teach.notes"] = list(notes)
    _sessions.on_session_end(run.stop)  # a closed tab stops its run
    st.session_state[RUN] = run
    st.rerun()


def _status(state, run: transfer.TeachRun) -> str:
    last = next((r for r in reversed(state.records) if hasattr(r, "progress")), None)
    text = f"{state.status} · {state.progress:.0%}"
    if isinstance(last, transfer.FeatureRecord):
        text += f" · the base reads the images once: {last.done:,} of {last.total:,}"
    elif last is not None:
        phase = "fine-tuning" if last.epoch >= run.settings.epochs else "the head"
        total = run.settings.epochs + (run.settings.fine_tune_epochs if run.settings.fine_tunes else 0)
        text += f" · {phase}: epoch {last.epoch + 1}/{total}"
    if state.eta_s is not None and not state.finished:
        text += f" · about {state.eta_s:.0f} s left"
    return text


def _view() -> None:
    """Progress, Stop and the curves of this session's run; the whole page reruns once it has ended (results)."""
    run: transfer.TeachRun | None = st.session_state.get(RUN)
    if run is None:
        return
    state = run.job.snapshot()
    st.progress(1.0 if state.status == "done" else min(1.0, state.progress), text=_status(state, run))
    if not state.finished and st.button(
        "Stop", key="teach.stop", help="Ends after the current batch; keeps the weights so far"
    ):
        run.stop()
    if state.error:
        st.error(state.error)
    c1, c2 = st.columns(2)
    c1.plotly_chart(_train_results.curves(state, "loss"), key="teach.loss_curve")
    c2.plotly_chart(_train_results.curves(state, "accuracy"), key="teach.acc_curve")
    if state.finished and st.session_state.get("teach.shown") != run.id:
        st.session_state["teach.shown"] = run.id
        st.rerun()


def live(run: transfer.TeachRun) -> None:
    """The run's live view: polled every second while it goes on (page reruns never touch its thread)."""
    st.fragment(_view, run_every=None if run.finished else 1.0)()
