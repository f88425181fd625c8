"""The input picker shared by the explorer pages: bundled data, an uploaded image, or a drawing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from pages import _cache, _shared
from vizcore import graph, images, models, render
from vizcore.errors import ImageLoadError

DATASETS = {"mnist_sample": "MNIST digits (bundled)", "shapes": "Shapes (generated)"}


@dataclass(frozen=True, eq=False)
class Picked:
    """One input, ready for the working model."""

    image_hwc: np.ndarray  # float32, the model's input range
    display_hwc: np.ndarray  # uint8, as the model sees it
    key: str  # identifies source + preprocessing, for caches and links
    label: str
    true_class: int | None = None
    box: tuple[int, int, int, int] | None = None  # the object's box in display pixels (shapes)
    notes: tuple[str, ...] = ()


def _default_dataset(spec: graph.InputSpec) -> str:
    return "mnist_sample" if spec.channels == 1 else "shapes"


def _prepare(image_uint8: np.ndarray, loaded: models.LoadedModel, *, invert: bool = False) -> images.Preprocessed:
    spec = loaded.spec
    size = (spec.height or image_uint8.shape[0], spec.width or image_uint8.shape[1])
    return images.preprocess(image_uint8, size=size, channels=spec.channels, mode=loaded.preprocess, invert=invert)


def _from_dataset(loaded: models.LoadedModel) -> Picked | None:
    spec = loaded.spec
    names = list(DATASETS)
    if st.session_state.get("input.for_model", loaded.key) != loaded.key:  # a new model: its own kind of data
        st.session_state["input.dataset"] = _default_dataset(spec)
    st.session_state["input.for_model"] = loaded.key
    default = _default_dataset(spec)
    name = st.selectbox("Dataset", names, names.index(default), format_func=DATASETS.get,
                        **_shared.linked("input.dataset", default, names, format_func=DATASETS.get, legacy="data"))
    ds = _cache.dataset(name, shapes=300, seed=7)
    cols = st.columns(2)
    cls = cols[0].selectbox("Class", range(ds.num_classes), 0, format_func=lambda c: ds.class_names[c],
                            **_shared.linked("input.class", 0, range(ds.num_classes), format_func=lambda c: ds.class_names[c], legacy="class"))
    indices = np.flatnonzero(ds.y == cls)
    pos = cols[1].number_input(f"Example (of {len(indices)})", 0, len(indices) - 1, 0, step=1,
                               **_shared.linked("input.index", 0, range(len(indices)), legacy="i"))
    i = int(indices[int(pos)])
    image_uint8 = np.rint(ds.x_nhwc[i] * 255).astype(np.uint8)
    prepared = _prepare(image_uint8, loaded)
    box = None
    if ds.boxes is not None:
        sy = prepared.display_hwc.shape[0] / image_uint8.shape[0]
        sx = prepared.display_hwc.shape[1] / image_uint8.shape[1]
        x0, y0, x1, y1 = ds.boxes[i]
        box = (int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy)))
    return Picked(
        prepared.image_hwc, prepared.display_hwc, f"{name}:{i}", f"{DATASETS[name]} #{i} (true class {ds.class_names[cls]})",
        true_class=int(cls) if ds.class_names == loaded.class_names else None, box=box, notes=prepared.notes,
    )


def _from_upload(loaded: models.LoadedModel) -> Picked | None:
    upload = st.file_uploader("An image (PNG, JPEG, GIF, BMP, TIFF, WebP…)", key="input.upload")
    if upload is not None:
        raw = upload.getvalue()
        try:
            image = images.load_image(raw, name=upload.name)
            st.session_state["input.uploaded"] = (hashlib.sha1(raw).hexdigest()[:12], upload.name, image)
        except ImageLoadError as err:
            st.error(str(err), icon="🖼️")
    if "input.uploaded" not in st.session_state:
        st.caption("Upload an image to explain it.")
        return None
    digest, filename, image = st.session_state["input.uploaded"]
    invert = False
    if loaded.spec.channels == 1:
        _shared.keep("input.invert", images.looks_inverted(image))
        invert = st.checkbox("Invert (dark ink on light paper → light on dark, like MNIST)", key="input.invert")
    prepared = _prepare(image, loaded, invert=invert)
    return Picked(prepared.image_hwc, prepared.display_hwc, f"upload:{digest}:{int(invert)}", filename, notes=prepared.notes)


def _from_drawing(loaded: models.LoadedModel) -> Picked | None:
    from pages import _canvas
    from vizcore import canvas

    st.caption("Draw a digit with the mouse (or a finger), large and centred.")
    rgba = _canvas.draw(key="input.canvas")
    if rgba is None or canvas.canvas_is_empty(rgba):
        return None
    digit = canvas.canvas_to_image(rgba)
    prepared = _prepare(digit, loaded)
    digest = hashlib.sha1(digit.tobytes()).hexdigest()[:12]
    return Picked(prepared.image_hwc, prepared.display_hwc, f"drawing:{digest}", "your drawing", notes=prepared.notes)


def input_picker(loaded: models.LoadedModel) -> Picked | None:
    """Widgets to choose the input; returns it preprocessed for the working model (or None yet)."""
    spec = loaded.spec
    sources = {"data": "Bundled data", "upload": "Upload an image"}
    if spec.channels == 1 and (spec.height or 28) <= 64:
        sources["draw"] = "Draw"
    source = st.radio("Input", list(sources), 0, format_func=sources.get, horizontal=True,
                      **_shared.linked("input.source", "data", list(sources), format_func=sources.get, legacy="input"))
    if source == "data":
        picked = _from_dataset(loaded)
    elif source == "upload":
        picked = _from_upload(loaded)
    else:
        picked = _from_drawing(loaded)
    if picked is not None:
        for note in picked.notes:
            st.caption(f"ℹ️ {note}")
    return picked


def picked_or_stop(loaded: models.LoadedModel, column, *, preview_px: int = 160) -> Picked:
    """The picker and a preview of the input in ``column``; stops the page until there is an input."""
    with column:
        picked = input_picker(loaded)
        if picked is None:
            st.stop()
        st.image(render.upscale(render.to_rgb(picked.display_hwc), max(1, preview_px // picked.display_hwc.shape[0])),
                 caption=picked.label)
    return picked
