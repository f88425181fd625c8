"""The input range and class names a person gives the working model, applied on every page.

A model file often does not say which values it expects or what its outputs are called. The
Model page asks (``choices``); the answer is kept per model in session state, and ``apply``
(called by ``_working.working_model``) hands every page the working model carrying it: a
``dataclasses.replace`` copy with a key of its own, so no cached result of the old range is reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import streamlit as st

from pages import _cache
from vizcore import models
from vizcore.data import datasets, images
from vizcore.models import hints
from vizcore.present import figures, render

STATE = "model_options"  # model key -> Options
_FOR = "model.options_for"
_ERROR = "model.options_error"
_SAYS = ("bundled:", "app:", "preset:", "built:", "trained:")  # kinds whose range and names are known


@dataclasses.dataclass(frozen=True)
class Options:
    """What the person chose for one model."""

    preprocess: str  # a vizcore.data.images.PREPROCESS_MODES key
    class_names: tuple[str, ...]


def modes_for(channels: int) -> list[str]:
    """The input ranges a model with ``channels`` input channels can take ('caffe', 'torch': 3 only)."""
    return [m for m in images.PREPROCESS_MODES if channels == 3 or m not in ("caffe", "torch")]


def apply(loaded: models.LoadedModel) -> models.LoadedModel:
    """The model carrying this session's choices for it (itself when there are none)."""
    opts = st.session_state.get(STATE, {}).get(loaded.key)
    if opts is None or (opts.preprocess, opts.class_names) == (loaded.preprocess, loaded.class_names):
        return loaded
    if len(opts.class_names) != len(loaded.class_names) or opts.preprocess not in modes_for(loaded.spec.channels):
        return loaded
    digest = hashlib.sha1(json.dumps([opts.preprocess, list(opts.class_names)]).encode()).hexdigest()[:10]
    return dataclasses.replace(
        loaded, preprocess=opts.preprocess, class_names=opts.class_names, key=f"{loaded.key}~{digest}"
    )


def needs_asking(base: models.LoadedModel) -> bool:
    """Whether nothing says the model's range and names: an uploaded file with numbered classes only."""
    generic = tuple(f"class {i}" for i in range(len(base.class_names)))
    return not base.key.startswith(_SAYS) and not base.card and base.class_names == generic


def _store(
    base: models.LoadedModel, *, preprocess: str | None = None, class_names: tuple[str, ...] | None = None
) -> None:
    store = st.session_state.setdefault(STATE, {})
    current = store.get(base.key, Options(base.preprocess, base.class_names))
    opts = Options(preprocess or current.preprocess, class_names or current.class_names)
    if opts == Options(base.preprocess, base.class_names):
        store.pop(base.key, None)
    else:
        store[base.key] = opts


def _on_range(base: models.LoadedModel) -> None:
    _store(base, preprocess=st.session_state["model.range"])


def _on_names(base: models.LoadedModel) -> None:
    names = hints.parse_class_names(st.session_state["model.class_text"])
    if len(names) != len(base.class_names):
        message = f"{len(names)} class name(s) for {len(base.class_names)} outputs: give one name per output"
        st.session_state[_ERROR] = message + ", in the order of the outputs."
        return
    st.session_state.pop(_ERROR, None)
    _store(base, class_names=names)


def _on_file(base: models.LoadedModel) -> None:
    upload = st.session_state.get("model.class_file")
    if upload is None:
        return
    st.session_state["model.class_text"] = "\n".join(hints.parse_class_names(upload.getvalue()))
    _on_names(base)


def choices(base: models.LoadedModel, loaded: models.LoadedModel) -> None:
    """Widgets for the input range and class names of ``base``; ``loaded`` is it with the choices applied."""
    spec = base.spec
    if (
        st.session_state.get(_FOR) != base.key
        or "model.range" not in st.session_state
        or "model.class_text" not in st.session_state
    ):
        st.session_state["model.range"] = loaded.preprocess
        st.session_state["model.class_text"] = "\n".join(loaded.class_names)
        st.session_state.pop(_ERROR, None)
    st.session_state[_FOR] = base.key

    hint = hints.input_hint(base.model)
    known = not needs_asking(base)
    col_range, col_names = st.columns(2)
    with col_range:
        modes = modes_for(spec.channels)
        st.selectbox(
            "Input range",
            modes,
            format_func=lambda m: f"{m}: {images.PREPROCESS_MODES[m]}",
            key="model.range",
            on_change=_on_range,
            args=(base,),
            help="How pixel values 0..255 are mapped before the model sees them.",
        )
        if hint == "raw":
            st.caption(
                "💡 This model has a `Rescaling` layer before its first convolution: "
                "it most likely takes raw 0..255 pixels, so `raw` was chosen when it was loaded."
            )
        elif known:
            st.caption(f"The model's own range is `{base.preprocess}`.")
        else:
            st.caption(
                "The file does not say; check the preview: a wrong range gives confident nonsense or flat predictions."
            )
    with col_names:
        st.text_area(
            f"Class names ({len(base.class_names)}; one per line, or comma separated)",
            key="model.class_text",
            on_change=_on_names,
            args=(base,),
            height=120,
        )
        st.file_uploader(
            "…or a .txt (Teachable Machine's labels.txt works)",
            type=["txt"],
            key="model.class_file",
            on_change=_on_file,
            args=(base,),
        )
        if _ERROR in st.session_state:
            st.error(st.session_state[_ERROR], icon="🏷️")
    if base.key in st.session_state.get(STATE, {}):
        if st.button("Back to the model's own range and names", key="model.options_reset"):
            st.session_state[STATE].pop(base.key, None)
            st.session_state.pop(_FOR, None)
            st.rerun()


def preview(loaded: models.LoadedModel) -> None:
    """One image as the model sees it (preprocess, then deprocess) with its top predictions."""
    spec = loaded.spec
    if spec.channels == 3:
        photos = images.load_sample_photos()
        names = list(photos)
        name = st.selectbox(
            "Preview image", names, index=names.index("chelsea") if "chelsea" in names else 0, key="model.preview_photo"
        )
        image = photos[name]
    else:
        digits = datasets.load_mnist_sample()
        name = "digit 7"
        image = np.rint(digits.x_nhwc[int(np.flatnonzero(digits.y == 7)[0])] * 255).astype(np.uint8)
    prepared = loaded.prepare(image)  # fitted as on every page (Teachable Machine: centre crop)
    seen = images.deprocess(prepared.image_hwc, loaded.preprocess)
    probs = _cache.probabilities(loaded, f"preview:{name}", prepared.image_hwc)
    col_image, col_probs = st.columns([1, 2])
    lo, hi = float(prepared.image_hwc.min()), float(prepared.image_hwc.max())
    col_image.image(
        render.upscale(render.to_rgb(seen), max(1, 160 // seen.shape[0])),
        caption=f"{name}, as the model sees it: values {lo:.3g} to {hi:.3g} (`{loaded.preprocess}`)",
    )
    col_probs.plotly_chart(figures.probabilities_figure(loaded.class_names, probs), key="model.preview_probs")
