"""Cached computations for the pages, and nothing else.

Pass the ``LoadedModel`` itself: it is hashed by its key. Results that hold large arrays live in
``st.cache_resource`` as read-only arrays, so a cache hit hands out the stored arrays without a copy;
small results live in ``st.cache_data``. Every cache is bounded by ``max_entries``.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

from vizcore import models, profile
from vizcore.data import archive, datasets, images
from vizcore.inspect import evaluation
from vizcore.models import graph, specs
from vizcore.precompute import store as precomputed_store
from vizcore.precompute.view import DataView

BY_KEY = {models.LoadedModel: lambda loaded: loaded.key}  # the key names the model, its weights included
LIMITS = profile.current()


def _released(_value) -> None:
    """A large entry left a cache: hand its memory back to the system soon (``on_release``)."""
    profile.release_memory_soon()


def _read_only(value):
    """``value`` with every array inside it (dict values, dataclass fields) made read-only."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, dict):
        for v in value.values():
            _read_only(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _read_only(getattr(value, f.name))
    return value


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def layer_frame(loaded: models.LoadedModel) -> pd.DataFrame:
    """The layer table as a DataFrame."""
    rows = graph.layer_table(loaded.model)
    return pd.DataFrame(
        {
            "layer": [r.path for r in rows],
            "type": [r.type for r in rows],
            "output shape": [str(r.output_shape) for r in rows],
            "parameters": [r.params for r in rows],
            "trainable": [r.trainable for r in rows],
        }
    )


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def summary(loaded: models.LoadedModel) -> models.summary.ModelSummary:
    return models.summary.summarize(loaded.model)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def diagram(loaded: models.LoadedModel, by_block: bool = False) -> str:
    """The Model page's Graphviz diagram, one node per layer or per block."""
    return models.summary.architecture_dot(loaded.model, by_block=by_block)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def layer_labels(loaded: models.LoadedModel) -> dict[str, str]:
    """{layer path: 'block · path'} for every layer of the model."""
    from vizcore.models import blocks

    return blocks.layer_labels(loaded.model)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def cam_choices(loaded: models.LoadedModel) -> tuple[tuple[str, ...], str]:
    """The layers a CAM method can explain (block outputs, convs not followed by BN) and the default."""
    from vizcore.models import blocks

    return blocks.cam_layers(loaded.model), blocks.default_target_layer(loaded.model)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def block_columns(loaded: models.LoadedModel) -> tuple[str, ...]:
    """The Activations overview's columns by block: block outputs, then the head's vectors."""
    from vizcore.inspect import activations as acts

    return acts.block_columns(loaded.model)


@st.cache_resource(show_spinner=False, max_entries=64, hash_funcs=BY_KEY)
def layer_kernel(loaded: models.LoadedModel, layer: str):
    """One conv layer's kernel (read-only arrays)."""
    from vizcore.inspect import kernels

    return _read_only(kernels.layer_kernel(loaded.model, layer))


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def global_kernel_bound(loaded: models.LoadedModel) -> float:
    from vizcore.inspect import kernels

    return kernels.global_kernel_bound(loaded.model)


@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=BY_KEY)
def probabilities(loaded: models.LoadedModel, input_key: str, _image_hwc) -> np.ndarray:
    """Class probabilities of one input (cached per model and input key; read-only)."""
    from vizcore.models import predict

    return _read_only(np.asarray(predict.image_probabilities(loaded.model, _image_hwc)))


@st.cache_resource(
    show_spinner="Computing every layer's feature maps…",
    max_entries=LIMITS.activation_entries,
    hash_funcs=BY_KEY,
    on_release=_released,
)  # 224x224: up to ~150 MB each once every layer is asked for
def activations(loaded: models.LoadedModel, input_key: str, _image_hwc):
    """The layers' outputs for one input (an ``ActivationStore``: read-only arrays); every layer in one pass
    when they fit in the profile's ``activations_at_once_mb``, else each request's missing layers in one pass."""
    from vizcore.inspect import activations as acts

    store = acts.ActivationStore(loaded.model, _image_hwc, all_at_once_mb=LIMITS.activations_at_once_mb)
    if store.all_at_once:
        store.select(tuple(store)[:1])  # every layer now, under this spinner
    return store


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def activation_order(loaded: models.LoadedModel) -> tuple[str, ...]:
    from vizcore.inspect import activations as acts

    return tuple(acts.activation_layers(loaded.model))


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def detail_layers(loaded: models.LoadedModel) -> list[tuple[str, str]]:
    from vizcore.inspect import convdetail

    return convdetail.detail_layers(loaded.model)


@st.cache_resource(show_spinner=False, max_entries=64, hash_funcs=BY_KEY)
def layer_output(loaded: models.LoadedModel, input_key: str, _image_hwc, layer: str) -> np.ndarray:
    from vizcore.inspect import activations as acts

    return _read_only(acts.get_activations(loaded.model, _image_hwc, [layer])[layer])


