"""Convolution page: one output number of a layer, taken apart step by step."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages import _cache, _layers, _picker, _state, _working
from vizcore.inspect import convdetail
from vizcore.present import figures

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🔍 Convolution, step by step")
st.caption(
    "Pick a layer, an output channel and a position: see the input patch the filter looks at, the filter's weights, "
    "their products, the sum plus bias and the activation. The last number is the value in the feature map."
)

layers = _cache.detail_layers(loaded)
if not layers:
    st.error("This model has no convolution, pooling or activation layer to take apart.")
    st.stop()
kinds = dict(layers)
left, right = st.columns([1, 2])
picked = _picker.picked_or_stop(loaded, left, preview_px=140)

acts = _cache.activations(loaded, picked.key, picked.image_hwc)
with right:
    paths = [p for p, _ in layers]
    layer = _layers.select(
        loaded,
        st,
        "Layer",
        paths,
        key="conv.layer",
        default=paths[0],
        legacy="layer",
        suffix=lambda p: f" ({kinds[p]})",
    )
    out = acts.get(layer)
    if out is None or out.ndim not in (1, 3):
        out = _cache.layer_output(loaded, picked.key, picked.image_hwc, layer)
    if out.ndim == 3:  # a click on the feature map picks the position (only a new click: typed values stay)
        event = st.session_state.get("conv.map")
        cell = figures.selected_cell(event, out.shape[:2])
        if cell is not None and _state.changed("conv.clicked", (layer, repr(event))):
            st.session_state["conv.y"], st.session_state["conv.x"] = cell
    c1, c2, c3 = st.columns(3)
    channel = c1.number_input(
        "Output channel",
        0,
        out.shape[-1] - 1,
        0,
        **_state.linked("conv.channel", 0, range(out.shape[-1]), legacy="ch"),
    )
    y = x = 0
    if out.ndim == 3:  # start where channel 0 responds most: a patch with something in it
        peak_y, peak_x = np.unravel_index(int(np.argmax(out[:, :, 0])), out.shape[:2])
        y = c2.number_input(
            "Row",
            0,
            out.shape[0] - 1,
            int(peak_y),
            **_state.linked("conv.y", int(peak_y), range(out.shape[0]), legacy="y"),
        )
        x = c3.number_input(
            "Column",
            0,
            out.shape[1] - 1,
            int(peak_x),
            **_state.linked("conv.x", int(peak_x), range(out.shape[1]), legacy="x"),
        )
    if out.ndim == 3:
        fig = figures.matrix_figure(
            out[:, :, channel],
            f"{layer}, channel {channel}: the output (marked: the position; click to move it)",
            diverging=bool(out.min() < 0),
            height=300,
        )
        figures.selectable(fig, *figures.cell_points(*out.shape[:2], step=max(1, max(out.shape[:2]) // 64)))
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers",
                marker=dict(symbol="square-open", size=14, color="#e8590c", line=dict(width=3)),
                hoverinfo="skip",
                showlegend=False,
            )
        )
        st.plotly_chart(fig, key="conv.map", on_select="rerun", selection_mode="points")

kind = kinds[layer]
args = (loaded.model, layer, picked.image_hwc, int(channel), int(y), int(x))
if kind == "conv":
    d = convdetail.conv_detail(*args)
    kh, kw, n = d.kernel.shape
    st.subheader(f"{d.layer_type} `{layer}`: output ({y}, {x}), channel {channel}")
    st.caption(
        f"Kernel {kh}×{kw} over {n} input channel(s) · stride {d.strides} · padding '{d.padding}'"
        + (f" (pad before: {d.pad_before})" if d.padding == "same" else "")
        + (f" · {d.note}" if d.note else "")
    )
    per_channel = d.products.reshape(-1, n).sum(axis=0)
    shown = 0
    if n > 1:
        shown = st.select_slider(
            "Input channel to show",
            options=list(range(n)),
            value=int(np.argmax(np.abs(per_channel))),
            format_func=lambda c: str(d.input_channels[c]),
            key="conv.in_channel",
        )
    m1, m2, m3 = st.columns(3)
    m1.plotly_chart(
        figures.matrix_figure(
            d.input_patch[:, :, shown], f"Input patch (channel {d.input_channels[shown]})", height=260
        ),
        key="conv.patch",
    )
    m2.plotly_chart(figures.matrix_figure(d.kernel[:, :, shown], "Kernel weights", height=260), key="conv.kernel")
    m3.plotly_chart(
        figures.matrix_figure(d.products[:, :, shown], "Products (patch × weight)", height=260), key="conv.products"
    )
    if d.padded.any():
        st.caption(f"{int(d.padded.sum())} window cell(s) fall in the zero padding.")
    if n > 1:
        st.plotly_chart(
            figures.bar_figure(
                [str(c) for c in d.input_channels],
                per_channel,
                "Sum of products per input channel",
                y_title="contribution",
            ),
            key="conv.per_channel",
        )
    st.markdown(
        f"""
| step | value |
|---|---:|
| Σ products over {kh}×{kw}×{n} = {d.products.size} weights | {d.total:+.6f} |
| + bias | {d.bias:+.6f} |
| = pre-activation | {d.pre_activation:+.6f} |
| {d.activation}(pre-activation) | **{d.post_activation:+.6f}** |
| value in the feature map | **{d.feature_map_value:+.6f}** |
"""
    )
    (st.success if d.error < 1e-4 * max(1.0, abs(d.feature_map_value)) else st.error)(
        f"Recomputed by hand and read from the feature map: difference {d.error:.2e} (float rounding)."
    )
elif kind == "pool":
    d = convdetail.pool_detail(*args)
    st.subheader(f"{d.layer_type} `{layer}`: output ({y}, {x}), channel {channel}")
    st.plotly_chart(
        figures.matrix_figure(d.window, f"The {d.window.shape[0]}×{d.window.shape[1]} window of the input", height=300),
        key="conv.window",
    )
    how = f"max of the window (at {d.argmax})" if d.kind == "max" else "mean of the window's cells inside the input"
    st.markdown(
        f"**{how}** = {d.value:+.6f} · value in the feature map = {d.feature_map_value:+.6f} · difference {d.error:.1e}"
    )
else:
    d = convdetail.activation_detail(*args)
    st.subheader(f"Activation `{layer}`: {d.function}")
    fig = figures.curves_figure(
        {d.function: (d.curve_x, d.curve_y)}, f"{d.function}: input → output", x_title="input", y_title="output"
    )
    fig.add_trace(
        go.Scatter(
            x=[d.input_value],
            y=[d.output_value],
            mode="markers",
            marker=dict(size=12, color="#e8590c"),
            name="this position",
        )
    )
    st.plotly_chart(fig, key="conv.activation")
    st.markdown(
        f"{d.function}({d.input_value:+.6f}) = **{d.output_value:+.6f}** · "
        f"value in the feature map = {d.feature_map_value:+.6f}"
    )
