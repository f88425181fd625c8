"""Pieces of the Attribution page: each method's option widgets, the cost said before running, the layer sweep."""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages import _cache
from vizcore import attribution, models, render


def option_widgets(label: str, opts) -> dict:
    """Widgets for a method's extra options (from METHOD_INFO); returns {name: value}."""
    values = {}
    for o in opts:
        key = f"attr.opt.{label}.{o.name}"
        if o.kind == "choice":
            values[o.name] = st.selectbox(o.name, o.choices, index=o.choices.index(o.default), help=o.help, key=key)
        elif o.kind == "int" and o.default is None:
            on = st.checkbox(f"limit {o.name}", help=o.help, key=key + ".on")
            values[o.name] = st.number_input(o.name, int(o.min or 1), None, 64, key=key) if on else None
        elif o.kind == "int":
            values[o.name] = st.number_input(o.name, int(o.min or 0), int(o.max) if o.max else None, int(o.default), help=o.help, key=key)
        else:
            values[o.name] = st.slider(o.name, float(o.min or 0.0), float(o.max or 1.0), float(o.default), help=o.help, key=key)
    return values


def method_costs(loaded: models.LoadedModel, layer: str, size_hw, methods, options: dict) -> list[str]:
    """Forward passes that the expensive methods will make, said before running them."""
    out = []
    if "Score-CAM" in methods:
        n = attribution.scorecam_cost(loaded.model, layer, options.get("Score-CAM", {}).get("max_channels"))
        out.append(f"Score-CAM {n:,} forward passes")
    if "Occlusion" in methods:
        o = options.get("Occlusion", {})
        out.append(f"Occlusion {attribution.occlusion_cost(size_hw[0], size_hw[1], o.get('patch'), o.get('stride')):,} forward passes")
    if "Integrated Gradients" in methods:
        out.append(f"Integrated Gradients {options.get('Integrated Gradients', {}).get('steps', 32)} gradients")
    return out


def layer_sweep(loaded: models.LoadedModel, picked, target: int, cmap: str, alpha: float, *, limit: int = 12):
    """Grad-CAM of each conv layer (at most ``limit``, evenly spaced) as one strip of overlays, with a progress bar."""
    convs = _cache.summary(loaded).conv_layers
    picks = [convs[i] for i in np.unique(np.linspace(0, len(convs) - 1, min(limit, len(convs))).round().astype(int))]
    bar = st.progress(0.0, text="Grad-CAM per layer…")
    tiles = []
    side = max(96, picked.display_hwc.shape[0])
    for i, layer in enumerate(picks):
        heat = _cache.attribution_map(loaded, picked.key, picked.image_hwc, "Grad-CAM", target, layer, ())
        tiles.append(render.resize(render.overlay(picked.display_hwc, heat, cmap=cmap, alpha=alpha), (side, side), smooth=False))
        bar.progress((i + 1) / len(picks), text=f"Grad-CAM on {layer}")
    bar.empty()
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4), picks
