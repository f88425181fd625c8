"""Attribution page: which pixels made the model decide, by several methods side by side."""

import contextlib
import functools
import io

import numpy as np
import streamlit as st

from pages import _attribution_parts, _cache, _faithfulness, _layers, _picker, _shared
from vizcore import attribution, figures, render


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


loaded = _shared.working_model()
_shared.sidebar(loaded)
st.title("🎯 Attribution")
st.caption("Heatmaps of the evidence for a class: Grad-CAM and its family look at a conv layer, gradient methods at pixels, "
           "occlusion at what happens when a patch is hidden. Compare methods, then check how faithful a map is.")

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
    if st.session_state.get("attr.target_for") != picked.key:  # a new input starts with its top class
        st.session_state.pop("attr.target", None)
        st.session_state.pop("_kept.attr.target", None)
    st.session_state["attr.target_for"] = picked.key
    _shared.keep("attr.target", top, param="attr.target", legacy="target", options=range(len(names)))  # its label changes with the input
    target = c1.selectbox("Explain the class", range(len(names)), key="attr.target",
                          format_func=lambda c: f"{names[c]} ({probs[c]:.1%}){' — top' if c == top else ''}")
    cam_layers, default_layer = _cache.cam_choices(loaded)
    layers = list(cam_layers)
    layer = _layers.select(loaded, c2, "Layer (CAM methods)", layers, key="attr.layer", default=default_layer, legacy="layer",
                           help="Block outputs and convolutions not followed by BatchNorm. Default: the last convolution "
                                "after its BatchNorm, activation and residual add. Type a block name to search.")
    methods = st.multiselect("Methods (side by side)", list(attribution.METHODS), ["Grad-CAM", "Saliency"],
                             **_shared.linked("attr.methods", ["Grad-CAM", "Saliency"], list(attribution.METHODS), legacy="methods"))
    c3, c4 = st.columns(2)
    cmaps = ["inferno", "viridis", "jet", "gray"]  # colour-blind-safe first; ?attr.cmap=jet still works
    cmap = c3.selectbox("Colormap", cmaps, 0, **_shared.linked("attr.cmap", "inferno", cmaps, legacy="cmap"))
    alpha = c4.slider("Opacity", 0.0, 1.0, 0.5, step=0.05, **_shared.linked("attr.alpha", 0.5, lambda a: 0.0 <= a <= 1.0, legacy="alpha"))
    options = {}
    for label in methods:
        info = attribution.METHOD_INFO[label]
        if info.options:
            with st.expander(f"{label} options"):
                options[label] = _attribution_parts.option_widgets(label, info.options)
    costs = {label: attribution.METHOD_INFO[label].cost_of(loaded.model, picked.image_hwc.shape[:2], layer=layer, **options.get(label, {}))
             for label in methods}
    if expensive := [f"{label} {cost}" for label, cost in costs.items() if cost.count > 1]:
        st.caption("Cost before running: " + "; ".join(expensive))

tab_maps, tab_sweep, tab_faith = st.tabs(["Maps", "Layer sweep", "Faithfulness & sanity"])
with tab_maps:
    if not methods:
        st.info("Pick at least one method.")
    maps = {}
    progress = st.progress(0.0, text="Computing maps…") if len(methods) > 1 else None
    for i, label in enumerate(methods):
        with _shared.heavy(hold=False) if costs[label].count > 1 else contextlib.nullcontext():  # the cache takes the slot
            maps[label] = _cache.attribution_map(loaded, picked.key, picked.image_hwc, label, target, layer,
                                                  tuple(sorted(options.get(label, {}).items())))
        if progress:
            progress.progress((i + 1) / len(methods), text=f"{label} done")
    if progress:
        progress.empty()
    cols = st.columns(max(1, min(4, len(methods))))
    size = max(160, 4 * picked.display_hwc.shape[0]) if picked.display_hwc.shape[0] < 100 else picked.display_hwc.shape[0]
    for i, (label, heat) in enumerate(maps.items()):
        with cols[i % len(cols)]:
            shown = render.overlay(picked.display_hwc, heat, cmap=cmap, alpha=alpha)
            st.image(render.resize(shown, (size, size), smooth=False), caption=f"{label} · {names[target]}"
                     + (f" · {layer}" if attribution.METHOD_INFO[label].uses_layer else ""))
            slug = label.lower().replace(" ", "_").replace("×", "x")
            st.download_button("Overlay PNG", functools.partial(render.to_png, shown), f"{slug}_overlay.png", "image/png",
                               key=f"attr.png.{label}")  # the bytes are built on click only
            st.download_button("Raw map .npy", functools.partial(npy_bytes, heat), f"{slug}_map.npy", "application/octet-stream",
                               key=f"attr.npy.{label}")

with tab_sweep:
    st.caption("Grad-CAM of every block output (and convolution not followed by BatchNorm), from the first to the last, "
               "for the same class: early layers see edges, late layers see parts.")
    if st.toggle("Compute the sweep", value=len(layers) <= 16, key="attr.sweep"):
        strip, shown_layers = _attribution_parts.layer_sweep(loaded, picked, target, cmap, alpha)
        st.image(strip, caption=" · ".join(shown_layers))
        if len(shown_layers) < len(layers):
            st.caption(f"{len(shown_layers)} of {len(layers)} layers shown, evenly spaced.")

with tab_faith:
    _faithfulness.panel(loaded, picked, methods[0] if methods else "Grad-CAM", target, layer, maps.get(methods[0]) if methods else None,
                        options.get(methods[0], {}) if methods else {}, cmap=cmap)
