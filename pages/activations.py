"""Activations page: every layer's feature maps for one input, from the image to the prediction."""

import numpy as np
import streamlit as st

from pages import _cache, _layers, _links, _picker, _snapshots, _state, _warm, _working
from vizcore.inspect import activations
from vizcore.present import figures, grids, render

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🔥 Activations")
st.caption("What each layer computes for one input: every feature map in one forward pass. Bright = strongly active.")

left, right = st.columns([1, 2])
picked = _picker.picked_or_stop(loaded, left, preview_px=168)
with left:
    probs = _cache.probabilities(loaded, picked.key, picked.image_hwc)
    st.plotly_chart(
        figures.probabilities_figure(loaded.class_names, probs, highlight=picked.true_class), key="act.probs"
    )

acts = _cache.activations(loaded, picked.key, picked.image_hwc)
order = _cache.activation_order(loaded)
maps = list(acts.maps)  # known without a pass: large models compute only the layers shown

with right:
    cols = st.columns(2)
    scales = {"map": "Per map", "layer": "Per layer", "global": "Global"}
    scale = cols[0].radio(
        "Scale",
        grids.SCALES,
        0,
        horizontal=True,
        format_func=scales.get,
        **_state.linked("act.scale", "map", grids.SCALES, format_func=scales.get, legacy="scale"),
    )
    cmaps = ["viridis", "inferno", "gray", render.DIVERGING]
    cmap = cols[1].selectbox("Colormap", cmaps, 0, **_state.linked("act.cmap", "viridis", cmaps, legacy="cmap"))
    if "act.tab" not in st.session_state:  # a link to a layer opens its tab; back from another page, the same tab
        linked_layer = any(k in st.query_params for k in ("act.layer", "act.channel", "layer", "ch"))
        if linked_layer or "_act.tab_kept" in st.session_state:  # (not `default=`: a changing default resets the tabs)
            st.session_state["act.tab"] = "One layer" if linked_layer else st.session_state["_act.tab_kept"]
    tab_overview, tab_layer = st.tabs(
        ["Overview", "One layer"], key="act.tab", on_change="rerun"
    )  # only the open tab computes
    open_tab = "One layer" if tab_layer.open else "Overview"
    st.session_state["_act.tab_kept"] = open_tab  # the same tab after a visit to another page
by_block = _cache.block_columns(loaded)
_state.reset_when("act.every", loaded.key)  # another model: its own default
every_default = len(order) <= _layers.EVERY_LAYER_UP_TO

if tab_overview.open:
    with tab_overview:
        every = st.toggle(
            f"Every layer ({len(order)} columns)",
            value=every_default,
            key="act.every",
            help=f"Off: one column per block or stage ({len(by_block)} columns), the output of each block",
        )
        columns = order if every else by_block
        labels = _cache.layer_labels(loaded)  # 'block_3 · block_3_project_BN'
        name = lambda p: labels.get(p, p)  # noqa: E731
        ov = grids.overview(
            acts.select(columns),
            columns,
            input_display_hwc=picked.display_hwc,
            scale=scale,
            cmap=cmap,
            tile=40,
            max_maps=12,
        )
        shown = [name(c.layer) for c in ov.columns[1:]]
        path = (
            " → ".join(shown)
            if len(shown) <= 2 * _layers.EVERY_LAYER_UP_TO
            else f"{len(shown)} layers, {shown[0]} … {shown[-1]}"
        )
        st.image(
            ov.composite(gap=14),
            caption=f"Input → {path}"
            + (" (each column one layer" if every else " (each column one block's output")
            + "; at most 12 maps shown per layer; vectors as cells)",
        )
        capped = [f"{c.layer} ({len(c.shown)} of {c.total})" for c in ov.columns[1:] if len(c.shown) < c.total]
        if len(capped) > 6:
            st.caption(
                f"{len(capped)} columns show only their first maps. Open a layer in the next tab to see all its maps."
            )
        elif capped:
            st.caption("Shown partially: " + ", ".join(capped) + ". Open a layer in the next tab to see all its maps.")

