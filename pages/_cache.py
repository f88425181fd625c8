"""Cached computations for the pages (``st.cache_data``, the model passed as ``_model`` plus its key).

Split from ``_shared.py`` (session state, the working model, links) only to keep both short.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from vizcore import models


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


@st.cache_data(show_spinner=False, max_entries=64)
def layer_kernel(_model, key: str, layer: str):
    """One conv layer's kernel (cached per model key and layer)."""
    from vizcore import kernels

    return kernels.layer_kernel(_model, layer)


@st.cache_data(show_spinner=False, max_entries=32)
def global_kernel_bound(_model, key: str) -> float:
    from vizcore import kernels

    return kernels.global_kernel_bound(_model)




@st.cache_data(show_spinner=False, max_entries=256)
def probabilities(_model, key: str, input_key: str, _image_hwc):
    """Class probabilities of one input (cached per model and input)."""
    from vizcore import attribution

    return attribution.predict_probabilities(_model, _image_hwc)


@st.cache_data(show_spinner="Computing every layer's feature maps…", max_entries=8)  # a 224x224 network: ~100 MB each
def activations(_model, key: str, input_key: str, _image_hwc):
    """All layers' outputs for one input, in one forward pass (cached per model and input)."""
    from vizcore import activations as acts

    return acts.get_activations(_model, _image_hwc, acts.activation_layers(_model))


@st.cache_data(show_spinner=False, max_entries=32)
def activation_order(_model, key: str) -> tuple[str, ...]:
    from vizcore import activations as acts

    return tuple(acts.activation_layers(_model))




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


@st.cache_data(show_spinner=False, max_entries=512)
def attribution_map(_model, key: str, input_key: str, _image_hwc, label: str, target: int, layer: str | None, options: tuple):
    """One method's [0, 1] map (cached per model, input, method, target, layer and options)."""
    from vizcore import attribution

    info = attribution.METHOD_INFO[label]
    return info.fn(_model, _image_hwc, target=target, layer=layer if info.uses_layer else None, **dict(options))


def layer_sweep(_model, key: str, input_key: str, _image_hwc, display_hwc, target: int, cmap: str, alpha: float, *, limit: int = 12):
    """Grad-CAM of the CAM layers (block outputs; at most ``limit``, evenly spaced) as one strip of overlays."""
    from vizcore import render

    from vizcore import blocks

    picks = blocks.sweep_layers(_model, limit)
    bar = st.progress(0.0, text="Grad-CAM per layer…")
    tiles = []
    side = max(96, display_hwc.shape[0])
    for i, layer in enumerate(picks):
        heat = attribution_map(_model, key, input_key, _image_hwc, "Grad-CAM", target, layer, ())
        tiles.append(render.resize(render.overlay(display_hwc, heat, cmap=cmap, alpha=alpha), (side, side), smooth=False))
        bar.progress((i + 1) / len(picks), text=f"Grad-CAM on {layer}")
    bar.empty()
    return render.montage(np.stack(tiles), columns=len(tiles), pad=4), picks


# --------------------------------------------------------------------------- training


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8)
def training_data(name: str, limit: int = 0):
    """A training dataset, shared read-only by every session (downloads raise DatasetUnavailableError)."""
    from vizcore import data

    if name == "mnist_sample":
        return data.load_mnist_sample()
    if name == "shapes":
        return data.make_shapes(3000, seed=1)
    ds = data.load_keras_dataset(name, split="train")
    return ds.subset(np.arange(min(limit, len(ds)))) if limit else ds


# --------------------------------------------------------------------------- filter visualization


class _Bounded(dict):
    """A dict that forgets its oldest entries beyond ``limit`` (results cached across visits)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]


@st.cache_resource
def featurevis_store() -> dict:
    """Finished filter visualizations by (model, objective, layer, targets, settings, seed)."""
    return _Bounded(32)


@st.cache_data(show_spinner="Measuring the filters on real images…", max_entries=64)
def real_activation(_model, key: str, layer: str, preprocess: str = "unit", n: int = 200):
    """Mean activation of each filter of ``layer`` over ``n`` bundled images in the model's own range."""
    from vizcore import data, featurevis, graph

    spec = graph.input_spec(_model)
    ds = data.load_mnist_sample() if spec.channels == 1 else data.make_shapes(n, seed=5)
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    size = (spec.height or ds.image_shape[0], spec.width or ds.image_shape[1])
    batch = np.stack([data.preprocess(np.rint(ds.x_nhwc[i] * 255).astype(np.uint8), size=size, channels=spec.channels,
                                      mode=preprocess).image_hwc
                      for i in idx])
    return featurevis.real_activation(_model, layer, batch)
