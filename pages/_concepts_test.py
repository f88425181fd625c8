"""Test a concept (TCAV): concept images the user brings against random images of the dataset, per class and layer."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from pages import _cache, _concepts_parts, _layers, _state, _working
from pages._concepts_parts import Images
from vizcore import concepts
from vizcore.errors import ConvLensError
from vizcore.models import blocks
from vizcore.present import render

SOURCES = {"zip": "A ZIP of concept images", "files": "Concept images (upload)", "class": "A class of this dataset"}
SWEEP_LAYERS = 12


def _concept(loaded, data: Images):
    """(x, display, name, dataset rows used by the concept, key) of the concept images; None until there are some."""
    kind = st.radio(
        "Concept images",
        list(SOURCES),
        format_func=SOURCES.get,
        horizontal=True,
        **_state.linked("concepts.concept_source", "zip", list(SOURCES), format_func=SOURCES.get),
    )
    none = np.zeros(0, np.int64)
    if kind == "class":
        names = loaded.class_names
        c1, c2 = st.columns(2)
        cls = c1.selectbox(
            "Concept class", range(len(names)), format_func=lambda i: names[i], key="concepts.concept_class"
        )
        n = int(c2.number_input("Concept images from it", 5, 500, 50, key="concepts.concept_n"))
        rows = np.flatnonzero(data.labels == cls)[:n]
        return data.x[rows], data.display[rows], names[cls], rows, f"class:{data.key}:{cls}:{n}"
    if kind == "zip":
        upload = st.file_uploader(
            "ZIP of images showing the concept (any folders)",
            type=["zip"],
            key="concepts.concept_zip",
            max_upload_size=_working.LIMITS.upload_mb,
        )
        if upload is None:
            st.info("Upload a ZIP of images of the concept (striped/1.jpg, …): 20 to 100 images work well.")
            return None
        raw = upload.getvalue()
        digest = hashlib.sha1(raw).hexdigest()[:12]
        x, display, name, notes = _cache.concept_zip(loaded, digest, raw)
        if notes:
            st.caption("ZIP: " + "; ".join(notes))
        return x, display, name, none, f"zip:{digest}"
    files = st.file_uploader(
        "Images showing the concept",
        accept_multiple_files=True,
        key="concepts.concept_files",
        max_upload_size=_working.LIMITS.upload_mb,
    )
    if not files:
        st.info("Upload images of the concept: 20 to 100 work well.")
        return None
    raws = tuple((f.name, f.getvalue()) for f in files)
    digest = hashlib.sha1(b"".join(raw for _, raw in raws)).hexdigest()[:12]
    x, display = _cache.concept_files(loaded, digest, raws)
    return x, display, "concept", none, f"files:{digest}"


def _sweep_layers(loaded) -> tuple[str, ...]:
    outputs = blocks.block_outputs(loaded.model) or _cache.cam_choices(loaded)[0]
    if len(outputs) <= SWEEP_LAYERS:
        return tuple(outputs)
    return tuple(outputs[round(i * (len(outputs) - 1) / (SWEEP_LAYERS - 1))] for i in range(SWEEP_LAYERS))


def show(loaded, data: Images) -> None:
    """The Test view for the working model over ``data``."""
    try:
        concept = _concept(loaded, data)
    except ConvLensError as err:
        st.error(str(err))
        return
    if concept is None:
        return
    xc, display_c, concept_name, used, concept_key = concept
    st.image(
        render.montage(
            np.stack([render.resize(render.to_rgb(d), (56, 56)) for d in display_c[:24]]), columns=12, pad=2
        ),
        caption=f"{len(xc)} concept images ('{concept_name}'){', the first 24' if len(xc) > 24 else ''}",
    )
    names = loaded.class_names
    c1, c2, c3, c4 = st.columns(4)
    n_random = int(c1.number_input("Random images from the dataset", 10, 2000, 100, key="concepts.random"))
    per_class = int(c2.number_input("Images per class", 1, 1000, 50, key="concepts.per_class"))
    runs = int(c3.slider("Runs (a fresh random set each)", 2, 30, 10, key="concepts.runs"))
    seed = int(c4.number_input("Seed", 0, 10_000, 0, key="concepts.seed"))
    pool = np.setdiff1d(np.arange(len(data.x)), used)
    xr = data.x[np.sort(np.random.default_rng(seed).choice(pool, min(n_random, len(pool)), replace=False))]
    choices, default = _cache.cam_choices(loaded)
    _state.reset_when("concepts.tcav_layer", loaded.key)  # another model: its own default
    layer = _layers.select(loaded, st, "Layer", choices, key="concepts.tcav_layer", default=default)
    classes = st.multiselect(
        "Classes",
        range(len(names)),
        list(range(min(10, len(names)))),
        format_func=lambda i: names[i],
        key="concepts.classes",
    )
    sets = {c: np.setdiff1d(np.flatnonzero(data.labels == c), used)[:per_class] for c in classes}
    empty = [names[c] for c, rows in sets.items() if not len(rows)]
    if empty:
        st.caption(f"No images of {', '.join(empty)} here: left out.")
    targets = [c for c in classes if len(sets[c])]
    stem = f"tcav_{loaded.model.name}_{concept_name}"
    base = (loaded.key, data.key, concept_key, n_random, per_class, runs, seed)
    if targets:
        st.subheader(f"Scores per class at {layer}")
        n_class = sum(len(sets[c]) for c in targets)
        work = f"{len(xc) + len(xr):,} images forward and {n_class:,} gradients, {2 * runs} CAV fits"
        out = _concepts_parts.run(
            "concepts.tcav",
            (*base, layer, tuple(targets)),
            "TCAV",
            work,
            concepts.tcav_seconds(loaded.model, [layer], len(xc), len(xr), n_class, runs=runs),
            lambda p: concepts.sweep(
                loaded.model,
                [layer],
                xc,
                xr,
                [data.x[sets[c]] for c in targets],
                targets,
                runs=runs,
                seed=seed,
                on_progress=p,
            ),
        )
        if out is not None:
            _concepts_parts.tcav_results(
                "class",
                [names[c] for c in targets],
                out[next(iter(out))],
                concept_name,
                "concepts.per_class_result",
                f"{stem}_{layer.replace('/', '_')}",
            )
    st.subheader("Layer sweep: TCAV at each block output")
    cls = st.selectbox(
        "Class of the sweep", range(len(names)), format_func=lambda i: names[i], key="concepts.sweep_class"
    )
    rows = np.setdiff1d(np.flatnonzero(data.labels == cls), used)[:per_class]
    if not len(rows):
        st.caption(f"No images of {names[cls]} here.")
        return
    layers = tuple(la for la in _sweep_layers(loaded) if concepts.tcav_fits(loaded.model, la, len(xc) + len(xr)))
    if skipped := [la for la in _sweep_layers(loaded) if la not in layers]:
        st.caption(
            f"Left out, their activations for {len(xc) + len(xr)} images too large to keep: {', '.join(skipped)}."
        )
    out = _concepts_parts.run(
        "concepts.sweep",
        (*base, cls, layers),
        "layer sweep",
        f"{len(layers)} layers × ({len(xc) + len(xr):,} images forward, {len(rows):,} gradients, {2 * runs} CAV fits)",
        concepts.tcav_seconds(loaded.model, layers, len(xc), len(xr), len(rows), runs=runs),
        lambda p: concepts.sweep(
            loaded.model, layers, xc, xr, [data.x[rows]], [cls], runs=runs, seed=seed, on_progress=p
        ),
    )
    if out is not None:
        _concepts_parts.tcav_results(
            "layer",
            list(out),
            [v[0] for v in out.values()],
            concept_name,
            "concepts.sweep_result",
            f"{stem}_{names[cls]}_sweep",
        )