if tab_layer.open:
    with tab_layer:
        if not maps:
            st.info("This model has no layer with 2-D feature maps.")
            st.stop()
        layer = _layers.select(loaded, st, "Layer", maps, key="act.layer", default=maps[-1], legacy="layer")
        values = acts[layer]
        bounds = grids.activation_bounds(acts.select(maps)) if scale == "global" else None
        n = values.shape[-1]
        grid = grids.feature_grid(
            values, scale=scale, cmap=cmap, global_bounds=bounds, tile=56 if n <= 64 else 28 if n <= 256 else 16
        )
        stats = activations.channel_stats(values, k=min(8, n))
        tile = figures.selected_tile(st.session_state.get("act.grid"), grid.shape[:2], n)
        if tile is not None and _state.changed("act.clicked", (layer, tile)):  # a click on a tile zooms on it
            st.session_state["act.channel"] = tile
        st.plotly_chart(
            figures.image_figure(
                grid,
                f"{layer}: {n} maps of {values.shape[0]}×{values.shape[1]}, row by row (click one to zoom)",
                height=min(720, max(240, grid.shape[0] + 60)),
                points=figures.tile_points(grid.shape[:2], n),
            ),
            key="act.grid",
            on_select="rerun",
            selection_mode="points",
        )
        st.download_button(
            "Download grid (PNG)",
            lambda: render.to_png(grid),
            f"{layer.replace('/', '_')}_maps.png",
            "image/png",
            key="act.png",
        )
        dead = np.flatnonzero(stats.dead)
        c1, c2, c3 = st.columns(3)
        c1.metric("Sparsity", f"{stats.layer_sparsity:.0%}", help="Share of exact zeros in this layer's maps")
        c2.metric("Dead maps", len(dead), help="Maps that are zero everywhere for this input")
        c3.metric("Most active", ", ".join(map(str, stats.top[:4])))
        if len(dead):
            st.caption(
                "Zero everywhere on this input: "
                f"channels {', '.join(map(str, dead[:30]))}{' …' if len(dead) > 30 else ''}"
            )
        z1, z2 = st.columns(2)
        with z1:
            top = int(stats.top[0])
            channel = st.number_input(
                "Zoom on channel",
                0,
                values.shape[-1] - 1,
                top,
                **_state.linked("act.channel", top, range(values.shape[-1]), legacy="ch"),
            )
            _links.channel_links(loaded, layer, int(channel), dead=bool(stats.dead[channel]))
            st.page_link(
                "pages/dataset.py",
                label=f"Dataset examples of channel {channel}",
                icon="🗂️",
                query_params={"layer": layer, "ch": str(channel)},
            )
            st.plotly_chart(
                figures.matrix_figure(
                    values[:, :, channel],
                    f"{layer}, channel {channel} (values on hover)",
                    diverging=bool(values.min() < 0),
                    height=380,
                ),
                key="act.zoom",
            )
        with z2:
            st.plotly_chart(
                figures.bar_figure(
                    [str(i) for i in range(values.shape[-1])],
                    stats.mean,
                    "Mean activation per channel (orange: dead)",
                    flagged=stats.dead,
                    y_title="mean",
                ),
                key="act.means",
            )
            every = st.session_state.get("act.every", every_default)
            sparsity = activations.layer_sparsity(acts.select(maps if every else [c for c in by_block if c in maps]))
            st.plotly_chart(
                figures.bar_figure(
                    list(sparsity),
                    list(sparsity.values()),
                    "Sparsity per layer" if every else "Sparsity per block output",
                    y_title="share of zeros",
                ),
                key="act.sparsity",
            )

_snapshots.activation_replay(loaded, scale=scale, cmap=cmap)
_warm.after_draw(loaded, "activations", acts.warm)  # the next example's compiled pass, traced while the user reads
