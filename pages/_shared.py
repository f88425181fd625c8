"""What every page shares: the working model in session state, cached loaders, the sidebar.

The only module with ``st.cache_*`` wrappers. Models from ``st.cache_resource`` are shared by
every session and must never be mutated; a model a person uploads stays in their own session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from vizcore import models
from vizcore.errors import ConvLensError

WORKING = "working_model"
SESSION_MODELS = "session_models"  # key -> LoadedModel: uploaded, built or trained in this session
MAX_SESSION_MODELS = 4
SESSION_KINDS = ("upload", "built", "trained")


@dataclass(frozen=True)
class Choice:
    """Which model is the working model: kind is bundled, preset, app, or a session kind
    (upload, built, trained) whose model lives in this session's state."""

    kind: str
    name: str
    weights: str | None = None


def default_choice() -> Choice:
    bundled = models.list_bundled()
    if "mnist_cnn" in bundled:
        return Choice("bundled", "mnist_cnn")
    return Choice("bundled", bundled[0]) if bundled else Choice("preset", "mnist_cnn")


def init_state() -> None:
    """Initialise session state once per session."""
    st.session_state.setdefault(WORKING, default_choice())
    st.session_state.setdefault(SESSION_MODELS, {})


@st.cache_resource(show_spinner="Loading the bundled model…")
def _bundled(name: str) -> models.LoadedModel:
    return models.open_bundled(name)


@st.cache_resource(show_spinner="Building the preset…")
def _preset(name: str) -> models.LoadedModel:
    return models.open_preset(name)


@st.cache_resource(show_spinner="Building the network (ImageNet weights are downloaded once)…")
def _application(name: str, weights: str | None) -> models.LoadedModel:
    return models.open_application(name, weights=weights)


def open_choice(choice: Choice) -> models.LoadedModel:
    """The LoadedModel behind a choice (cached; uploads come from this session's state)."""
    if choice.kind == "bundled":
        return _bundled(choice.name)
    if choice.kind == "preset":
        return _preset(choice.name)
    if choice.kind == "app":
        return _application(choice.name, choice.weights)
    if choice.kind in SESSION_KINDS and choice.name in st.session_state.get(SESSION_MODELS, {}):
        return st.session_state[SESSION_MODELS][choice.name]
    raise KeyError(f"No model for {choice}")


def set_working(choice: Choice) -> None:
    st.session_state[WORKING] = choice


def add_session_model(kind: str, loaded: models.LoadedModel) -> Choice:
    """Keep a model in this session only (bounded: the oldest ones that are not working go)."""
    store = st.session_state[SESSION_MODELS]
    store[loaded.key] = loaded
    working = st.session_state.get(WORKING)
    for key in list(store)[:-MAX_SESSION_MODELS]:
        if working is None or key != working.name:
            del store[key]
    return Choice(kind, loaded.key)


def add_upload(data: bytes, filename: str) -> Choice:
    """Load an uploaded file into this session and return its choice (raises ModelLoadError)."""
    key = "upload:" + hashlib.sha1(data).hexdigest()[:12]
    store = st.session_state[SESSION_MODELS]
    if key in store:
        return Choice("upload", key)
    return add_session_model("upload", models.open_upload(data, filename, key))


def working_model() -> models.LoadedModel:
    """The session's working model; falls back to the default when it cannot be opened."""
    init_state()
    choice = st.session_state[WORKING]
    try:
        return open_choice(choice)
    except (ConvLensError, KeyError) as err:
        fallback = default_choice()
        st.warning(f"The model chosen before could not be opened ({err}); using the default model.")
        set_working(fallback)
        return open_choice(fallback)


@st.cache_data(show_spinner=False, max_entries=32)
def layer_frame(_model, key: str) -> pd.DataFrame:
    """The layer table as a DataFrame (cached per model key)."""
    rows = models.layer_table(_model)
    return pd.DataFrame(
        {
            "layer": [r.path for r in rows],
            "type": [r.type for r in rows],
            "output shape": [str(r.output_shape) for r in rows],
            "parameters": [r.params for r in rows],
            "trainable": [r.trainable for r in rows],
        }
    )


@st.cache_data(show_spinner=False, max_entries=32)
def summary(_model, key: str) -> models.ModelSummary:
    return models.summarize(_model)


@st.cache_data(show_spinner=False, max_entries=32)
def diagram(_model, key: str) -> str:
    return models.architecture_dot(_model)


def sidebar(loaded: models.LoadedModel) -> None:
    """The working model, shown on every page."""
    spec = loaded.spec
    size = f"{spec.height or 'any'}×{spec.width or 'any'}×{spec.channels}"
    st.sidebar.markdown(f"**Working model**  \n{loaded.label}  \n`{size}` · {len(loaded.class_names)} classes")


def keep(key: str, default) -> None:
    """Let a widget's value survive page switches (Streamlit drops the state of widgets not shown).

    Call before creating the widget with ``key=key`` and without a ``value``/``index`` argument.
    """
    store = f"_kept.{key}"
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(store, default)
    st.session_state[store] = st.session_state[key]


@st.cache_data(show_spinner=False, max_entries=64)
def layer_kernel(_model, key: str, layer: str):
    """One conv layer's kernel (cached per model key and layer)."""
    from vizcore import kernels

    return kernels.layer_kernel(_model, layer)


