"""AppTest: the Dataset view's Activation Atlas on the bundled MNIST CNN, a small dataset and few steps."""

from __future__ import annotations

import keras
import numpy as np
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.data import datasets
from vizcore.models import graph

TIMEOUT = 240
N = 400  # images the page uses: evenly spaced over the 5,000 bundled digits
GRID, LEAST = 6, 8


def _cells_by_hand() -> int:
    """Cells of a GRID x GRID lattice over the PCA of fc holding >= LEAST images
    (eigh PCA; a flipped axis keeps the count)."""
    model = models.open_bundled("mnist_cnn").model
    ds = datasets.load_mnist_sample()
    x = np.rint(np.asarray(ds.x_nhwc[np.linspace(0, len(ds) - 1, N).astype(int)]) * 255).astype(np.float32) / 255.0
    t = graph.trace(model)
    feats = np.asarray(keras.Model(t.input, t["fc"].output).predict(x, verbose=0), np.float64)
    centred = feats - feats.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    xy = centred @ vectors[:, [-1, -2]]
    hist, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=GRID)
    return int((hist >= LEAST).sum())


def test_the_atlas_runs_on_the_embedding_and_offers_its_png():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:mnist_cnn", "dataset.view": "Embedding"})
    at.switch_page("pages/dataset.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="dataset.limit").set_value(N).run()
    at.slider(key="dataset.atlas_grid").set_value(GRID)
    at.number_input(key="dataset.atlas_min").set_value(LEAST)
    at.number_input(key="dataset.atlas_steps").set_value(4).run()
    assert not at.exception, [e.value for e in at.exception]
    cells = _cells_by_hand()
    button = at.button(key="dataset.atlas_run")
    assert button.label == f"Run the atlas: {cells} cells × 4 steps"
    assert not [c for img in at.get("image") for c in img.captions if "Activation atlas" in c]  # nothing before Run
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c for img in at.get("image") for c in img.captions if c.startswith("Activation atlas")]
    assert captions and captions[0].startswith(
        f"Activation atlas of fc: {cells} cells of {GRID}×{GRID}, ≥ {LEAST} images each, 4 steps"
    )
    assert any(b.proto.label == "Download the atlas (PNG)" for b in at.get("download_button"))
