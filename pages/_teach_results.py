"""After a teach run: accuracy per class, the validation confusion matrix (a cell shows its images with
Grad-CAM, as the Dataset view does), a live preview, "Explore this model" and the downloads."""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import streamlit as st

from pages import _cache, _links, _working
from vizcore import transfer
from vizcore.data import images
from vizcore.errors import ImageLoadError
from vizcore.present import figures, render

EXPLORE_ON = (
    "pages/kernels.py",
    "pages/activations.py",
    "pages/attribution.py",
    "pages/filters.py",
    "pages/dataset.py",
)


def _confusion(run: transfer.TeachRun) -> None:
    result, names = run.result, run.result.loaded.class_names
    report = result.validation
    ev = report.evaluation
    c1, c2 = st.columns(2)
    per_class = figures.bar_figure(
        list(names), np.nan_to_num(ev.per_class_accuracy), "Accuracy per class (validation)", y_title="accuracy"
    )
    c1.plotly_chart(per_class, key="teach.per_class")
    cells = figures.selectable(
        figures.confusion_figure(ev.confusion, names), np.repeat(names, len(names)), np.tile(names, len(names))
    )
    event = c2.plotly_chart(cells, on_select="rerun", selection_mode="points", key="teach.confusion")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:
        c2.caption("Click a cell to see its images with Grad-CAM.")
        return
    true_name, pred_name = str(points[0].get("y")), str(points[0].get("x"))
    if true_name not in names or pred_name not in names:
        return
    t, p = names.index(true_name), names.index(pred_name)
    cell = report.cell(t, p)
    st.caption(
        f"{len(cell)} validation image(s) of {true_name} predicted as {pred_name}, most confident first; "
        "Grad-CAM for the predicted class and for the true class."
    )
    loaded, layer = result.loaded, _cache.cam_choices(result.loaded)[1]
    for j in cell[:6]:
        i = int(result.validation_indices[j])
        pixels = run.dataset.pixels(i)
        x = images.to_model_range(pixels, loaded.preprocess)
        row = st.columns([1, 1, 1, 2])
        shown = render.to_rgb(pixels)
        row[0].image(render.resize(shown, (112, 112)), caption=f"image {i} · p={ev.probabilities[j, p]:.2f}")
        for col, target, label in ((row[1], p, pred_name), (row[2], t, true_name)):
            heat = _cache.attribution_map(loaded, f"teach:{run.id}#{i}", x, "Grad-CAM", int(target), layer, ())
            col.image(render.resize(render.overlay(shown, heat), (112, 112)), caption=f"Grad-CAM {label}")


def _preview(run: transfer.TeachRun) -> None:
    loaded = run.result.loaded
    st.subheader("Try it")
    how = st.radio(
        "Image",
        ["upload", "webcam"],
        horizontal=True,
        key="teach.preview_how",
        format_func={"upload": "Upload", "webcam": "Webcam"}.get,
    )
    if how == "upload":
        source = st.file_uploader(
            "An image to classify", type=["png", "jpg", "jpeg", "gif", "bmp", "webp"], key="teach.preview"
        )
    else:
        source = st.camera_input("Show it something", key="teach.preview_cam")
    if source is None:
        return
    try:
        photo = images.load_image(source, name=source.name)
    except ImageLoadError as err:
        st.warning(str(err), icon="🖼️")
        return
    prepared = loaded.prepare(photo)
    key = "preview:" + hashlib.sha1(photo.tobytes()).hexdigest()[:12]
    probs = _cache.probabilities(loaded, key, prepared.image_hwc)
    c1, c2 = st.columns([1, 2])
    c1.image(render.resize(render.to_rgb(prepared.display_hwc), (200, 200)), caption="As the model sees it")
    top = figures.probabilities_figure(list(loaded.class_names), probs, k=min(5, len(probs)))
    c2.plotly_chart(top, key="teach.preview_probs")


def panel(run: transfer.TeachRun) -> None:
    """Everything to see and do once a run has ended with a model."""
    result = run.result
    if result is None:
        return
    notes = st.session_state.get("teach.notes", []) + list(result.notes)
    (st.success if result.status == "completed" else st.warning)(
        f"{result.message} Features from `{result.feature_layer}`: the base read each image once "
        f"({result.timings['features']:.1f} s), the head trained in {result.timings['head']:.1f} s"
        + (f", fine-tuning took {result.timings['fine_tune']:.1f} s." if result.fine_tuned else ".")
    )
    for note in dict.fromkeys(notes):
        st.caption(f"ℹ️ {note}")
    if result.validation is not None:
        st.metric(
            "Validation accuracy",
            f"{result.validation.accuracy:.1%}",
            help=f"On {len(result.validation_indices)} images held out of training "
            f"({run.settings.validation_fraction:.0%} of each class)",
        )
        _confusion(run)
    else:
        st.caption("No validation images (a validation share of 0, or one image per class), so no accuracy to show.")
    _preview(run)
    st.subheader("Use it")
    c1, c2, c3 = st.columns(3)
    if c1.button(
        "🔍 Explore this model",
        key="teach.explore",
        type="primary",
        help="Make it the working model on every page: Kernels, Activations, Attribution, Filters, Dataset view",
    ):
        _working.set_working(_working.add_session_model("trained", result.loaded))
        st.session_state["teach.explored"] = run.id
        st.rerun()  # the sidebar, drawn first, names the new working model
    c2.download_button(
        "Download .keras + labels (ZIP)",
        functools.partial(transfer.bundle_zip, result.loaded),
        "convlens_teach_keras.zip",
        "application/zip",
        key="teach.download_zip",
        help="model.keras, labels.txt and metadata.json: reopens on the Model page with its names and preprocessing",
    )
    c3.download_button(
        "Download .tflite",
        functools.partial(transfer.tflite_bytes, result.model),
        "model.tflite",
        "application/octet-stream",
        key="teach.download_tflite",
    )
    if st.session_state.get("teach.explored") == run.id:
        st.success(f"'{result.loaded.label}' is now the working model on every page.")
        cols = st.columns(len(EXPLORE_ON))
        for col, path in zip(cols, EXPLORE_ON):
            _links.link(col, path, "Open", {})