@st.cache_data(show_spinner=False, max_entries=32)
def global_kernel_bound(_model, key: str) -> float:
    from vizcore import kernels

    return kernels.global_kernel_bound(_model)


def kernel_snapshot_picker(loaded: models.LoadedModel, lk, *, key: str):
    """For a model trained in this session: an epoch slider over its recorded kernels (or None)."""
    return None


@st.cache_data(show_spinner=False, max_entries=256)
def probabilities(_model, key: str, input_key: str, _image_hwc):
    """Class probabilities of one input (cached per model and input)."""
    from vizcore import attribution

    return attribution.predict_scores(_model, _image_hwc)


@st.cache_data(show_spinner="Computing every layer's feature maps…", max_entries=64)
def activations(_model, key: str, input_key: str, _image_hwc):
    """All layers' outputs for one input, in one forward pass (cached per model and input)."""
    from vizcore import activations as acts

    return acts.get_activations(_model, _image_hwc, acts.activation_layers(_model))


@st.cache_data(show_spinner=False, max_entries=32)
def activation_order(_model, key: str) -> tuple[str, ...]:
    from vizcore import activations as acts

    return tuple(acts.activation_layers(_model))


def activation_snapshot_picker(loaded: models.LoadedModel, picked, acts: dict, *, key: str):
    """For a model trained in this session: replay recorded feature maps (returns acts, label)."""
    return acts, None


@st.cache_data(show_spinner=False, max_entries=32)
def detail_layers(_model, key: str) -> list[tuple[str, str]]:
    from vizcore import convdetail

    return convdetail.detail_layers(_model)


@st.cache_data(show_spinner=False, max_entries=64)
def layer_output(_model, key: str, input_key: str, _image_hwc, layer: str):
    from vizcore import activations as acts

    return acts.get_activations(_model, _image_hwc, [layer])[layer]


# --------------------------------------------------------------------------- attribution


def option_widgets(label: str, opts) -> dict:
    """Widgets for a method's extra options (from METHOD_INFO); returns {name: value}."""
    values = {}
    for o in opts:
        key = f"attr.opt.{label}.{o.name}"
        if o.kind == "choice":
            values[o.name] = st.selectbox(o.name, o.choices, index=o.choices.index(o.default), help=o.help, key=key)
        elif o.kind == "int" and o.default is None:
            on = st.checkbox(f"limit {o.name}", help=o.help, key=key + ".on")
            values[o.name] = st.number_input(o.name, int(o.min or 1), None, 64, key=key) if on else None
        elif o.kind == "int":
            values[o.name] = st.number_input(o.name, int(o.min or 0), int(o.max) if o.max else None, int(o.default), help=o.help, key=key)
        else:
            values[o.name] = st.slider(o.name, float(o.min or 0.0), float(o.max or 1.0), float(o.default), help=o.help, key=key)
    return values


def method_costs(_model, key: str, layer: str, size_hw, methods, options: dict) -> list[str]:
    """Forward passes that the expensive methods will make, said before running them."""
    from vizcore import attribution

    out = []
    if "Score-CAM" in methods:
        n = attribution.scorecam_cost(_model, layer, options.get("Score-CAM", {}).get("max_channels"))
        out.append(f"Score-CAM {n:,} forward passes")
    if "Occlusion" in methods:
        o = options.get("Occlusion", {})
        out.append(f"Occlusion {attribution.occlusion_cost(size_hw[0], size_hw[1], o.get('patch'), o.get('stride')):,} forward passes")
    if "Integrated Gradients" in methods:
        out.append(f"Integrated Gradients {options.get('Integrated Gradients', {}).get('steps', 32)} gradients")
    return out


@st.cache_data(show_spinner=False, max_entries=512)
def attribution_map(_model, key: str, input_key: str, _image_hwc, label: str, target: int, layer: str | None, options: tuple):
    """One method's [0, 1] map (cached per model, input, method, target, layer and options)."""
    from vizcore import attribution

    info = attribution.METHOD_INFO[label]
    return info.fn(_model, _image_hwc, target=target, layer=layer if info.uses_layer else None, **dict(options))


def layer_sweep(_model, key: str, input_key: str, _image_hwc, display_hwc, target: int, cmap: str, alpha: float, *, limit: int = 12):
    """Grad-CAM of each conv layer (at most ``limit``, evenly spaced) as one strip of overlays."""
    from vizcore import render

    convs = summary(_model, key).conv_layers
    picks = [convs[i] for i in np.unique(np.linspace(0, len(convs) - 1, min(limit, len(convs))).round().astype(int))]
    bar = st.progress(0.0, text="Grad-CAM per layer…")
    tiles = []
    side = max(96, display_hwc.shape[0])
    for i, layer in enumerate(picks):
        heat = attribution_map(_model, key, input_key, _image_hwc, "Grad-CAM", target, layer, ())
        tiles.append(render.resize(render.overlay(display_hwc, heat, cmap=cmap, alpha=alpha), (side, side), smooth=False))
        bar.progress((i + 1) / len(picks), text=f"Grad-CAM on {layer}")
    bar.empty()
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4), picks
