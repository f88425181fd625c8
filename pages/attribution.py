"""Attribution page: which pixels made the model decide, by several methods side by side."""

import io

import numpy as np
import streamlit as st

from pages import _attribution_parts, _cache, _faithfulness, _layers, _lime_view, _picker, _runner, _state, _working
from vizcore import attribution
from vizcore.present import figures, render


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🎯 Attribution")
st.caption(
    "Heatmaps of the evidence for a class: Grad-CAM and its family look at a conv layer, gradient methods at pixels, "
    "occlusion at what happens when a patch is hidden. Compare methods, then check how faithful a map is."
)

left, right = st.columns([1, 2])
with left:
    picked = _picker.input_picker(loaded)
if picked is None:
    st.stop()
probs = _cache.probabilities(loaded, picked.key, picked.image_hwc)
names = loaded.class_names
top = int(np.argmax(probs))
with left:
    st.plotly_chart(figures.probabilities_figure(names, probs, highlight=picked.true_class), key="attr.probs")

with right:
    c1, c2 = st.columns(2)
    _state.reset_when("attr.target", picked.key)  # a new input starts with its top class
    _state.keep(
        "attr.target", top, param="attr.target", legacy="target", options=range(len(names))
    )  # its label changes with the input
    target = c1.selectbox(
        "Explain the class",
        range(len(names)),
        key="attr.target",
        format_func=lambda c: f"{names[c]} ({probs[c]:.1%}){' — top' if c == top else ''}",
    )
    cam_layers, default_layer = _cache.cam_choices(loaded)
    layers = list(cam_layers)
    layer = _layers.select(
        loaded,
        c2,
        "Layer (CAM methods)",
        layers,
        key="attr.layer",
        default=default_layer,
        legacy="layer",
        help="Block outputs and convolutions not followed by BatchNorm. Default: the last convolution "
        "after its BatchNorm, activation and residual add. Type a block name to search.",
    )
    methods = st.multiselect(
        "Methods (side by side)",
        list(attribution.METHODS),
        ["Grad-CAM", "Saliency"],
        **_state.linked("attr.methods", ["Grad-CAM", "Saliency"], list(attribution.METHODS), legacy="methods"),
    )
    c3, c4 = st.columns(2)
    cmaps = ["inferno", "viridis", "jet", "gray"]  # colour-blind-safe first; ?attr.cmap=jet still works
    cmap = c3.selectbox("Colormap", cmaps, 0, **_state.linked("attr.cmap", "inferno", cmaps, legacy="cmap"))
    alpha = c4.slider(
        "Opacity",
        0.0,
        1.0,
        0.5,
        step=0.05,
        **_state.linked("attr.alpha", 0.5, lambda a: 0.0 <= a <= 1.0, legacy="alpha"),
    )
    options = {}
    for label in methods:
        info = attribution.METHOD_INFO[label]
        if info.options:
            with st.expander(f"{label} options"):
                options[label] = _attribution_parts.option_widgets(label, info.options)
    size_hw = picked.image_hwc.shape[:2]
    costs = {
        label: attribution.METHOD_INFO[label].cost_of(loaded.model, size_hw, layer=layer, **options.get(label, {}))
        for label in methods
    }
    seconds = {label: _attribution_parts.estimate(loaded, cost, size_hw) for label, cost in costs.items()}
    if expensive := [f"{label} {cost}" for label, cost in costs.items() if cost.count > 1]:
        st.caption("Cost before running: " + "; ".join(expensive))

live = [label for label in methods if seconds[label] <= _attribution_parts.ON_DEMAND_SECONDS]
run_keys = {
    label: (
        f"attr.run.{label}",
        (
            loaded.key,
            picked.key,
            label,
            target,
            layer if attribution.METHOD_INFO[label].uses_layer else None,
            tuple(sorted(options.get(label, {}).items())),
        ),
    )
    for label in methods
}


def live_map(label: str) -> np.ndarray:
    """A method's map, cached (LIME: from its fit, with its own progress bar)."""
    if label == "LIME":
        return _lime_view.run(loaded, picked, target, options.get("LIME", {})).heatmap_hw
    return _cache.attribution_map(
        loaded, picked.key, picked.image_hwc, label, target, layer, tuple(sorted(options.get(label, {}).items()))
    )


# Stateful tabs: only the open one computes (a hidden tab's deletion curves cost ~120 passes on every change)
tabs = ("Maps", "Occlude by hand", "Layer sweep", "Faithfulness & sanity")
if "attr.tab" not in st.session_state and "_attr.tab_kept" in st.session_state:  # back from another page: the same tab
    st.session_state["attr.tab"] = st.session_state[
        "_attr.tab_kept"
    ]  # (not `default=`: a changing default resets the tabs)
