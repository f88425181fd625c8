"""Attribution page: which pixels made the model decide, by several methods side by side."""

import io

import numpy as np
import streamlit as st

from pages import _cache, _faithfulness, _layers, _picker, _shared
from vizcore import attribution, figures, render

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
probs = _cache.probabilities(loaded.model, loaded.key, picked.key, picked.image_hwc)
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
    _shared.keep("attr.target", top, param="target", options=range(len(names)))
    target = c1.selectbox("Explain the class", range(len(names)), key="attr.target",
                          format_func=lambda c: f"{names[c]} ({probs[c]:.1%}){' — top' if c == top else ''}")
    cam_layers, default_layer = _layers.cam_choices(loaded.model, loaded.key)
    layers = list(cam_layers)
    _shared.keep("attr.layer", default_layer, param="layer", options=layers)
    layer = _layers.select(loaded, c2, "Layer (CAM methods)", layers, key="attr.layer",
                           help="Block outputs and convolutions not followed by BatchNorm. Default: the last convolution "
                                "after its BatchNorm, activation and residual add. Type a block name to search.")
    _shared.keep("attr.methods", ["Grad-CAM", "Saliency"], param="methods", options=list(attribution.METHODS))
    methods = st.multiselect("Methods (side by side)", list(attribution.METHODS), key="attr.methods")
    c3, c4 = st.columns(2)
    _shared.keep("attr.cmap", "jet", param="cmap", options=["jet", "inferno", "viridis", "gray"])
    cmap = c3.selectbox("Colormap", ["jet", "inferno", "viridis", "gray"], key="attr.cmap")
    _shared.keep("attr.alpha", 0.5, param="alpha", options=lambda a: 0.0 <= a <= 1.0)
    alpha = c4.slider("Opacity", 0.0, 1.0, step=0.05, key="attr.alpha")
    options = {}
    for label in methods:
        info = attribution.METHOD_INFO[label]
        if info.options:
            with st.expander(f"{label} options"):
                options[label] = _cache.option_widgets(label, info.options)
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
        maps[label] = _cache.attribution_map(loaded.model, loaded.key, picked.key, picked.image_hwc, label, target, layer,
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
            st.download_button("Overlay PNG", render.to_png(shown), f"{slug}_overlay.png", "image/png", key=f"attr.png.{label}")
            buf = io.BytesIO()
            np.save(buf, heat)
            st.download_button("Raw map .npy", buf.getvalue(), f"{slug}_map.npy", "application/octet-stream", key=f"attr.npy.{label}")

with tab_sweep:
    st.caption("Grad-CAM of every block output (and convolution not followed by BatchNorm), from the first to the last, "
               "for the same class: early layers see edges, late layers see parts.")
    if st.toggle("Compute the sweep", value=len(layers) <= 16, key="attr.sweep"):
        strip, shown_layers = _cache.layer_sweep(loaded.model, loaded.key, picked.key, picked.image_hwc, picked.display_hwc,
                                                  target, cmap, alpha)
        st.image(strip, caption=" · ".join(shown_layers))
        if len(shown_layers) < len(layers):
            st.caption(f"{len(shown_layers)} of {len(layers)} layers shown, evenly spaced.")

with tab_faith:
    _faithfulness.panel(loaded, picked, methods[0] if methods else "Grad-CAM", target, layer, maps.get(methods[0]) if methods else None)
