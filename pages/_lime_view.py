"""The LIME part of the Attribution page: one run with a progress bar, then the top superpixels beside the map."""

from __future__ import annotations

import streamlit as st

from pages import _runner
from vizcore import models
from vizcore.attribution import lime
from vizcore.present import render


def run(loaded: models.LoadedModel, picked, target: int, options: dict) -> lime.LimeFit:
    """The LIME fit of the picked input (computed once, with a progress bar; the page's map comes from it)."""

    def fit(sink) -> lime.LimeFit:
        found = lime.explain(loaded.model, picked.image_hwc, target=target, **options, on_progress=sink)
        for array in (found.segments_hw, found.on_ns, found.probabilities, found.distances, found.weights):
            array.setflags(write=False)  # shared by every session
        return found

    return _runner.run(
        "attr.lime",
        (loaded, picked.key, int(target), options),
        fit,
        scope="server",
        limit=16,
        heavy=False,
        bar=True,
        what="LIME",
        unit="samples",
    )


def section(fit: lime.LimeFit, picked, class_name: str, cmap: str, alpha: float) -> None:
    """The top-k positive (green) and negative (red) superpixels beside the LIME map, with R² and samples."""
    with st.expander("LIME: the superpixels behind the map", expanded=True):
        count = len(fit.weights)
        k = (
            st.slider("Superpixels shown of each sign", 1, min(20, count), min(5, count), key="attr.lime.k")
            if count > 1
            else 1
        )
        v = lime.view(fit, k)
        size = (
            max(160, 4 * picked.display_hwc.shape[0])
            if picked.display_hwc.shape[0] < 100
            else picked.display_hwc.shape[0]
        )
        left, right = st.columns(2)
        left.image(
            render.resize(
                render.overlay(picked.display_hwc, fit.heatmap_hw, cmap=cmap, alpha=alpha), (size, size), smooth=False
            ),
            caption=f"LIME map · {class_name}",
            width=size,
        )
        shown = render.resize(
            render.to_rgb(picked.display_hwc), (size, size), smooth=False
        )  # outlines drawn at display size
        right.image(
            lime.mask_image(shown, v),
            caption=f"Top {len(v.positive)} for (green), top {len(v.negative)} against (red) · {class_name}",
            width=size,
        )
        st.caption(
            f"Weighted R² of the linear fit: {v.r2:.3f} · {v.samples:,} samples · {count} superpixels. "
            "A low R² means the linear model explains the class probability poorly: read the map with care."
        )
