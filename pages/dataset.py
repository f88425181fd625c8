"""Dataset view: the working model over a whole dataset — filter examples, evaluation, embedding."""

import io
import json
import zipfile

import numpy as np
import streamlit as st

from pages import _atlas_view, _cache, _datasets, _layers, _picker, _report_view, _runner, _state, _working
from vizcore import featurevis as fv
from vizcore.errors import ConvLensError
from vizcore.inspect import embedding, evaluation, examples, kernels
from vizcore.models import fields, graph
from vizcore.precompute import store as precomputed
from vizcore.present import figures, render

K = precomputed.K  # examples per filter
PRECOMPUTED = "Precomputed on {created} by python -m vizcore.precompute."
SOURCES = _datasets.SOURCES
VIEWS = {"examples": "Filter examples", "evaluate": "Evaluate", "embedding": "Embedding"}


noted: list[str] = []  # the precomputed kinds this run used


def _note(kind: str, **params) -> bool:
    """Whether the precomputed store holds ``kind`` for these params; says so once per run."""
    store = data_view.store
    if store is None or not store.has(kind, **params):
        return False
    if not noted:
        st.caption(PRECOMPUTED.format(created=store.created))
        noted.append(kind)
    return True


def _get(kind: str, what: str, **params):
    """``kind`` of the view (``DataView.get``: read from the precomputed store, else computed), shared by every
    session through the runner's server store, in a heavy slot with a progress bar while it computes."""
    created = data_view.store.created if _note(kind, **params) else None  # a store written later is read then
    return _runner.run(
        f"dataset.{kind}",
        (loaded, data_view.key, created, params),
        lambda sink: data_view.get(kind, on_progress=sink, **params),
        scope="server",
        limit=8,
        bar=True,
        what=what,
        unit="images",
    )


def _stored(kind: str, **params):
    """``kind`` as ``python -m vizcore.precompute`` saved it for this model and these images, else None."""
    if not _note(kind, **params):
        return None
    inputs = (loaded, data_view.key, data_view.store.created, params)
    return _runner.run(f"dataset.stored.{kind}", inputs, lambda _: data_view.stored(kind, **params), scope="server")


loaded = _working.working_model()
_working.sidebar(loaded)
st.title("🗂️ Dataset view")
st.caption(
    "The working model over a whole dataset: which images each filter responds to most, how well the model "
    "classifies them, and how a layer arranges them."
)

view = st.radio(
    "View",
    list(VIEWS),
    0,
    format_func=VIEWS.get,
    horizontal=True,
    **_state.linked("dataset.view", "examples", list(VIEWS), format_func=VIEWS.get),
)
c1, c2 = st.columns([2, 1])
first = "photos" if _picker.photo_model(loaded.spec) else "mnist_sample"  # a photo model opens on the photos
source = c1.selectbox(
    "Dataset",
    list(SOURCES),
    list(SOURCES).index(first),
    format_func=SOURCES.get,
    **_state.linked("dataset.source", first, list(SOURCES), format_func=SOURCES.get),
)
limit = int(c2.number_input("Images (at most)", 10, 20_000, 5000, step=500, key="dataset.limit"))
try:
    full, ds_name = _datasets.load(source, limit, key="dataset.zip")
except ConvLensError as err:
    st.error(str(err))
    st.stop()
spec = loaded.spec
data_view = _cache.dataview(loaded, ds_name, limit, full)  # which images, prepared how, labelled how: the engine's
pick, ds, ds_key, n = data_view.pick, data_view.dataset, data_view.key, len(data_view)
if n < min(limit, len(full)):
    st.caption(
        f"Using {n:,} images: more of this model's {spec.height}×{spec.width}×{spec.channels} inputs "
        "would not fit in memory."
    )
with st.spinner("Preparing the images for the model…"):
    x, display = data_view.x_nhwc, data_view.display_nhwc
st.caption(
    f"{len(ds):,} images of {len(full):,} · {ds.num_classes} classes · shown to the model at "
    f"{x.shape[1]}×{x.shape[2]}×{x.shape[3]} in its '{loaded.preprocess}' range"
)
_report_view.dataset_view(loaded, full, ds_name, limit)
y_model, labels_fit = data_view.y, data_view.labels_fit


def _report() -> evaluation.Report:
    return _get("report", "Classifying")


