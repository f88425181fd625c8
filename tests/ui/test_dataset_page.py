"""AppTest for the Dataset view: filter examples, evaluation and embedding against independent computations."""

from __future__ import annotations

import base64
import json

import keras
import numpy as np
import pytest
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.data import datasets
from vizcore.models import graph

TIMEOUT = 240
N = 400  # images the page uses: evenly spaced over the 5,000 bundled digits


@pytest.fixture(scope="module")
def mnist():
    """The bundled MNIST CNN and the page's images in its 'unit' range, with their dataset indices."""
    model = models.open_bundled("mnist_cnn").model
    ds = datasets.load_mnist_sample()
    pick = np.linspace(0, len(ds) - 1, N).astype(int)
    x = np.rint(np.asarray(ds.x_nhwc[pick]) * 255).astype(np.float32) / 255.0
    return model, x, ds.y[pick], pick


def _open(params: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:mnist_cnn", **params})
    at.switch_page("pages/dataset.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="dataset.limit").set_value(N).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _layer(model: keras.Model, name: str, x: np.ndarray) -> np.ndarray:
    t = graph.trace(model)
    return np.asarray(keras.Model(t.input, t[name].output).predict(x, verbose=0))


def _arr(value) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return out.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else out
    return np.asarray(value)


def test_a_link_opens_a_filter_card_with_the_brute_force_top_images(mnist):
    model, x, _, pick = mnist
    at = _open({"layer": "conv2", "ch": "5"})  # the short link the other pages make
    assert at.selectbox(key="dataset.layer").value == "conv2"
    assert at.number_input(key="dataset.ch").value == 5
    maps = _layer(model, "conv2", x)[..., 5]
    want = pick[np.argsort(-maps.reshape(N, -1).max(axis=1), kind="stable")[:9]]
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    shown = [int(tok.split(" ")[0]) for tok in captions.split("Images: ", 1)[1].split("#")[1:10]]
    assert shown == want.tolist()
    assert "Receptive field 5×5" in " ".join(c.value for c in at.caption)  # two 3x3 convs
    assert at.get("download_button")
    at.query_params.update({"layer": "conv1", "ch": "7"})  # a second link from another page
    at.switch_page("pages/dataset.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="dataset.layer").value == "conv1"
    assert at.number_input(key="dataset.ch").value == 7


def test_evaluation_counts_match_the_model(mnist):
    model, x, y, _ = mnist
    at = _open({"dataset.view": "Evaluate"})
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    metric = next(m for m in at.metric if m.label == "Accuracy")
    assert metric.value == f"{accuracy:.2%}"
    at.selectbox(key="dataset.true").set_value("4")
    at.selectbox(key="dataset.pred").set_value("4").run()
    assert not at.exception
    count = int(np.sum((y == 4) & (predicted == 4)))
    assert any(c.value.startswith(f"{count} image(s) of 4 predicted as 4") for c in at.caption)


def test_embedding_shows_every_point_on_the_pca_axes(mnist):
    model, x, y, _ = mnist
    at = _open({"dataset.view": "Embedding"})
    assert at.selectbox(key="dataset.emb_layer").value == "fc"  # the dense layer, not the Dropout that repeats it
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = spec["data"]
    assert all(t["type"] == "scattergl" for t in traces)
    xs = np.concatenate([_arr(t["x"]) for t in traces])
    rows = np.concatenate([_arr(t["customdata"]) for t in traces]).astype(int)
    assert sorted(rows.tolist()) == list(range(N))
    feats = _layer(model, "fc", x).astype(np.float64)
    centred = feats - feats.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    want = centred @ vectors[:, -1]
    order = np.argsort(rows)
    np.testing.assert_allclose(np.abs(xs[order]), np.abs(want), rtol=1e-3, atol=1e-3)
    assert sorted(t["name"] for t in traces) == [str(d) for d in range(10)]  # coloured by true class


def test_the_kernels_page_links_its_filter_here():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:mnist_cnn", "kernels.layer": "conv2", "kernels.filter": "3"})
    at.switch_page("pages/kernels.py")
    at.run()  # a fresh session that opens the Kernels page first
    assert not at.exception, [e.value for e in at.exception]
    link = at.get("page_link")[0].proto
    assert link.page == "dataset" and link.query_string == "layer=conv2&ch=3"


def test_photos_have_examples_but_no_score():
    at = _open({"dataset.source": "Bundled colour photos", "layer": "conv1", "ch": "0"})
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert captions.split("Images: ", 1)[1].count("#") == 4  # every photo, once
    at.radio(key="dataset.view").set_value("evaluate").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "nothing to score" in at.warning[0].value
