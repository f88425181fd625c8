"""The Training page's curves, its hand-over of the trained model, and the results panel."""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from pages import _working
from vizcore import training
from vizcore.errors import TrainingError
from vizcore.present import figures, render


def curves(state: training.JobState, metric: str):
    """Per-batch (smoothed) and per-epoch curves of loss or accuracy, for training and validation."""
    batches, epochs = state.batches, state.epochs
    series = {}
    if batches:
        xs = [b.epoch_float for b in batches]  # each its own steps per epoch (a teach run's two phases differ)
        series[f"train {metric} (per batch, smoothed)"] = (xs, [getattr(b, f"smooth_{metric}") for b in batches])
    if epochs:
        xs = [e.epoch + 1 for e in epochs]
        series[f"train {metric} (epoch)"] = (xs, [getattr(e, metric) for e in epochs])
        if epochs[-1].val_loss is not None:
            series[f"validation {metric} (epoch)"] = (xs, [getattr(e, f"val_{metric}") for e in epochs])
    return figures.curves_figure(
        series,
        metric.capitalize(),
        x_title="epoch",
        y_title=metric,
        height=280,
        y_range=(0, 1) if metric == "accuracy" else None,
    )


def publish(run: training.Run) -> None:
    """Once training has ended (``run.finish()``): make the trained model this session's working model."""
    if run.trained:
        _working.set_working(_working.add_session_model("trained", run.trained_model()))


def panel(run: training.Run) -> None:
    """Results: accuracy, confusion matrix, per-class accuracy, mistakes, save and downloads."""
    state = run.final
    if not run.trained:
        return
    st.success(
        f"Training {state.status} after {len(state.epochs)} epoch(s). The trained model is now the working model "
        "on every page."
    )
    ev = run.evaluation
    names = run.class_names
    if ev is not None:
        st.metric(
            "Held-out accuracy",
            f"{ev.accuracy:.1%}",
            help=f"On {len(ev.true):,} validation images not used for training",
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(figures.confusion_figure(ev.confusion, names), key="train.confusion")
        c2.plotly_chart(
            figures.bar_figure(
                list(names), np.nan_to_num(ev.per_class_accuracy), "Accuracy per class", y_title="accuracy"
            ),
            key="train.per_class",
        )
        mistakes = ev.mistakes(24)
        if mistakes:
            tiles = [
                render.upscale(render.to_rgb(run.val.pixels(m.index)), max(1, 56 // run.val.x_nhwc.shape[1]))
                for m in mistakes
            ]
            side = max(t.shape[0] for t in tiles)
            tiles = [render.resize(t, (side, side), smooth=False) for t in tiles]
            st.image(
                render.montage(np.stack(tiles), columns=8, pad=3),
                caption="Most confident mistakes, row by row: "
                + ", ".join(f"{names[m.true]}→{names[m.predicted]} ({m.confidence:.0%})" for m in mistakes),
            )
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.text_input("Save as", run.label.split(" on ")[0] + "_trained", key="train.save_name", max_chars=60)
    if c1.button("Save the model", key="train.save"):
        try:
            path = run.save(name)
            st.success(f"Saved as {path.name} (in this session's folder).")
        except TrainingError as err:
            st.error(str(err))
    source = run.download_path
    if source.exists():
        c2.download_button(
            "Download .keras",
            source.read_bytes,
            f"{training.sanitize_name(name)}.keras",  # read on click only
            "application/octet-stream",
            key="train.download",
        )
    c3.download_button(
        "History (CSV)",
        functools.partial(training.history_csv, state.records),
        "history.csv",
        "text/csv",
        key="train.history",
    )


def offer_recovery(runs_dir) -> None:
    """A closed tab loses at most the current epoch: reopening the training's address offers its checkpoint.

    The address carries ``run=<session>.<run>`` (``Run.token``); ``training.find_checkpoint`` accepts
    only that shape, so no one else's run can be named and no path can be built from it.
    """
    token = st.query_params.get("run", "")
    ckpt = training.find_checkpoint(runs_dir, token)
    if ckpt is None:
        return
    st.info(
        f"This address belongs to an earlier training (run {ckpt.parent.name}); its last checkpoint was saved "
        "after a finished epoch.",
        icon="💾",
    )
    if st.button("Recover that model", key="train.recover"):
        try:
            loaded = training.recover_run(ckpt)
        except TrainingError as err:
            st.error(str(err))
            return
        _working.set_working(_working.add_session_model("trained", loaded))
        st.success(f"Recovered after {loaded.card['epochs']} epoch(s); it is now the working model.")
