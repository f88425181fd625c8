"""The input picker shared by the explorer pages: bundled data, sample photos, uploads, a webcam snapshot, a drawing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from pages import _cache, _runner, _state, _working
from vizcore import models
from vizcore.data import images
from vizcore.errors import ImageLoadError
from vizcore.models import graph
from vizcore.present import render

DATASETS = {"mnist_sample": "MNIST digits (bundled)", "shapes": "Shapes (generated)"}
SOURCE_LABELS = {
    "data": "Bundled data",
    "photos": "Sample photos",
    "upload": "Upload images",
    "camera": "Camera",
    "draw": "Draw",
}


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


PHOTO_SIDE = 96  # a colour model with inputs this large or larger (Teachable Machine, ImageNet: 224) takes photos


def photo_model(spec: graph.InputSpec) -> bool:
    """Whether a model takes photos (colour, at least PHOTO_SIDE px): its pickers open on the sample photos."""
    return spec.channels == 3 and min(spec.height or PHOTO_SIDE, spec.width or PHOTO_SIDE) >= PHOTO_SIDE


def _default_dataset(spec: graph.InputSpec) -> str:
    return "mnist_sample" if spec.channels == 1 else "shapes"


def _prepare(image_uint8: np.ndarray, loaded: models.LoadedModel, *, invert: bool = False) -> images.Preprocessed:
    return loaded.prepare(image_uint8, invert=invert)


def _from_dataset(loaded: models.LoadedModel) -> Picked | None:
    spec = loaded.spec
    names = list(DATASETS)
    default = _default_dataset(spec)
    _state.reset_when("input.dataset", loaded.key, to=default)  # a new model: its own kind of data
    name = st.selectbox(
        "Dataset",
        names,
        names.index(default),
        format_func=DATASETS.get,
        **_state.linked("input.dataset", default, names, format_func=DATASETS.get, legacy="data"),
    )
    ds = _cache.dataset(name, shapes=300, seed=7)
    cols = st.columns(2)
    cls = cols[0].selectbox(
        "Class",
        range(ds.num_classes),
        0,
        format_func=lambda c: ds.class_names[c],
        **_state.linked(
            "input.class", 0, range(ds.num_classes), format_func=lambda c: ds.class_names[c], legacy="class"
        ),
    )
    indices = np.flatnonzero(ds.y == cls)
    pos = cols[1].number_input(
        f"Example (of {len(indices)})",
        0,
        len(indices) - 1,
        0,
        step=1,
        **_state.linked("input.index", 0, range(len(indices)), legacy="i"),
    )
    i = int(indices[int(pos)])
    image_uint8 = ds.pixels(i)
    prepared = _prepare(image_uint8, loaded)
    box = None
    if ds.boxes is not None:
        sy = prepared.display_hwc.shape[0] / image_uint8.shape[0]
        sx = prepared.display_hwc.shape[1] / image_uint8.shape[1]
        x0, y0, x1, y1 = ds.boxes[i]
        box = (int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy)))
    return Picked(
        prepared.image_hwc,
        prepared.display_hwc,
        f"{name}:{i}",
        f"{DATASETS[name]} #{i} (true class {ds.class_names[cls]})",
        true_class=int(cls) if ds.class_names == loaded.class_names else None,
        box=box,
        notes=prepared.notes,
    )


MAX_UPLOADS = 12  # images kept in this session's gallery; the oldest go first


@dataclass(frozen=True, eq=False)
class Upload:
    """An image a person uploaded, kept in this session's gallery."""

    name: str
    image: np.ndarray  # uint8, as uploaded


def _invert_choice(image: np.ndarray, loaded: models.LoadedModel) -> bool:
    """For a digit model, whether to invert a photo (dark ink on light paper); False otherwise."""
    if loaded.spec.channels != 1:
        return False
    _state.keep("input.invert", images.looks_inverted(image))
    return st.checkbox("Invert (dark ink on light paper → light on dark, like MNIST)", key="input.invert")