# --------------------------------------------------------------------------- filter examples
if view == "examples":
    choices, default = _cache.cam_choices(loaded)
    if not choices:
        st.error("This model has no convolution layer, so there are no filters to show.")
        st.stop()
    _state.take_link("layer", "dataset.layer", lambda raw: raw if raw in choices else None)
    layer = _layers.select(loaded, st, "Layer", choices, key="dataset.layer", default=default)
    ex = _get("examples", "Finding each filter's top images", layer=layer)
    _state.take_link("ch", "dataset.ch", lambda raw: int(raw) if raw.isdigit() and int(raw) < ex.channels else None)
    ch = int(
        st.number_input("Filter (channel)", 0, ex.channels - 1, 0, **_state.linked("dataset.ch", 0, range(ex.channels)))
    )
    field = fields.receptive_field(loaded.model, layer, x.shape[1:3])
    st.subheader(f"Filter {ch} of {layer}")
    st.caption(
        f"Receptive field {field.size[0]}×{field.size[1]} pixels · top {ex.k} of {len(x):,} images, best first · "
        "the box marks where the filter peaks"
    )
    whole, patches = examples.card_tiles(display, ex, ch)
    left, right = st.columns([3, 1])
    left.image(
        render.montage(whole, columns=ex.k, pad=2),
        caption="Images: " + ", ".join(f"#{pick[i]} ({s:.2f})" for i, s in zip(ex.indices[ch], ex.scores[ch])),
    )
    left.image(render.montage(patches, columns=ex.k, pad=2), caption="Receptive-field patches")
    extra = []
    path_is_conv = layer in graph.conv_layers(loaded.model)
    if path_is_conv:
        lk = _cache.layer_kernel(loaded, layer)
        if ch < lk.kernel_hwio.shape[-1]:
            tile = kernels.kernel_tiles(lk, filters=[ch])[0]
            tile = render.resize(render.to_rgb(tile), (96, 96), smooth=False)
            right.image(tile, caption="Kernel")
            extra.append(tile)
    synthesized = _stored("featurevis", layer=layer)
    if synthesized is not None and ch < len(synthesized):
        tile = render.resize(render.to_rgb(synthesized[ch]), (96, 96))
        right.image(tile, caption="Gradient ascent")
        extra.append(tile)
    elif synthesized is None:
        with right:
            found = _runner.run(
                "dataset.fv",
                (loaded, layer, ch),
                lambda _sink: fv.optimize(loaded, fv.Channel(layer), [ch], seed=0),
                scope="server",
                limit=32,
                ask=_runner.Ask(
                    "gradient ascent",
                    label="Gradient-ascent image",
                    key="dataset.fv",
                    help="Synthesize the image this filter likes most (vizcore.featurevis)",
                    cancel=False,
                ),
                what="Optimizing",
            )
        if found is not None:
            tile = render.resize(render.to_rgb(fv.to_uint8(found.images_nhwc, found.input_range)[0]), (96, 96))
            right.image(tile, caption="Gradient ascent")
            extra.append(tile)
    card = render.montage(list(whole) + list(patches) + extra, columns=ex.k, pad=2)
    meta = {
        "model": loaded.label,
        "layer": layer,
        "channel": ch,
        "dataset": ds_key,
        "indices": pick[ex.indices[ch]].tolist(),
        "scores": ex.scores[ch].tolist(),
        "boxes_x0y0x1y1": ex.boxes[ch].tolist(),
    }

    def _card_zip() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("card.png", render.to_png(card))
            for r, (w, p) in enumerate(zip(whole, patches)):
                zf.writestr(f"example_{r}.png", render.to_png(w))
                zf.writestr(f"patch_{r}.png", render.to_png(p))
            zf.writestr("card.json", json.dumps(meta, indent=2))
        return buf.getvalue()

    name = f"{loaded.model.name}_{layer.replace('/', '_')}_{ch}"
    d1, d2 = st.columns(2)
    d1.download_button("Download card (PNG)", render.to_png(card), f"{name}.png", "image/png", key="dataset.card_png")
    d2.download_button("Download card (ZIP)", _card_zip, f"{name}.zip", "application/zip", key="dataset.card_zip")