@st.cache_resource(show_spinner=False, max_entries=LIMITS.attribution_entries, hash_funcs=BY_KEY)
def attribution_map(
    loaded: models.LoadedModel, input_key: str, _image_hwc, label: str, target: int, layer: str | None, options: tuple
) -> np.ndarray:
    """One method's [0, 1] map (per model, input, method, target, layer and options; read-only).

    A method that runs the model more than once (Score-CAM, occlusion, ...) holds a heavy slot
    (``profile.heavy_work``); run it through ``_runner.run`` (``heavy=True``) to say so while it waits.
    """
    from vizcore import attribution

    info = attribution.METHOD_INFO[label]
    layer = layer if info.uses_layer else None
    heavy = info.cost_of(loaded.model, _image_hwc.shape[:2], layer=layer, **dict(options)).count > 1
    with profile.heavy_work() if heavy else contextlib.nullcontext():
        return _read_only(info.fn(loaded.model, _image_hwc, target=target, layer=layer, **dict(options)))


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8, on_release=_released)
def dataset(name: str, limit: int = 0, *, shapes: int = specs.SHAPES["n"], seed: int = specs.SHAPES["seed"]):
    """A dataset shared read-only by every session: bundled digits, generated shapes, or keras.datasets.

    ``limit`` caps a keras.datasets download (0: all); ``shapes`` and ``seed`` make the shapes.
    Downloads raise DatasetUnavailableError.
    """

    if name == "mnist_sample":
        return _read_only(datasets.load_mnist_sample())
    if name == "shapes":
        return _read_only(datasets.make_shapes(shapes, seed=seed))
    ds = datasets.load_keras_dataset(name, split="train")
    return _read_only(ds.subset(np.arange(min(limit, len(ds)))) if limit else ds)


@st.cache_resource(show_spinner="Measuring the filters on real images…", max_entries=64, hash_funcs=BY_KEY)
def real_activation(loaded: models.LoadedModel, layer: str, n: int = 200) -> np.ndarray:
    """Mean activation of each filter of ``layer`` over ``n`` bundled images in the model's own range (read-only)."""
    from vizcore import featurevis

    spec = loaded.spec
    ds = dataset("mnist_sample") if spec.channels == 1 else dataset("shapes", shapes=n, seed=5)
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    size = (spec.height or ds.image_shape[0], spec.width or ds.image_shape[1])
    batch = np.stack(
        [
            images.preprocess(ds.pixels(i), size=size, channels=spec.channels, mode=loaded.preprocess).image_hwc
            for i in idx
        ]
    )
    return _read_only(np.asarray(featurevis.real_activation(loaded.model, layer, batch)))


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=BY_KEY)
def embedding_layers(loaded: models.LoadedModel) -> tuple[tuple[str, ...], str]:
    """The layers the Dataset view can embed, and the default one."""
    from vizcore.inspect import embedding

    return embedding.embedding_layers(loaded.model), embedding.default_layer(loaded.model)


@st.cache_resource(show_spinner=False, max_entries=4, hash_funcs=BY_KEY, on_release=_released)
def dataview(loaded: models.LoadedModel, name: str, limit: int, _full: datasets.ImageDataset) -> DataView:
    """The Dataset view of ``loaded`` over at most ``limit`` images of the dataset ``name`` (shared by sessions:
    its prepared images and the last features it computed)."""
    return DataView.open(loaded, _full, limit, name=name)


@st.cache_resource(show_spinner="Loading the photos…", max_entries=1)
def sample_photos() -> datasets.ImageDataset:
    """The bundled colour photos as a dataset (one class per photo)."""
    return precomputed_store.sample_photos()


@st.cache_resource(show_spinner="Reading the ZIP…", max_entries=4)
def zip_dataset(digest: str, _data: bytes) -> datasets.ImageDataset:
    """An uploaded ZIP of class folders as a dataset, read once per server (``digest`` names its bytes)."""
    return archive.load_image_zip(_data, name="upload")


@st.cache_resource(show_spinner="Preparing the images for the model…", max_entries=4, hash_funcs=BY_KEY)
def prepared(loaded, ds_key: str, _x_nhwc) -> evaluation.Prepared:
    """A dataset's images in the model's size, channels and range (read-only), cached per model and ``ds_key``."""
    out = evaluation.prepare(loaded, _x_nhwc)
    out.x_nhwc.setflags(write=False)
    out.display_nhwc.setflags(write=False)
    return out


@st.cache_resource(show_spinner="Classifying the images…", max_entries=4, hash_funcs=BY_KEY)
def predicted(loaded, ds_key: str, _x_nhwc) -> np.ndarray:
    """The model's top class of every image (read-only)."""
    from vizcore.models import predict

    out = np.argmax(predict.probabilities(loaded.model, _x_nhwc), axis=1)
    out.setflags(write=False)
    return out


@st.cache_resource(show_spinner="Reading the concept images…", max_entries=4, hash_funcs=BY_KEY)
def concept_zip(loaded, digest: str, _data: bytes):
    """Concept images from a ZIP, prepared for the model: (x, display, name, notes)."""
    ds = archive.load_images_zip(_data, name="concept")
    ready = evaluation.prepare(loaded, ds.x_nhwc)
    return ready.x_nhwc, ready.display_nhwc, ds.class_names[0], ds.notes


@st.cache_resource(show_spinner="Reading the concept images…", max_entries=4, hash_funcs=BY_KEY)
def concept_files(loaded, digest: str, _raws: tuple[tuple[str, bytes], ...]):
    """Uploaded concept images, prepared for the model: (x, display)."""
    ready = [loaded.prepare(images.load_image(raw, name=name)) for name, raw in _raws]
    return np.stack([p.image_hwc for p in ready]), np.stack([p.display_hwc for p in ready])


@st.cache_data(show_spinner=False, max_entries=8)
def snapshots(path: str, mtime: float):
    """What a training recorded (``mtime`` keys a rewritten file apart)."""
    from vizcore.training import replay

    return replay.load_snapshots(path)
