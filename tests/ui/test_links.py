"""Shareable views: a page's state lives in the URL; a stale link falls back with a notice."""

from __future__ import annotations

from helpers import ROOT
from streamlit.testing.v1 import AppTest

TIMEOUT = 180


def _open(page: str, params: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_opens_the_same_kernels_view():
    at = _open(
        "pages/kernels.py",
        {
            "model": "bundled:lenet5",
            "kernels.layer": "conv2",
            "kernels.scale": "Global (all conv layers)",
            "kernels.filter": "7",
        },
    )
    assert "LeNet-5" in at.sidebar.markdown[0].value
    assert at.selectbox(key="kernels.layer").value == "conv2"
    assert at.radio(key="kernels.scale").value == "global"
    assert at.number_input(key="kernels.filter").value == 7
    assert not at.toast


def test_an_old_style_link_maps_to_the_page_names():
    at = _open("pages/kernels.py", {"model": "bundled:lenet5", "layer": "conv2", "scale": "global", "filter": "7"})
    assert at.selectbox(key="kernels.layer").value == "conv2"
    assert at.radio(key="kernels.scale").value == "global"
    assert at.number_input(key="kernels.filter").value == 7
    assert not at.toast
    # the address now carries the page's own names, so copying it gives the same view
    assert at.query_params["model"] == "bundled:lenet5" and at.query_params["kernels.layer"] == "conv2"
    assert at.query_params["kernels.filter"] == "7" and "layer" not in at.query_params


def test_page_names_do_not_clash():
    at = _open("pages/activations.py", {"model": "bundled:lenet5", "act.layer": "conv1", "kernels.layer": "conv2"})
    assert at.selectbox(key="act.layer").value == "conv1"
    at.switch_page("pages/kernels.py").run()
    assert at.selectbox(key="kernels.layer").value == "conv2"


def test_a_link_picks_the_input_and_the_methods():
    at = _open(
        "pages/attribution.py",
        {
            "model": "bundled:mnist_cnn",
            "data": "mnist_sample",
            "class": "4",
            "i": "12",
            "methods": "Grad-CAM++,LayerCAM",
            "target": "9",
            "layer": "conv1",
        },
    )
    assert at.selectbox(key="input.class").value == 4 and at.number_input(key="input.index").value == 12
    assert at.multiselect(key="attr.methods").value == ["Grad-CAM++", "LayerCAM"]
    assert at.selectbox(key="attr.target").value == 9 and at.selectbox(key="attr.layer").value == "conv1"
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("Grad-CAM++ · 9 · conv1") for c in captions), captions


def test_stale_or_broken_values_fall_back_with_a_notice():
    at = _open("pages/kernels.py", {"model": "bundled:gone_model", "layer": "conv9", "filter": "many"})
    notices = [t.value for t in at.toast]
    assert any("model='bundled:gone_model'" in n for n in notices)
    assert any("layer='conv9'" in n for n in notices)
    assert any("filter='many'" in n for n in notices)
    assert at.selectbox(key="kernels.layer").value == "conv1"
    assert "MNIST CNN" in at.sidebar.markdown[0].value


def test_a_link_applies_to_the_first_view_only():
    at = _open("pages/activations.py", {"layer": "conv1"})
    assert at.selectbox(key="act.layer").value == "conv1"
    at.selectbox(key="act.layer").set_value("pool").run()
    at.switch_page("pages/kernels.py").run()
    at.switch_page("pages/activations.py").run()
    assert at.selectbox(key="act.layer").value == "pool"  # the person's choice, not the old link


def test_a_link_with_page_names_picks_the_input_and_the_methods():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(
        {
            "model": "bundled:mnist_cnn",
            "input.class": "4",
            "input.index": "12",
            "attr.target": "9",
            "attr.layer": "conv1",
        }
    )
    at.query_params["attr.methods"] = ["Grad-CAM++", "LayerCAM"]
    at.switch_page("pages/attribution.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="input.class").value == 4 and at.number_input(key="input.index").value == 12
    assert at.multiselect(key="attr.methods").value == ["Grad-CAM++", "LayerCAM"]
    assert at.selectbox(key="attr.target").value == 9 and at.selectbox(key="attr.layer").value == "conv1"
    assert not at.toast


def test_stale_page_names_fall_back_with_a_notice():
    at = _open(
        "pages/kernels.py",
        {"model": "bundled:lenet5", "kernels.layer": "conv9", "kernels.scale": "Sideways", "kernels.filter": "999"},
    )
    notices = [t.value for t in at.toast]
    assert any("kernels.layer='conv9'" in n for n in notices), notices
    assert any("kernels.scale='Sideways'" in n for n in notices), notices
    assert any("kernels.filter='999'" in n for n in notices), notices
    assert at.selectbox(key="kernels.layer").value == "conv1"
    assert at.radio(key="kernels.scale").value == "filter" and at.number_input(key="kernels.filter").value == 0