# --------------------------------------------------------------------------- evaluation
elif view == "evaluate":
    if not labels_fit:
        st.warning(
            f"The dataset's classes ({', '.join(ds.class_names[:6])}{', …' if ds.num_classes > 6 else ''}) are not the "
            f"model's {len(loaded.class_names)} classes, so there is nothing to score. "
            "Pick a dataset with the model's classes."
        )
        st.stop()
    rep = _report()
    ks = sorted(k for k in (1, 3, 5) if k < len(loaded.class_names)) or [1]
    cols = st.columns(1 + len(ks))
    cols[0].metric("Accuracy", f"{rep.accuracy:.2%}", help=f"{int(np.trace(rep.confusion)):,} of {len(x):,} right")
    for col, k in zip(cols[1:], ks):
        col.metric(
            f"Top-{k} accuracy",
            f"{evaluation.top_k_accuracy(rep.evaluation.probabilities, rep.evaluation.true, k):.2%}",
        )
    names = loaded.class_names
    st.dataframe(
        {"class": list(names), "precision": rep.precision, "recall": rep.recall, "images": rep.support},
        hide_index=True,
        key="dataset.per_class",
    )
    cells = figures.selectable(
        figures.confusion_figure(rep.confusion, names), np.repeat(names, len(names)), np.tile(names, len(names))
    )  # a heatmap alone cannot be clicked
    event = st.plotly_chart(cells, on_select="rerun", selection_mode="points", key="dataset.confusion")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    clicked = (str(points[0].get("y")), str(points[0].get("x"))) if points else None
    if clicked and clicked != st.session_state.get("dataset.clicked") and all(c in names for c in clicked):
        st.session_state["dataset.true"], st.session_state["dataset.pred"] = clicked  # a new click opens that cell
    st.session_state["dataset.clicked"] = clicked
    c1, c2 = st.columns(2)
    true_name = c1.selectbox("True class", list(names), key="dataset.true")
    pred_name = c2.selectbox("Predicted class", list(names), 1 if len(names) > 1 else 0, key="dataset.pred")
    t, p = names.index(true_name), names.index(pred_name)
    cell = rep.cell(t, p)
    st.caption(
        f"{len(cell)} image(s) of {true_name} predicted as {pred_name}, most confident first; each with "
        "Grad-CAM for the predicted class and for the true class."
    )
    cam_layer = _cache.cam_choices(loaded)[1]
    for i in cell[:6]:
        row = st.columns([1, 1, 1, 2])
        image = render.to_rgb(display[i])
        row[0].image(
            render.resize(image, (112, 112), smooth=False),
            caption=f"#{pick[i]} · p={rep.evaluation.probabilities[i, p]:.2f}",
        )
        for col, target, label in ((row[1], p, f"Grad-CAM {pred_name}"), (row[2], t, f"Grad-CAM {true_name}")):
            heat = _cache.attribution_map(loaded, f"{ds_key}#{i}", x[i], "Grad-CAM", int(target), cam_layer, ())
            col.image(render.resize(render.overlay(image, heat), (112, 112)), caption=label)
    wrong = rep.mistakes(12)
    if len(wrong):
        st.subheader("Most confident mistakes")
        tiles = [render.resize(render.to_rgb(display[i]), (72, 72), smooth=False) for i in wrong]
        st.image(
            render.montage(tiles, columns=12, pad=2),
            caption=" · ".join(
                f"#{pick[i]}: {names[rep.evaluation.true[i]]}→{names[rep.evaluation.predicted[i]]} "
                f"({rep.evaluation.probabilities[i, rep.evaluation.predicted[i]]:.2f})"
                for i in wrong
            ),
        )

# --------------------------------------------------------------------------- embedding
else:
    choices, default = _cache.embedding_layers(loaded)
    layer = _layers.select(
        loaded,
        st,
        "Layer (feature maps are averaged over positions)",
        choices,
        key="dataset.emb_layer",
        default=default,
    )
    c1, c2 = st.columns(2)
    method = c1.radio(
        "Projection",
        embedding.PROJECTIONS,
        0,
        horizontal=True,
        help="t-SNE of 5,000 points takes about half a minute",
        **_state.linked("dataset.projection", "PCA", embedding.PROJECTIONS),
    )
    colours = (
        {"true": "True class", "predicted": "Predicted class", "correct": "Right or wrong"}
        if labels_fit
        else {"true": "Dataset class"}
    )
    colour = c2.radio("Colour by", list(colours), 0, format_func=colours.get, horizontal=True, key="dataset.colour")
    projection = _get("embedding", f"The layer's activations, then {method}", layer=layer, method=method)
    xy = projection.xy
    true_names = np.asarray(loaded.class_names)[y_model] if labels_fit else np.asarray(ds.class_names)[ds.y]
    hover = [f"#{pick[i]} · {true_names[i]}" for i in range(len(xy))]
    groups = true_names
    if labels_fit and colour != "true":
        rep = _report()
        predicted = np.asarray(loaded.class_names)[rep.evaluation.predicted]
        groups = predicted if colour == "predicted" else np.where(rep.evaluation.predicted == y_model, "right", "wrong")
        hover = [f"{h} → {predicted[i]}" for i, h in enumerate(hover)]
    title = f"{method} of {layer} ({projection.features} features)"
    if method == "PCA":
        title += f" · {projection.variance:.0%} of the variance"
    event = st.plotly_chart(
        figures.embedding_figure(xy, groups, hover, title),
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        key="dataset.embedding",
    )
    picked = figures.embedding_rows(groups, event)
    if len(picked) == 1:
        i = picked[0]
        st.image(render.resize(render.to_rgb(display[i]), (160, 160), smooth=False), caption=hover[i])
    elif picked:
        tiles = [render.resize(render.to_rgb(display[i]), (64, 64), smooth=False) for i in picked[:60]]
        st.image(
            render.montage(tiles, columns=15, pad=2),
            caption=f"{len(picked)} selected" + (" (first 60)" if len(picked) > 60 else ""),
        )
    else:
        st.caption(
            "Click a point to see its image; pick the lasso or box tool (top right of the plot) "
            "to see a gallery of a selection."
        )
    _atlas_view.show(
        loaded,
        layer,
        x,
        lambda: data_view.get("features", layer=layer),  # kept by the view since the embedding, unless precomputed
        xy,
        f"{ds_key}:{method}",
        labels=y_model if labels_fit else ds.y,
        class_names=loaded.class_names if labels_fit else ds.class_names,
        predicted=(lambda: _report().evaluation.predicted) if labels_fit else None,
        saved=lambda grid, least, steps: _stored(
            "atlas", layer=layer, method=method, grid=grid, min_points=least, steps=steps
        ),
    )
