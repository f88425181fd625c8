"""The Dataset view's Activation Atlas section: a Run button, progress, the montage and its PNG."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from pages import _runner
from vizcore.featurevis import atlas
from vizcore.present import render


def show(
    loaded,
    layer: str,
    x_nhwc: np.ndarray,
    features: Callable[[], np.ndarray],
    xy: np.ndarray,
    data_key: str,
    *,
    labels: np.ndarray,
    class_names: Sequence[str],
    predicted: Callable[[], np.ndarray] | None = None,
    saved: Callable[[int, int, int], atlas.Atlas | None] | None = None,
) -> None:
    """The atlas of ``layer`` over the embedding ``xy`` the page shows (``data_key`` names the dataset and projection);
    ``features()`` gives the layer's features on Run; ``saved(grid, least, steps)`` is a precomputed atlas, or None."""
    st.subheader("Activation Atlas")
    st.caption(
        "A grid over the embedding above: each cell with enough images shows the image the layer sees as the "
        "cell's average activation (gradient ascent along that direction), framed in the colour of its most "
        "frequent class (Carter et al., 2019)."
    )
    c1, c2, c3 = st.columns(3)
    default_grid, default_steps = atlas.defaults(loaded.spec)
    grid = int(c1.slider("Grid (cells per side)", 3, 16, default_grid, key="dataset.atlas_grid"))
    least = int(c2.number_input("Images per cell (at least)", 1, 500, atlas.MIN_POINTS, key="dataset.atlas_min"))
    steps = int(c3.number_input("Optimization steps", 1, 1024, default_steps, key="dataset.atlas_steps"))
    counts = np.bincount(atlas.bin_points(xy, grid), minlength=grid * grid)
    cells = int((counts >= least).sum())
    inputs = (loaded, layer, data_key, grid, least, steps)
    if _runner.kept("dataset.atlas", inputs, scope="server") is None and saved is not None:
        if (found := saved(grid, least, steps)) is not None:  # precomputed by python -m vizcore.precompute
            _runner.keep("dataset.atlas", inputs, found, scope="server", limit=8)

    def compute(sink) -> atlas.Atlas:
        return atlas.atlas(
            loaded,
            layer,
            x_nhwc,
            grid=grid,
            min_points=least,
            coords=xy,
            features=features(),
            labels=labels,
            predicted=predicted() if predicted else None,
            class_names=class_names,
            steps=steps,
            on_progress=lambda _stage, done, total: sink(done, total),
        )

    if not cells:
        st.caption(
            f"No cell of the {grid}×{grid} grid holds {least} images: use a coarser grid or fewer images per cell."
        )
    found = (
        _runner.run(
            "dataset.atlas",
            inputs,
            compute,
            scope="server",
            limit=8,
            ask=_runner.Ask(
                f"the atlas: {cells} cells × {steps} steps",
                label=f"Run the atlas: {cells} cells × {steps} steps",
                key="dataset.atlas_run",
                help="One gradient ascent for all cells at once; seconds on the bundled models, longer at 224×224.",
                cancel=False,
            ),
            what=f"Optimizing {cells} images",
        )
        if cells
        else _runner.kept("dataset.atlas", inputs, scope="server")
    )
    if found is None:
        return
    image = found.to_image()
    right = "" if np.isnan(found.correct).all() else f" · {np.nanmean(found.correct):.0%} right on average per cell"
    st.image(
        image,
        caption=f"Activation atlas of {found.layer}: {len(found.rows)} cells of {grid}×{grid}, "
        f"≥ {least} images each, {steps} steps{right}",
    )
    st.download_button(
        "Download the atlas (PNG)",
        lambda: render.to_png(image),
        f"{loaded.model.name}_{found.layer.replace('/', '_')}_atlas.png",
        "image/png",
        key="dataset.atlas_png",
    )
