"""Links between pages: a Model page row opens its layer elsewhere; a feature map opens its channel step by step."""

from __future__ import annotations

from urllib.parse import parse_qsl

import keras
import numpy as np
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.data import datasets

TIMEOUT = 180


def _first_digit() -> np.ndarray:
    ds = datasets.load_mnist_sample()
    return ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]]


def _follow(link) -> AppTest:
    """Open what a page link points at, as a browser would: a new session with its query string."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(dict(parse_qsl(link.proto.query_string)))
    at.switch_page(f"pages/{link.proto.page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_model_page_row_opens_its_layer_on_other_pages():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.get("page_link")  # no row selected: no links
    table = at.dataframe[0].value
    row = list(table["layer"]).index("conv2")
    at.session_state["model.table"] = {
        "selection": {"rows": [row], "columns": [], "cells": []}
    }  # AppTest cannot click a row
    at.run()
    links = {link.proto.page: link for link in at.get("page_link")}
    assert set(links) == {"kernels", "activations", "filters"}
    assert _follow(links["kernels"]).selectbox(key="kernels.layer").value == "conv2"
    assert _follow(links["activations"]).selectbox(key="act.layer").value == "conv2"  # opens the One layer tab
    assert _follow(links["filters"]).selectbox(key="fv.layer").value == "conv2"


def test_a_feature_map_opens_its_channel_step_by_step_and_a_dead_one_its_filter():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"act.layer": "conv1"})
    at.switch_page("pages/activations.py")
    at.run()
    at.number_input(key="act.channel").set_value(5).run()
    links = {link.proto.page: link for link in at.get("page_link")}
    conv = _follow(links["convolution"])
    assert conv.selectbox(key="conv.layer").value == "conv1" and conv.number_input(key="conv.channel").value == 5
    assert "channel 5" in conv.subheader[0].value

    # channel 18 of conv2 is zero everywhere on this digit (checked below): it links to its filter on Kernels
    mnist = models.open_bundled("mnist_cnn").model
    x = _first_digit()
    conv2 = keras.Model(mnist.input, mnist.get_layer("conv2").output)(x[None]).numpy()[0]
    assert not conv2[:, :, 18].any() and conv2[:, :, 5].any()
    at.selectbox(key="act.layer").set_value("conv2").run()
    at.number_input(key="act.channel").set_value(5).run()
    assert "kernels" not in {link.proto.page for link in at.get("page_link")}  # a live channel: no filter link
    at.number_input(key="act.channel").set_value(18).run()
    links = {link.proto.page: link for link in at.get("page_link")}
    kernels = _follow(links["kernels"])
    assert (
        kernels.selectbox(key="kernels.layer").value == "conv2"
        and kernels.number_input(key="kernels.filter").value == 18
    )
