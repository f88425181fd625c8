"""Pieces of the Attribution page: each method's option widgets and the layer sweep."""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages import _cache, _shared
from vizcore import blocks, models, render


def option_widgets(label: str, opts) -> dict:
    """Widgets for a method's extra options (from METHOD_INFO); returns {name: value}."""
    values = {}
    for o in opts:
        key = f"attr.opt.{label}.{o.name}"
        bound = values.get(o.max) if isinstance(o.max, str) else o.max  # a number, or an earlier option's value
        if o.kind == "choice":
            values[o.name] = st.selectbox(o.name, o.choices, index=o.choices.index(o.default), help=o.help, key=key)
        elif o.kind == "int":
            top = int(bound) if bound is not None else None
            if top is not None and st.session_state.get(key, top) > top:
                st.session_state[key] = top  # the bound moved below the value: follow it
            if o.default is None:
                on = st.checkbox(f"limit {o.name}", help=o.help, key=key + ".on")
                values[o.name] = st.number_input(o.name, int(o.min or 1), top, min(64, top or 64), key=key) if on else None
            else:
                values[o.name] = st.number_input(o.name, int(o.min or 0), top, int(o.default), help=o.help, key=key)
        else:
            values[o.name] = st.slider(o.name, float(o.min or 0.0), float(bound or 1.0), float(o.default), help=o.help, key=key)
    return values


def layer_sweep(loaded: models.LoadedModel, picked, target: int, cmap: str, alpha: float, *, limit: int = 12):
    """Grad-CAM of the CAM layers (block outputs; at most ``limit``, evenly spaced) as one strip of overlays."""
    picks = blocks.sweep_layers(loaded.model, limit)
    bar = st.progress(0.0, text="Grad-CAM per layer…")
    tiles = []
    side = max(96, picked.display_hwc.shape[0])
    with _shared.heavy():  # a dozen Grad-CAMs
        for i, layer in enumerate(picks):
            heat = _cache.attribution_map(loaded, picked.key, picked.image_hwc, "Grad-CAM", target, layer, ())
            tiles.append(render.resize(render.overlay(picked.display_hwc, heat, cmap=cmap, alpha=alpha), (side, side), smooth=False))
            bar.progress((i + 1) / len(picks), text=f"Grad-CAM on {layer}")
    bar.empty()
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4), picks
