"""AppTest for the explorer pages: Kernels, Activations, Convolution, Attribution.

Each test checks what a person sees against an independent computation on the same model.
"""

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

TIMEOUT = 180


@pytest.fixture(scope="module")
def mnist():
    return models.open_bundled("mnist_cnn").model


def _app(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _tab(at: AppTest, key: str, label: str) -> None:
    """Open a stateful tab (AppTest cannot click one): only the open tab's content runs."""
    at.session_state[key] = label
    at.run()


def _figure(at: AppTest, title_part: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if title_part in json.dumps(spec.get("layout", {}).get("title", {})):
            return spec
    raise AssertionError(f"no figure titled like {title_part!r}")


def _arr(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array {'dtype', 'bdata', 'shape'}."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return out.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else out
    return np.asarray(value)


def _first_digit() -> np.ndarray:
    ds = datasets.load_mnist_sample()
    return ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]]


def test_kernels_page_shows_the_real_weights(mnist):
    at = _app("pages/kernels.py")
    assert at.selectbox(key="kernels.layer").value == "conv1"
    z = _arr(_figure(at, "Filter 0, input channel 0")["data"][0]["z"])
    np.testing.assert_allclose(z, mnist.get_layer("conv1").get_weights()[0][:, :, 0, 0], rtol=1e-6)
    at.selectbox(key="kernels.layer").set_value("conv2").run()
    at.radio(key="kernels.scale").set_value("global").run()
    at.radio(key="kernels.mode").set_value("mean").run()
    assert not at.exception
    hist = _figure(at, "Weights of conv2")["data"][0]
    assert _arr(hist["y"]).sum() == 3 * 3 * 32 * 64
    assert len(at.get("image")) == 1


def test_activations_page_maps_equal_a_direct_computation(mnist):
    at = _app("pages/activations.py")
    _tab(at, "act.tab", "One layer")  # stateful tabs: only the open one runs
    at.selectbox(key="act.layer").set_value("conv1").run()
    channel = at.number_input(key="act.channel").value
    z = _arr(_figure(at, f"conv1, channel {channel}")["data"][0]["z"])
    direct = keras.Model(mnist.input, mnist.get_layer("conv1").output)(_first_digit()[None]).numpy()[0]
    np.testing.assert_allclose(z, direct[:, :, channel], rtol=1e-4, atol=1e-5)
    probs = _figure(at, "Top predictions")["data"][0]
    assert probs["y"][0] == "0" and _arr(probs["x"])[0] > 0.5  # the trained model recognises the digit
    at.radio(key="act.scale").set_value("global").run()
    at.selectbox(key="input.class").set_value(7).run()
    assert not at.exception
    assert "7" in at.get("image")[0].captions[0]


def test_convolution_page_sum_equals_the_feature_map(mnist):
    at = _app("pages/convolution.py")
    at.selectbox(key="conv.layer").set_value("conv2").run()
    at.number_input(key="conv.channel").set_value(5).run()
    at.number_input(key="conv.y").set_value(3).run()
    at.number_input(key="conv.x").set_value(17).run()
    assert not at.exception and at.success, [e.value for e in at.error]
    direct = keras.Model(mnist.input, mnist.get_layer("conv2").output)(_first_digit()[None]).numpy()[0, 3, 17, 5]
    table = next(m.value for m in at.markdown if "value in the feature map" in m.value)
    assert f"{direct:+.6f}" in table
    at.selectbox(key="conv.layer").set_value("pool").run()
    assert not at.exception and "max of the window" in "".join(m.value for m in at.markdown)


def test_attribution_page_every_method_and_the_checks():
    at = _app("pages/attribution.py")
    methods = list(at.multiselect(key="attr.methods").options)
    at.multiselect(key="attr.methods").set_value(methods).run()
    assert not at.exception
    for label in methods:  # a costly method (RISE's masks) waits for its Run button
        if any(b.key == f"attr.run.{label}.run" for b in at.button):
            at.button(key=f"attr.run.{label}.run").click().run()
    captions = [c for img in at.get("image") for c in img.captions]
    for label in methods:
        assert any(c.startswith(f"{label} ·") for c in captions), label
    assert any("Score-CAM 65 forward passes" in c.value for c in at.caption)
    _tab(at, "attr.tab", "Faithfulness & sanity")
    at.button(key="faith.random").click().run()
    assert not at.exception
    rho = next(m.value for m in at.metric if m.label == "Spearman rank correlation")
    assert rho == "n/a (a map is constant)" or -1.0 <= float(rho) <= 1.0
    deletion = _figure(at, "Deletion")
    assert {t["name"] for t in deletion["data"]} == {methods[0], "Random (baseline)", "Edges (Sobel) (baseline)"}


def test_faithfulness_scores_the_map_made_with_the_page_options_and_keeps_results(mnist):
    from vizcore.attribution import metrics, occlusion

    at = _app("pages/attribution.py")
    assert at.selectbox(key="attr.cmap").value == "inferno"  # colour-blind-safe by default
    at.multiselect(key="attr.methods").set_value(["Occlusion"]).run()
    at.checkbox(key="attr.opt.Occlusion.patch.on").check().run()
    at.number_input(key="attr.opt.Occlusion.patch").set_value(7).run()
    at.checkbox(key="attr.opt.Occlusion.stride.on").check().run()
    assert at.number_input(key="attr.opt.Occlusion.stride").max == 7  # the stride never passes the patch
    at.number_input(key="attr.opt.Occlusion.stride").set_value(4).run()
    at.selectbox(key="attr.opt.Occlusion.fill").set_value("mean").run()
    assert not at.exception, [e.value for e in at.exception]
    _tab(at, "attr.tab", "Faithfulness & sanity")
    x, target = _first_digit(), at.selectbox(key="attr.target").value
    heat = occlusion(mnist, x, target=target, patch=7, stride=4, fill="mean")
    table = at.dataframe[0].value
    row = list(table["map"]).index("Occlusion")
    by_hand = metrics.deletion_curve(mnist, x, heat, target=target, steps=metrics.CURVE_STEPS).auc
    assert table["deletion AUC (lower is better)"][row] == round(by_hand, 3)
    default_auc = metrics.deletion_curve(mnist, x, occlusion(mnist, x, target=target), target=target).auc
    assert round(default_auc, 3) != round(by_hand, 3)  # the options change the score: the table shows the map on screen

    at.button(key="faith.random").click().run()
    rho = next(m.value for m in at.metric if m.label == "Spearman rank correlation")
    expected = metrics.randomization_check(
        mnist, x, occlusion, target=target, options={"patch": 7, "stride": 4, "fill": "mean"}
    )
    assert rho == f"{expected.spearman:+.2f}"
    at.slider(key="faith.steps").set_value(30).run()  # another rerun: the finished check stays
    assert any(m.label == "Spearman rank correlation" for m in at.metric)
    at.selectbox(key="attr.opt.Occlusion.fill").set_value("zero").run()  # an input changed: it goes
    assert not any(m.label == "Spearman rank correlation" for m in at.metric)
    at.number_input(key="attr.opt.Occlusion.patch").set_value(3).run()  # the stride follows a smaller patch
    assert at.number_input(key="attr.opt.Occlusion.stride").value == 3 and not at.exception


def test_a_jet_link_still_opens_jet():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["attr.cmap"] = "jet"
    at.run()
    at.switch_page("pages/attribution.py").run()
    assert not at.exception and at.selectbox(key="attr.cmap").value == "jet"


def test_pointing_game_on_the_shapes_model():
    at = _app("pages/model.py")
    at.selectbox(key="model.bundled").set_value("shapes_cnn").run()
    at.switch_page("pages/attribution.py").run()
    _tab(at, "attr.tab", "Faithfulness & sanity")
    at.slider(key="faith.n").set_value(40).run()
    at.button(key="faith.play").click().run()
    assert not at.exception
    scores = {m.label: float(m.value.rstrip("%")) for m in at.metric if m.value.endswith("%")}
    assert scores["Grad-CAM: hits"] > scores["Random map (baseline)"]
    at.slider(key="faith.steps").set_value(30).run()  # another rerun: the score stays
    assert any(m.label == "Grad-CAM: hits" for m in at.metric)
    at.slider(key="faith.n").set_value(60).run()  # its input changed: it goes
    assert not any(m.label == "Grad-CAM: hits" for m in at.metric)


def test_filters_page_visualizes_a_whole_layer_and_classes(monkeypatch, mnist):
    monkeypatch.setenv("CONVLENS_MAX_STEPS", "8")  # the page's default is 48; the algorithm is tested elsewhere
    at = _app("pages/filters.py")
    assert at.selectbox(key="fv.layer").value == "conv2"
    assert any("64 image(s), 8 steps each" in c.value for c in at.caption)
    at.button(key="fv.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    captions = at.get("image")[0].captions[0]
    assert captions.startswith("Row by row: filter 0, filter 1") and "filter 63" in captions
    reached = _figure(at, "Reached activation")
    assert len(_arr(reached["data"][0]["y"])) == 64 and reached["data"][1]["name"] == "mean on real data"
    assert {t["name"] for t in _figure(at, "Loss terms")["data"]} >= {"channel", "loss"}
    at.radio(key="fv.objective").set_value("class").run()
    at.button(key="fv.run").click().run()
    assert not at.exception
    assert at.get("image")[0].captions[0] == "Row by row: " + ", ".join(str(d) for d in range(10))
    at.radio(key="fv.objective").set_value("channel").run()
    assert "fv.run" not in [b.key for b in at.button]  # the layer's result is cached: shown again without a run


def test_builder_page_explains_then_builds(mnist):
    at = _app("pages/builder.py")
    assert "61,706 parameters" in at.subheader[0].value  # LeNet-5 to start with
    at.selectbox(key="builder.0.0.pad").set_value("valid").run()
    at.number_input(key="builder.0.0.kernel").set_value(29).run()
    assert at.button(key="builder.build").disabled
    assert any("does not fit the 28x28 input" in e.value for e in at.error)
    at.number_input(key="builder.0.0.kernel").set_value(3).run()
    assert not at.error and not at.button(key="builder.build").disabled
    at.button(key="builder.build").click().run()
    assert at.session_state["working_model"].kind == "built"
    first = at.session_state["working_model"].name
    at.button(key="builder.build").click().run()  # the same network again: new weights, so a new key
    assert (
        at.session_state["working_model"].name.startswith("built:") and at.session_state["working_model"].name != first
    )
    at.switch_page("pages/model.py").run()
    table = at.dataframe[0].value
    assert table["parameters"].sum() == int(at.metric[0].value.replace(",", ""))
    assert list(table["layer"])[-2:] == ["logits", "probs"]


def test_an_uploaded_nested_model_works_on_every_explorer_page(tmp_path):
    from helpers import nested_mobilenet

    nested_mobilenet("softmax").save(tmp_path / "transfer.keras")
    at = _app("pages/model.py")
    at.radio(key="model.source").set_value("upload").run()
    at.file_uploader(key="model.upload").set_value(
        ("transfer.keras", (tmp_path / "transfer.keras").read_bytes(), "application/octet-stream")
    ).run()
    assert not at.error, [e.value for e in at.error]
    base = at.dataframe[0].value["layer"][0].split("/")[0]  # layers inside the base are named base/...
    at.switch_page("pages/kernels.py").run()
    assert at.selectbox(key="kernels.layer").value == f"{base}/Conv1" and not at.exception
    at.switch_page("pages/activations.py").run()
    _tab(at, "act.tab", "One layer")
    assert not at.exception and at.selectbox(key="act.layer").value.startswith(base)
    at.switch_page("pages/convolution.py").run()
    assert not at.exception and at.success  # the nested first conv's arithmetic equals its feature map
    at.switch_page("pages/attribution.py").run()
    assert not at.exception
    assert at.selectbox(key="attr.layer").value == f"{base}/out_relu"
    assert any(
        c.startswith("Grad-CAM · class") and c.endswith(f"{base}/out_relu")
        for img in at.get("image")
        for c in img.captions
    )
