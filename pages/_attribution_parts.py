"""Pieces of the Attribution page: option widgets, costly work on demand, the layer sweep."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
import streamlit as st

from pages import _cache, _runner, _state
from vizcore import attribution, models
from vizcore.models import blocks
from vizcore.present import figures, render

T = TypeVar("T")
ON_DEMAND_SECONDS = 0.5  # estimated work above this waits for a Run button; below, it runs live


def estimate(loaded: models.LoadedModel, cost: attribution.Cost, size_hw: tuple[int, int]) -> float:
    """Seconds a cost should take on this machine, from one measured forward pass (once per model)."""
    return 0.0 if cost.count <= 1 else cost.seconds(attribution.pass_seconds(loaded.model, size_hw))


def on_demand(
    key: str,
    inputs: Hashable,
    what: str,
    cost: str,
    seconds: float,
    compute: Callable[[attribution.Progress | None], T],
) -> T | None:
    """``compute`` live when cheap, else from a Run button (``_runner.run``); the result is kept until ``inputs``
    change. ``compute(on_progress)`` gets None when live. Returns the result, or None while it waits."""
    if seconds <= ON_DEMAND_SECONDS:
        return _runner.run(key, inputs, compute, heavy=False, bar=False, what=what)
    ask = _runner.Ask(what, f"{what}: {cost}, {_runner.about(seconds)}.")
    return _runner.run(key, inputs, compute, ask=ask, unit="images")


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
                values[o.name] = (
                    st.number_input(o.name, int(o.min or 1), top, min(64, top or 64), key=key) if on else None
                )
            else:
                values[o.name] = st.number_input(o.name, int(o.min or 0), top, int(o.default), help=o.help, key=key)
        else:
            values[o.name] = st.slider(
                o.name, float(o.min or 0.0), float(bound or 1.0), float(o.default), help=o.help, key=key
            )
    return values


def sweep_picks(loaded: models.LoadedModel, limit: int = 12) -> tuple[str, ...]:
    """The layers of the sweep: at most ``limit`` CAM layers, evenly spaced."""
    return blocks.sweep_layers(loaded.model, limit)


def layer_sweep(loaded: models.LoadedModel, picked, target: int, picks, *, on_progress=None) -> dict[str, np.ndarray]:
    """Grad-CAM of each layer of ``picks``: {layer: heatmap}; ``on_progress(done, total)`` after each."""
    heats = {}
    for i, layer in enumerate(picks):
        heats[layer] = _cache.attribution_map(loaded, picked.key, picked.image_hwc, "Grad-CAM", target, layer, ())
        if on_progress:
            on_progress(i + 1, len(picks))
    return heats


def sweep_strip(picked, heats: dict[str, np.ndarray], cmap: str, alpha: float) -> np.ndarray:
    """The sweep's maps as one strip of overlays."""
    side = max(96, picked.display_hwc.shape[0])
    tiles = [
        render.resize(render.overlay(picked.display_hwc, heat, cmap=cmap, alpha=alpha), (side, side), smooth=False)
        for heat in heats.values()
    ]
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4)


def occlusion_explorer(
    loaded: models.LoadedModel, picked, probs: np.ndarray, target: int, layer: str, *, cmap: str, alpha: float
) -> None:
    """Click or drag a box on the image: it turns grey and the probabilities and Grad-CAM follow."""
    from vizcore.attribution import interactive

    st.caption(
        "Click the image to grey out a square there, or pick the box tool and drag a box: the class probabilities "
        "and the Grad-CAM of the class update (one forward and backward pass)."
    )
    h, w = picked.image_hwc.shape[:2]
    c1, c2 = st.columns(2)
    patch = c1.slider(
        "Square side (click)", 1, max(2, min(h, w) // 2), max(2, round(min(h, w) / 8)), key="attr.occ.patch"
    )
    fill = c2.selectbox(
        "Fill",
        ("zero", "mean"),
        key="attr.occ.fill",
        help="zero: 0 in the model's input range; mean: the image's mean colour",
    )
    _state.reset_when("_attr.occ.event", picked.key)  # a new input: the whole image again
    event = st.session_state.get("attr.occ.image")
    fresh = _state.changed("attr.occ.image", repr(event))
    if fresh and figures.selected_patch(event, (h, w), patch) is not None:  # a new click or box; it stays until Clear
        st.session_state["_attr.occ.event"] = event
    if c2.button("Clear", key="attr.occ.clear"):
        st.session_state.pop("_attr.occ.event", None)
    kept_event = st.session_state.get("_attr.occ.event")
    box = figures.selected_patch(kept_event, (h, w), patch) if kept_event else None
    if box is None:  # the whole image: what the page already computed
        p_k, heat = probs, _cache.attribution_map(loaded, picked.key, picked.image_hwc, "Grad-CAM", target, layer, ())
    else:
        out = _runner.run(
            "attr.occ",
            (loaded, picked.key, box, target, layer, fill),
            lambda _sink: interactive.occlude_boxes(
                loaded.model,
                picked.image_hwc,
                [box],
                target=target,
                layer=layer,
                fill="mean" if fill == "mean" else 0.0,
            ),
            heavy=False,
        )
        p_k, heat = out.probabilities_k, out.heatmap_hw
    left, right = st.columns(2)
    shown = picked.display_hwc.copy()
    if box:
        shown[box[0] : box[2], box[1] : box[3]] = 128  # grey where the model sees the fill
    step = max(1, -(-max(h, w) // 40))  # at most 40 x 40 click targets
    with left:
        st.plotly_chart(
            figures.image_figure(
                shown,
                "Click or drag a box" + (f": rows {box[0]}–{box[2] - 1}, columns {box[1]}–{box[3] - 1}" if box else ""),
                points=figures.cell_points(h, w, step),
            ),  # zoom mode: a click selects; the box tool drags a box
            key="attr.occ.image",
            on_select="rerun",
            selection_mode=figures.SELECT_MODES,
        )
    with right:
        overlay = render.overlay(shown, heat, cmap=cmap, alpha=alpha)
        side = max(160, 4 * h) if h < 100 else h
        st.image(
            render.resize(overlay, (side, side), smooth=False),
            caption=f"Grad-CAM of {loaded.class_names[target]} · {layer}",
        )
    before, after = float(probs[target]), float(p_k[target])
    st.metric(f"P({loaded.class_names[target]})", f"{after:.1%}", f"{after - before:+.1%} from the whole image")
    st.plotly_chart(figures.probabilities_figure(loaded.class_names, p_k), key="attr.occ.probs")
