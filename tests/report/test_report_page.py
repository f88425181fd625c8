"""'Download report' in the app: the Dataset view builds the same report as the engine on the images it shows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import ROOT, kept
from streamlit.testing.v1 import AppTest

from vizcore import featurevis as fv
from vizcore import profile

TIMEOUT = 300
N = 60  # the Dataset view's 'Images (at most)' for this test


@pytest.fixture
def small(monkeypatch):
    """A few gradient-ascent steps and the light budget, as a hosted server would run it."""
    from pages import _report_view

    monkeypatch.setenv(fv.MAX_STEPS_ENV, "4")
    monkeypatch.setattr(_report_view, "LIMITS", dataclasses.replace(profile.PROFILES["hosted"], report_images=40))


def test_the_dataset_view_builds_the_report_of_its_own_images(small):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:mnist_cnn", "dataset.view": "evaluate"})
    at.switch_page("pages/dataset.py").run()
    at.number_input(key="dataset.limit").set_value(N).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("download_button") or all("report" not in b.proto.label for b in at.get("download_button"))
    at.button(key="dataset.report.build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    inputs, built = kept(at, "dataset.report").inputs, kept(at, "dataset.report").value
    assert inputs[-2:] == (40, "light")  # the profile's bound beats the page's 60
    ident = built.identity
    assert ident["dataset"]["key"] == "mnist_sample:40" and ident["key"] == "bundled:mnist_cnn"
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Download report (HTML)", "Download numbers (JSON)"} <= labels
    assert any("Report built in" in s.value for s in at.success)
    # the same numbers as the engine's own evaluation of those 40 images, which the page would show at limit 40
    from vizcore import models
    from vizcore.data import datasets
    from vizcore.inspect import evaluation

    loaded, ds = models.open_bundled("mnist_cnn"), datasets.load_mnist_sample()
    pick = np.linspace(0, len(ds) - 1, 40).astype(int)
    x = evaluation.prepare(loaded, ds.x_nhwc[pick]).x_nhwc
    rep = evaluation.report(loaded.model, x, ds.y[pick], ds.class_names)
    assert built.numbers["evaluation"]["accuracy"] == rep.accuracy
    assert np.array_equal(built.numbers["evaluation"]["confusion"], rep.confusion)
    assert built.numbers["robustness"]["images"] == 40


def test_the_model_page_offers_the_dataset_the_model_was_trained_on():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:shapes_cnn"})
    at.switch_page("pages/model.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="model.report_dataset").value == "shapes"
    assert at.button(key="model.report.build")