def _from_upload(loaded: models.LoadedModel) -> Picked | None:
    files = st.file_uploader(
        "Images (PNG, JPEG, GIF, BMP, TIFF, WebP…; several at once)",
        accept_multiple_files=True,
        key="input.upload",
        max_upload_size=_working.LIMITS.upload_mb,
    )
    gallery: dict[str, Upload] = st.session_state.setdefault("input.uploads", {})  # by digest, oldest first
    if files and len(files) > MAX_UPLOADS:
        st.warning(f"{len(files)} images uploaded; the first {MAX_UPLOADS} are used.", icon="🖼️")
    newest, current = None, set()
    for upload in (files or [])[:MAX_UPLOADS]:
        raw = upload.getvalue()
        digest = hashlib.sha1(raw).hexdigest()[:12]
        current.add(digest)
        if digest in gallery:
            continue
        try:
            gallery[digest] = Upload(upload.name, images.load_image(raw, name=upload.name))
            newest = digest
        except ImageLoadError as err:
            st.error(str(err), icon="🖼️")
    for digest in [d for d in gallery if d not in current][: max(0, len(gallery) - MAX_UPLOADS)]:
        del gallery[digest]  # the oldest images no longer in the uploader
    if not gallery:
        st.caption("Upload one or more images to explain them.")
        return None
    digests = list(gallery)
    _state.keep("input.upload_pick", digests[-1], options=digests)
    if newest is not None:
        st.session_state["input.upload_pick"] = newest  # a new upload is shown at once
    if len(digests) > 1:
        st.image(
            [render.resize(render.to_rgb(_thumbnail(gallery[d].image)), (56, 56)) for d in digests],
            caption=[gallery[d].name for d in digests],
            width=56,
        )
    digest = st.selectbox(
        f"Image (of {len(digests)})", digests, format_func=lambda d: gallery[d].name, key="input.upload_pick"
    )
    filename, image = gallery[digest].name, gallery[digest].image
    invert = _invert_choice(image, loaded)
    prepared = _prepare(image, loaded, invert=invert)
    return Picked(
        prepared.image_hwc, prepared.display_hwc, f"upload:{digest}:{int(invert)}", filename, notes=prepared.notes
    )


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """The image's centred square, for the gallery."""
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]


def camera_shot(raw: bytes) -> tuple[str, np.ndarray]:
    """A webcam snapshot's JPEG bytes -> (digest, uint8 image); raises ImageLoadError."""
    return hashlib.sha1(raw).hexdigest()[:12], images.load_image(raw, name="the camera snapshot")


def _from_camera(loaded: models.LoadedModel) -> Picked | None:
    shot = st.camera_input("Take a photo with your webcam", key="input.camera")
    if shot is not None:
        try:
            _runner.keep("input.camera", "last", camera_shot(shot.getvalue()))  # the last shot stays when cleared
        except ImageLoadError as err:
            st.error(str(err), icon="📷")
    last = _runner.kept("input.camera", "last")
    if last is None:
        st.caption("Allow the browser to use the camera, then take a photo.")
        return None
    digest, image = last
    invert = _invert_choice(image, loaded)
    prepared = _prepare(image, loaded, invert=invert)
    return Picked(
        prepared.image_hwc,
        prepared.display_hwc,
        f"camera:{digest}:{int(invert)}",
        "your camera snapshot",
        notes=prepared.notes,
    )


def _from_photos(loaded: models.LoadedModel) -> Picked | None:
    photos = images.load_sample_photos()
    names = list(photos)
    kept = _state.keep("input.photo", "chelsea" if "chelsea" in names else names[0], param="photo", options=names)
    st.session_state["input.photo"] = kept  # as the source: the same photo on every page
    name = st.selectbox("Photo", names, key="input.photo", help="CC0 / public-domain photos from scikit-image")
    prepared = _prepare(photos[name], loaded)
    return Picked(
        prepared.image_hwc, prepared.display_hwc, f"photo:{name}", f"sample photo: {name}", notes=prepared.notes
    )


def _from_drawing(loaded: models.LoadedModel) -> Picked | None:
    from pages import _canvas
    from vizcore.data import canvas

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
    sources = {"data": _from_dataset}
    if spec.channels == 3:
        sources["photos"] = _from_photos
    sources |= {"upload": _from_upload, "camera": _from_camera}
    if spec.channels == 1 and (spec.height or 28) <= 64:
        sources["draw"] = _from_drawing
    default = "photos" if photo_model(spec) else "data"
    _state.reset_when("input.source", loaded.key)  # another model: its own kind of input
    kept = _state.keep("input.source", default, param="input", options=list(sources))
    st.session_state["input.source"] = kept  # on another page the radio is another widget, which would start afresh
    source = st.radio("Input", list(sources), format_func=SOURCE_LABELS.get, horizontal=True, key="input.source")
    picked = sources[source](loaded)
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
        st.image(
            render.upscale(render.to_rgb(picked.display_hwc), max(1, preview_px // picked.display_hwc.shape[0])),
            caption=picked.label,
        )
    return picked