tab_maps, tab_occlude, tab_sweep, tab_faith = st.tabs(tabs, key="attr.tab", on_change="rerun")
st.session_state["_attr.tab_kept"] = next(
    label for label, t in zip(tabs, (tab_maps, tab_occlude, tab_sweep, tab_faith)) if t.open
)
if tab_maps.open:
    with tab_maps:
        if not methods:
            st.info("Pick at least one method.")
        maps = {}
        progress = st.progress(0.0, text="Computing maps…") if len(live) > 1 else None
        for i, label in enumerate(live):  # cheap: computed on every change
            maps[label] = live_map(label)
            if progress:
                progress.progress((i + 1) / len(live), text=f"{label} done")
        if progress:
            progress.empty()
        cols = st.columns(max(1, min(4, len(methods))))
        size = (
            max(160, 4 * picked.display_hwc.shape[0])
            if picked.display_hwc.shape[0] < 100
            else picked.display_hwc.shape[0]
        )
        for i, label in enumerate(methods):
            info = attribution.METHOD_INFO[label]
            with cols[i % len(cols)]:
                if label not in maps:  # costly: from its Run button, kept until an input changes
                    opts = options.get(label, {})
                    heat = _attribution_parts.on_demand(
                        *run_keys[label],
                        label,
                        str(costs[label]),
                        seconds[label],
                        lambda sink, info=info, opts=opts, label=label: (
                            live_map(label)
                            if label == "LIME"
                            else info.fn(
                                loaded.model,
                                picked.image_hwc,
                                target=target,
                                layer=layer if info.uses_layer else None,
                                on_progress=sink,
                                **opts,
                            )
                        ),
                    )
                    if heat is None:
                        continue
                    maps[label] = heat
                heat = maps[label]
                shown = render.overlay(picked.display_hwc, heat, cmap=cmap, alpha=alpha)
                st.image(
                    render.resize(shown, (size, size), smooth=False),
                    caption=f"{label} · {names[target]}" + (f" · {layer}" if info.uses_layer else ""),
                )
                slug = label.lower().replace(" ", "_").replace("×", "x")
                st.download_button(
                    "Overlay PNG",
                    lambda shown=shown: render.to_png(shown),
                    f"{slug}_overlay.png",
                    "image/png",
                    key=f"attr.png.{label}",
                    on_click="ignore",
                )  # encoded when clicked, not on every rerun
                st.download_button(
                    "Raw map .npy",
                    lambda heat=heat: _npy(heat),
                    f"{slug}_map.npy",
                    "application/octet-stream",
                    key=f"attr.npy.{label}",
                    on_click="ignore",
                )
        if "LIME" in maps:
            _lime_view.section(
                _lime_view.run(loaded, picked, target, options.get("LIME", {})), picked, names[target], cmap, alpha
            )

if tab_occlude.open:
    with tab_occlude:
        _attribution_parts.occlusion_explorer(loaded, picked, probs, target, layer, cmap=cmap, alpha=alpha)

if tab_sweep.open:
    with tab_sweep:
        st.caption(
            "Grad-CAM of every block output (and convolution not followed by BatchNorm), from the first to the last, "
            "for the same class: early layers see edges, late layers see parts."
        )
        picks = _attribution_parts.sweep_picks(loaded)
        sweep_cost = attribution.Cost(len(picks), "gradient")
        heats = _attribution_parts.on_demand(
            "attr.sweep",
            (loaded.key, picked.key, target),
            "the layer sweep",
            f"{sweep_cost} (one per layer; each layer compiles once)",
            _attribution_parts.estimate(loaded, sweep_cost, size_hw),
            lambda sink: _attribution_parts.layer_sweep(loaded, picked, target, picks, on_progress=sink),
        )
        if heats is not None:
            st.image(_attribution_parts.sweep_strip(picked, heats, cmap, alpha), caption=" · ".join(heats))
            if len(picks) < len(layers):
                st.caption(f"{len(picks)} of {len(layers)} layers shown, evenly spaced.")

if tab_faith.open:
    with tab_faith:
        # the first method with a map: a live one, or a costly one already run
        ready = ((label, live_map(label) if label in live else _runner.kept(*run_keys[label])) for label in methods)
        first, heat = next(((label, heat) for label, heat in ready if heat is not None), (None, None))
        if methods and first is None:
            st.info(f"Run {methods[0]} in the Maps tab first, then check its faithfulness here.")
        else:
            _faithfulness.panel(
                loaded,
                picked,
                first or "Grad-CAM",
                target,
                layer,
                heat,
                options.get(first, {}) if first else {},
                cmap=cmap,
            )
