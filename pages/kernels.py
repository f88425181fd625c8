"""Kernels page: every learned filter of a conv layer as an image, with its numbers."""

import functools

import numpy as np
import streamlit as st

from pages import _cache, _layers, _snapshots, _state, _working
from vizcore.data import images
from vizcore.inspect import kernels
from vizcore.present import figures, render

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🧩 Kernels")
st.caption(
    "The filters a convolution layer has learned. Blue is a negative weight, red a positive one, white zero; "
    "a first layer that sees RGB can be shown as colour composites (grey = zero)."
)

convs = _cache.summary(loaded).conv_layers
if not convs:
    st.error("This model has no convolution layer, so there are no kernels to show.")
    st.stop()

layer = _layers.select(loaded, st, "Conv layer", convs, key="kernels.layer", default=convs[0], legacy="layer")
lk = _cache.layer_kernel(loaded, layer)
lk = _snapshots.kernel_picker(loaded, lk, key="kernels.epoch")

modes = [m for m in kernels.MODES if m != "rgb" or lk.kernel_hwio.shape[2] == 3]
labels = {"rgb": "RGB composite", "per_channel": "Each input channel", "mean": "Mean over input channels"}
cols = st.columns([2, 2, 1])
default_mode = kernels.default_mode(lk)
_state.reset_when("kernels.mode", lk.path, to=default_mode)  # a new layer starts in its own default mode
mode = cols[0].radio(
    "Show",
    modes,
    modes.index(default_mode),
    format_func=labels.get,
    horizontal=True,
    **_state.linked("kernels.mode", default_mode, modes, format_func=labels.get, legacy="mode"),
)
scales = {"filter": "Per filter", "layer": "Per layer", "global": "Global (all conv layers)"}
scale = cols[1].radio(
    "Colour scale",
    kernels.SCALES,
    0,
    format_func=scales.get,
    horizontal=True,
    **_state.linked("kernels.scale", "filter", kernels.SCALES, format_func=scales.get, legacy="scale"),
)
tile_px = cols[2].slider("Tile size", 16, 96, 40, step=8, key="kernels.tile")
bound = _cache.global_kernel_bound(loaded) if scale == "global" else None

kh, kw, cin, cout = lk.kernel_hwio.shape
st.caption(f"`{lk.path}` · {lk.layer_type} · {cout} filters of {kh}×{kw}×{cin} · {lk.note}")
shown = list(range(cout))
if mode == "per_channel" and cin * cout > kernels.MAX_TILES:
    shown = list(range(max(1, kernels.MAX_TILES // cin)))
    st.info(f"Showing the first {len(shown)} filters (one row each, {cin} input channels per row).")
gallery = kernels.kernel_gallery(
    lk, mode=mode, scale=scale, bound=bound, filters=shown, tile_px=tile_px, bgr=images.is_bgr(loaded.preprocess)
)
st.image(
    gallery, caption="One tile per filter, row by row" + (" (one row per filter)" if mode == "per_channel" else "")
)
st.download_button(
    "Download gallery (PNG)",
    functools.partial(render.to_png, gallery),  # encoded on click only
    f"{loaded.model.name}_{lk.path.replace('/', '_')}_kernels.png",
    "image/png",
    key="kernels.png",
)

stats = kernels.filter_stats(lk)
flag = stats.dead | stats.near_dead
if flag.any():
    st.warning(
        f"{int(stats.dead.sum())} dead and {int(stats.near_dead.sum())} near-dead filter(s): "
        f"{', '.join(map(str, np.flatnonzero(flag)[:20]))}. "
        "Their weights are (almost) all zero, so they barely respond."
    )

left, right = st.columns(2)
with left:
    f = st.number_input("Filter", 0, cout - 1, 0, **_state.linked("kernels.filter", 0, range(cout), legacy="filter"))
    st.page_link(
        "pages/dataset.py",
        label=f"Dataset examples of filter {f}",
        icon="🗂️",
        query_params={"layer": lk.path, "ch": str(f)},
    )
    weights = lk.kernel_hwio[:, :, :, f]
    channel = 0
    if cin > 1:
        channel = st.slider("Input channel", 0, cin - 1, 0, key="kernels.channel")
    st.plotly_chart(
        figures.matrix_figure(weights[:, :, channel], f"Filter {f}, input channel {channel}: weights"),
        key="kernels.filter_fig",
    )
    bias = "" if lk.bias is None else f" · bias {lk.bias[f]:+.4f}"
    st.caption(
        f"L2 norm {stats.l2[f]:.4f} · mean {stats.mean[f]:+.4f} · near-zero share {stats.near_zero_share[f]:.0%}{bias}"
    )
with right:
    counts, edges = kernels.weight_histogram(lk, bound=bound)
    st.plotly_chart(figures.histogram_figure(counts, edges, f"Weights of {lk.path}"), key="kernels.hist")
    st.plotly_chart(
        figures.bar_figure(
            [str(i) for i in range(cout)],
            stats.l2,
            "L2 norm per filter (orange: dead or near-dead)",
            flagged=flag,
            y_title="L2 norm",
        ),
        key="kernels.norms",
    )
