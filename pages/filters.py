"""Filters page: images synthesized by gradient ascent that excite a filter or a class."""

import dataclasses
import functools

import numpy as np
import streamlit as st

from pages import _cache, _layers, _runner, _state, _working
from vizcore import featurevis as fv
from vizcore.present import figures, render

loaded = _working.working_model()
_working.sidebar(loaded)
st.title("✨ Filters")
st.caption(
    "What does a filter look for? Start from noise and change the image, by gradient ascent, until the filter "
    "(or a class) responds as strongly as it can. All filters are optimized together as one batch."
)

summary = _cache.summary(loaded)
convs = list(summary.conv_layers)
if not convs:
    st.error("This model has no convolution layer.")
    st.stop()
defaults = fv.default_settings(loaded.spec)
OBJECTIVES = {
    "channel": "A filter (channel mean)",
    "neuron": "A filter at the centre (one neuron)",
    "class": "A class (its logit)",
}
c1, c2, c3 = st.columns([2, 2, 1])
objective_kind = c1.radio(
    "Maximize",
    list(OBJECTIVES),
    0,
    format_func=OBJECTIVES.get,
    **_state.linked("fv.objective", "channel", list(OBJECTIVES), format_func=OBJECTIVES.get, legacy="objective"),
)
if objective_kind == "class":
    layer, count = None, len(loaded.class_names)
    targets = c2.multiselect(
        "Classes",
        range(count),
        default=list(range(min(count, 10))),
        key="fv.classes",
        format_func=lambda c: loaded.class_names[c],
    )
else:
    default_layer, default_count = fv.gallery_default(loaded, convs)
    layer = _layers.select(loaded, c2, "Layer", convs, key="fv.layer", default=default_layer, legacy="layer")
    count = _cache.layer_kernel(loaded, layer).kernel_hwio.shape[-1]
    first, last = c2.slider("Filters", 0, count - 1, (0, min(count, default_count) - 1), key=f"fv.range.{layer}")
    targets = list(range(first, last + 1))
seed = c3.number_input("Seed", 0, 10_000, 0, key="fv.seed")

texture = (
    None
    if layer is None
    else fv.texture_size(loaded, fv.Channel(layer) if objective_kind == "channel" else fv.Neuron(layer))
)
if texture:
    st.caption(
        f"An early layer: each filter is optimized as a texture at {texture[0]}×{texture[1]} px (twice its receptive "
        f"field), a seamless tile of {(tile := fv.texture_period(texture[0], texture[2]))} px ({tile // texture[2]} "
        f"whole {texture[2]}-px strides) in pixels with decorrelated colours, learning rate "
        f"{fv.TEXTURE_LEARNING_RATE}; of the options below, steps and regularizers apply."
    )
with st.expander("Optimization and regularization (defaults chosen for this input size)"):
    r = st.columns(4)
    steps = r[0].number_input("Steps", 1, 2048, fv.TEXTURE_STEPS if texture else defaults.steps, key="fv.steps")
    lr = r[1].number_input("Learning rate", 0.001, 1.0, defaults.learning_rate, format="%.3f", key="fv.lr")
    param = r[2].selectbox(
        "Parameterization",
        ["fourier", "pixel"],
        key="fv.param",
        help="Fourier space with decorrelated colours (Lucid) gives smoother, more natural images than raw pixels",
    )
    transforms_on = r[3].checkbox(
        "Transformation robustness",
        True,
        key="fv.transforms",
        help=", ".join(type(t).__name__ for t in defaults.transforms) or "none",
    )
    weights = {type(g).__name__: g.weight for g in defaults.regularizers}
    r = st.columns(3)
    l2 = r[0].number_input("L2 weight", 0.0, 1.0, float(weights.get("L2", 0.0)), format="%.4f", key="fv.l2")
    tv = r[1].number_input(
        "Total variation weight", 0.0, 1.0, float(weights.get("TotalVariation", 0.0)), format="%.4f", key="fv.tv"
    )
    blur = r[2].number_input("Blur weight", 0.0, 5.0, float(weights.get("Blur", 0.0)), format="%.3f", key="fv.blur")
