"""Replay what was recorded while a model trained in this session: kernels and probe feature maps."""

from __future__ import annotations

import dataclasses
import os

import streamlit as st

from pages import _cache
from vizcore import models
from vizcore.present import figures, grids
from vizcore.training import replay


def recorded(loaded: models.LoadedModel) -> replay.Snapshots | None:
    """The snapshots of a model trained here, or None."""
    path = (loaded.card or {}).get("snapshots")
    if not path or not os.path.exists(path):
        return None
    return _cache.snapshots(path, os.path.getmtime(path))


def _step_slider(snaps: replay.Snapshots, key: str, label: str) -> int:
    epochs = snaps.epoch_floats
    return st.select_slider(
        label,
        options=list(range(len(snaps))),
        value=len(snaps) - 1,
        key=key,
        format_func=lambda i: f"epoch {epochs[i]:.2f}",
    )


def kernel_picker(loaded: models.LoadedModel, lk, *, key: str):
    """An epoch slider over the recorded kernels of the first conv layer; returns the kernel to show."""
    snaps = recorded(loaded)
    if snaps is None or snaps.kernel_layer != lk.path or len(snaps) < 2:
        return lk
    i = _step_slider(snaps, key, "Replay training: the kernels at")
    return dataclasses.replace(lk, kernel_hwio=snaps.kernels(i))


def activation_replay(loaded: models.LoadedModel, *, scale: str, cmap: str) -> None:
    """Probe images' feature maps and predictions over training, with an epoch slider."""
    snaps = recorded(loaded)
    if snaps is None or len(snaps) < 2:
        return
    with st.expander("Replay training: feature maps of the probe images", expanded=False):
        c1, c2 = st.columns(2)
        probe = c1.selectbox(
            "Probe image",
            range(len(snaps.probe_labels)),
            key="replay.probe",
            format_func=lambda p: f"#{p} (true class {snaps.class_names[snaps.probe_labels[p]]})",
        )
        layer = c2.selectbox("Layer", snaps.layers, key="replay.layer")
        i = _step_slider(snaps, "replay.step", "At")
        maps = snaps.feature_maps(i, layer)[probe]
        st.image(
            grids.feature_grid(maps, scale=scale, cmap=cmap, tile=48),
            caption=f"{layer} at epoch {snaps.epoch_floats[i]:.2f}",
        )
        st.plotly_chart(
            figures.probabilities_figure(
                snaps.class_names, snaps.probabilities(i)[probe], highlight=int(snaps.probe_labels[probe])
            ),
            key="replay.probs",
        )
