"""The Training page's curves, its hand-over of the trained model, and the results panel."""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from pages import _shared
from vizcore import figures, models, render, training
from vizcore.errors import TrainingError

RECIPE_KEYS = {"optimizer": "train.opt", "learning_rate": "train.lr", "momentum": "train.momentum", "schedule": "train.schedule",
               "step_every": "train.step_every", "step_factor": "train.step_factor", "batch_size": "train.batch",
               "epochs": "train.epochs", "flip": "train.flip", "shift": "train.shift", "rotation": "train.rot"}


def apply_recipe(recipe: training.TrainConfig) -> None:
    """Put a recommended recipe into the settings widgets."""
    for field, key in RECIPE_KEYS.items():
        value = getattr(recipe, field)
        value = int(value) if key in ("train.rot",) else value
        st.session_state[key] = value
        st.session_state[f"_kept.{key}"] = value
    st.rerun()


def curves(state: training.JobState, metric: str):
    """Per-batch (smoothed) and per-epoch curves of loss or accuracy, for training and validation."""
    batches, epochs = state.batches, state.epochs
    spe = batches[-1].steps_per_epoch if batches else 1
    series = {}
    if batches:
        xs = [b.epoch + (b.batch + 1) / spe for b in batches]
        series[f"train {metric} (per batch, smoothed)"] = (xs, [getattr(b, f"smooth_{metric}") for b in batches])
    if epochs:
        xs = [e.epoch + 1 for e in epochs]
        series[f"train {metric} (epoch)"] = (xs, [getattr(e, metric) for e in epochs])
        if epochs[-1].val_loss is not None:
            series[f"validation {metric} (epoch)"] = (xs, [getattr(e, f"val_{metric}") for e in epochs])
    return figures.curves_figure(series, metric.capitalize(), x_title="epoch", y_title=metric, height=280,
                                 y_range=(0, 1) if metric == "accuracy" else None)


def publish(run: dict, state: training.JobState) -> None:
    """Once training ends: evaluate, and make the trained model this session's working model."""
    run["published"] = True
    run["state"] = state
    if not state.epochs and state.status == "failed":
        return
    if run["val"] is not None and len(run["val"]):
        run["evaluation"] = training.evaluate(run["model"], run["val"])
    card = {"snapshots": str(run["dir"] / "snapshots.npz"), "trained_here": True, "status": state.status}
    loaded = models.LoadedModel(run["model"], f"trained:{run['id']}", f"{run['label']} (trained here)", tuple(run["names"]),
                                run["preprocess"], card)
    _shared.set_working(_shared.add_session_model("trained", loaded))


def panel(run: dict) -> None:
    """Results: accuracy, confusion matrix, per-class accuracy, mistakes, save and downloads."""
    state = run["state"]
    if state.status == "failed" and "evaluation" not in run:
        return
    st.success(f"Training {state.status} after {len(state.epochs)} epoch(s). The trained model is now the working model "
               "on every page.")
    ev = run.get("evaluation")
    names = tuple(run["names"])
    if ev is not None:
        st.metric("Held-out accuracy", f"{ev.accuracy:.1%}", help=f"On {len(ev.true):,} validation images not used for training")
        c1, c2 = st.columns(2)
        c1.plotly_chart(figures.confusion_figure(ev.confusion, names), key="train.confusion")
        c2.plotly_chart(figures.bar_figure(list(names), np.nan_to_num(ev.per_class_accuracy), "Accuracy per class",
                                           y_title="accuracy"), key="train.per_class")
        mistakes = ev.mistakes(24)
        if mistakes:
            tiles = [render.upscale(render.to_rgb(np.rint(run["val"].x_nhwc[m.index] * 255).astype(np.uint8)),
                                    max(1, 56 // run["val"].x_nhwc.shape[1])) for m in mistakes]
            side = max(t.shape[0] for t in tiles)
            tiles = [render.resize(t, (side, side), smooth=False) for t in tiles]
            st.image(render.montage(np.stack(tiles), columns=8, pad=3),
                     caption="Most confident mistakes, row by row: " + ", ".join(
                         f"{names[m.true]}→{names[m.predicted]} ({m.confidence:.0%})" for m in mistakes))
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.text_input("Save as", run["label"].split(" on ")[0] + "_trained", key="train.save_name", max_chars=60)
    if c1.button("Save the model", key="train.save"):
        try:
            path = training.save_trained(run["model"], name, run["dir"].parent / "saved")
            run["saved"] = path
            st.success(f"Saved as {path.name} (in this session's folder).")
        except TrainingError as err:
            st.error(str(err))
    ckpt = run["dir"] / "checkpoint.keras"
    saved = run.get("saved")
    source = saved if saved and saved.exists() else ckpt
    if source.exists():
        c2.download_button("Download .keras", source.read_bytes(), f"{training.sanitize_name(name)}.keras",
                           "application/octet-stream", key="train.download")
    c3.download_button("History (CSV)", training.history_csv(state.records), "history.csv", "text/csv", key="train.history")


RUN_TOKEN = re.compile(r"^([0-9a-f]{12})\.([0-9a-f]{8})$")


def offer_recovery(runs_dir) -> None:
    """A closed tab loses at most the current epoch: reopening the training's address offers its checkpoint.

    The address carries ``run=<session>.<run>``, two random hex tokens (so no one else's run can be
    named, and no path can be built from it); the checkpoint of the last finished epoch is loaded.
    """
    token = st.query_params.get("run", "")
    match = RUN_TOKEN.match(token)
    if not match:
        return
    folder = runs_dir / match.group(1) / match.group(2)
    ckpt = folder / "checkpoint.keras"
    if not ckpt.is_file():
        return
    st.info(f"This address belongs to an earlier training (run {match.group(2)}); its last checkpoint was saved "
            "after a finished epoch.", icon="💾")
    if st.button("Recover that model", key="train.recover"):
        try:
            checkpoint = training.load_checkpoint(ckpt)
        except TrainingError as err:
            st.error(str(err))
            return
        model = training.trainable_copy(checkpoint.model)
        names = tuple(str(i) for i in range(max(2, int(model.output_shape[-1]))))
        if (folder / "snapshots.npz").is_file():
            from vizcore import snapshots

            names = tuple(snapshots.load_snapshots(folder / "snapshots.npz").class_names) or names
        card = {"snapshots": str(folder / "snapshots.npz"), "trained_here": True, "status": "recovered"}
        loaded = models.LoadedModel(model, f"trained:{match.group(2)}", f"{model.name} (recovered, epoch {checkpoint.next_epoch})",
                                    names, "unit", card)
        _shared.set_working(_shared.add_session_model("trained", loaded))
        st.success(f"Recovered after {checkpoint.next_epoch} epoch(s); it is now the working model.")