base_param = defaults.param if param == "fourier" else fv.PixelParam(decorrelate=loaded.spec.channels == 3)
regs = tuple(g for g in (fv.L2(l2), fv.TotalVariation(tv), fv.Blur(blur)) if g.weight > 0)
settings = dataclasses.replace(
    defaults,
    steps=int(steps),
    learning_rate=float(lr),
    param=base_param,
    transforms=defaults.transforms if transforms_on else (),
    regularizers=regs,
)
if not targets:
    st.info("Choose at least one target.")
    st.stop()


def visualize(sink) -> tuple:
    """The optimized images of every target in one batch (a live preview of the first 32) and the real activations."""
    preview = st.empty()

    def on_progress(step: int, total: int, batch) -> None:
        sink(step, total)
        if batch is not None:
            tiles = fv.to_uint8(batch[:32], fv.input_range(loaded.spec.channels, loaded.preprocess))
            preview.image(render.montage(tiles, columns=16, pad=2), caption="Live preview (first 32)")

    objective = (
        fv.ClassLogit()
        if objective_kind == "class"
        else (fv.Channel(layer) if objective_kind == "channel" else fv.Neuron(layer))
    )
    try:
        result = fv.optimize(loaded, objective, targets, settings=settings, seed=int(seed), on_progress=on_progress)
        return result, None if layer is None else _cache.real_activation(loaded, layer)
    finally:
        preview.empty()


found = _runner.run(
    "fv.result",
    (loaded, objective_kind, layer, tuple(targets), fv.settings_json(settings), int(seed)),
    visualize,
    scope="server",
    limit=32,
    ask=_runner.Ask(
        "the optimization",
        f"{len(targets)} image(s), {fv.capped_steps(settings.steps)} steps each, in one batch.",
        label="Visualize",
        key="fv.run",
        primary=True,
        help=None,
    ),
    what="Optimizing (the first run of a layer compiles for a few seconds)",
)
if found is None:
    st.stop()
result, real = found
images = fv.to_uint8(result.images_nhwc, result.input_range)
side = max(64, images.shape[1])
tiles = np.stack([render.resize(render.to_rgb(t), (side, side)) for t in images])
names = [loaded.class_names[t] if objective_kind == "class" else f"filter {t}" for t in result.targets]
st.image(render.montage(tiles, columns=min(8, len(tiles)), pad=4), caption="Row by row: " + ", ".join(names[:64]))
if layer is not None:
    st.page_link(
        "pages/dataset.py",
        label=f"Dataset examples of filter {result.targets[0]} (first shown)",
        icon="🗂️",
        query_params={"layer": layer, "ch": str(result.targets[0])},
    )
dead = [names[i] for i in np.flatnonzero(result.dead)]
if dead:
    st.warning(f"Dead (the activation stays zero whatever the image): {', '.join(dead)}")
c1, c2 = st.columns(2)
c1.plotly_chart(
    figures.curves_figure(
        {n: (np.arange(1, len(v) + 1), v) for n, v in result.curves().items()},
        "Loss terms during optimization",
        x_title="step",
        y_title="value",
    ),
    key="fv.curves",
)
if real is not None:
    reached = result.reached
    fig = figures.bar_figure(
        names, reached, "Reached activation (bars) vs real data (line)", flagged=result.dead, y_title="mean activation"
    )
    fig.add_scatter(x=names, y=real[list(result.targets)], mode="lines+markers", name="mean on real data")
    c2.plotly_chart(fig, key="fv.reached")
st.download_button(
    "Download images and settings (ZIP)",  # built on click only
    functools.partial(
        fv.export_zip,
        result.images_nhwc,
        settings,
        input_range=result.input_range,
        names=names,
        metadata={"model": loaded.label, "layer": layer, "seed": int(seed)},
    ),
    "convlens_filters.zip",
    "application/zip",
    key="fv.zip",
)
