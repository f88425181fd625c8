"""Activation Atlas: the whole ``atlas()`` call (features, PCA, binning, one batched optimization)
vs one optimize() per cell.

Both sides run the same pipeline on the bundled MNIST CNN over the 5,000 bundled digits at the
defaults (the page's default layer, PCA, 8x8 grid, >= 8 images per cell, the default steps); the
loop optimizes each cell's image by its own ``optimize()`` call (the same objective, so one compiled
engine serves every call: the figures compare batching, not tracing). Timed in turns after a warm-up
call each, fastest of 3.
"""

from __future__ import annotations

import dataclasses

from bench.bench_featurevis import _in_turns
from bench.common import Row

REPEAT = 3


def run() -> list[Row]:
    import numpy as np

    from vizcore import featurevis as fv
    from vizcore import models
    from vizcore.data import datasets
    from vizcore.featurevis import atlas
    from vizcore.inspect import embedding
    from vizcore.models import graph

    loaded = models.open_bundled("mnist_cnn")
    ds = datasets.load_mnist_sample()
    x, y = np.asarray(ds.x_nhwc, np.float32), ds.y
    layer = embedding.default_layer(loaded.model)
    settings = dataclasses.replace(fv.default_settings(graph.input_spec(loaded.model)), fit_receptive_field=False)
    found = {}

    def batched():
        found["atlas"] = atlas.atlas(loaded, layer, x, labels=y)

    def loop():
        feats = embedding.layer_features(loaded.model, layer, x)
        cell_of = atlas.bin_points(embedding.project(feats, "PCA"), atlas.GRID)
        cells, counts = np.unique(cell_of, return_counts=True)
        dirs = np.stack([feats[cell_of == c].mean(axis=0) for c in cells[counts >= atlas.MIN_POINTS]])
        objective = fv.Direction(layer, tuple(map(tuple, dirs.tolist())))
        found["loop"] = [fv.optimize(loaded, objective, [k], settings=settings).reached[0] for k in range(len(dirs))]

    def cells_batch():  # what the page's Run costs: it has the features and the 2-D points already
        fv.optimize(loaded, found["objective"], range(found["cells"]), settings=settings)

    def cells_loop():
        for k in range(found["cells"]):
            fv.optimize(loaded, found["objective"], [k], settings=settings)

    batched_ms, loop_ms = _in_turns([batched, loop], repeat=REPEAT)
    a = found["atlas"]
    found["objective"], found["cells"] = fv.Direction(a.layer, tuple(map(tuple, a.directions.tolist()))), len(a.rows)
    images_ms, images_loop_ms = _in_turns([cells_batch, cells_loop], repeat=REPEAT)
    steps = fv.capped_steps(settings.steps)
    same = np.allclose(a.reached, found["loop"], rtol=1e-3)
    return [
        Row(
            "atlas",
            f"Activation Atlas, MNIST CNN {layer} over {len(x):,} digits, "
            f"{atlas.GRID}x{atlas.GRID} grid, >= {atlas.MIN_POINTS} "
            f"per cell ({len(a.rows)} cells), {steps} steps: whole atlas() call, one batch",
            batched_ms,
            "same pipeline, one optimize() per cell",
            loop_ms,
            note=f"warm; fastest of {REPEAT} in turns; per-cell objective reached equal to the loop's: {same}",
        ),
        Row(
            "atlas",
            f"the same {len(a.rows)} cells' images only "
            "(the page's Run: features and points already computed), one optimize() call",
            images_ms,
            "one optimize() per cell",
            images_loop_ms,
            note=f"warm; fastest of {REPEAT} in turns",
        ),
    ]
