"""Costly work on demand: nothing costly runs until Run is pressed, results persist, an input change clears them.

The bundled MNIST CNN is cheap enough for every method to run live, so the tests lower the
threshold to 0 s: then every method that costs more than one pass waits for its button.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from helpers import ROOT, kept
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.attribution import gradcam, scorecam
from vizcore.data import datasets
from vizcore.models import blocks

TIMEOUT = 240
scorecam_module = importlib.import_module("vizcore.attribution.scorecam")


@pytest.fixture
def costly(monkeypatch):
    """Every method above one pass waits for its button; counts Score-CAM's per-image computations."""
    from pages import _attribution_parts

    monkeypatch.setattr(_attribution_parts, "ON_DEMAND_SECONDS", 0.0)
    calls = []
    inner = scorecam_module._one

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(scorecam_module, "_one", counted)
    return calls


def _attribution(methods: list[str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/attribution.py").run()
    at.multiselect(key="attr.methods").set_value(methods).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _captions(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def _first_digit() -> np.ndarray:
    ds = datasets.load_mnist_sample()
    return ds.x_nhwc[np.flatnonzero(ds.y == 0)[0]]


def test_costly_method_waits_for_run_then_persists_until_an_input_changes(costly):
    at = _attribution(["Grad-CAM", "Score-CAM"])
    assert not costly, "Score-CAM ran before its button was pressed"
    captions = _captions(at)
    assert any(c.startswith("Grad-CAM ·") for c in captions)  # cheap: live
    assert not any(c.startswith("Score-CAM ·") for c in captions)
    assert any("Score-CAM: 65 forward passes, about" in c.value for c in at.caption)  # the cost, before running

    at.button(key="attr.run.Score-CAM.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(costly) == 1
    assert any(c.startswith("Score-CAM ·") for c in _captions(at))
    heat = kept(at, "attr.run.Score-CAM").value
    target, layer = at.selectbox(key="attr.target").value, at.selectbox(key="attr.layer").value

    at.selectbox(key="attr.cmap").set_value("gray").run()  # a display change: the result stays, nothing reruns
    assert len(costly) == 1 and any(c.startswith("Score-CAM ·") for c in _captions(at))

    at.selectbox(key="attr.target").set_value((target + 1) % 10).run()  # an input change: the result goes
    assert len(costly) == 1
    assert not any(c.startswith("Score-CAM ·") for c in _captions(at))
    assert at.button(key="attr.run.Score-CAM.run") is not None
    assert kept(at, "attr.run.Score-CAM") is None
    model = models.open_bundled("mnist_cnn").model  # the kept map is Score-CAM's (computed here, after the counting)
    np.testing.assert_allclose(heat, scorecam(model, _first_digit(), target=target, layer=layer), atol=1e-6)


def _open(at: AppTest, tab: str) -> None:
    at.session_state["attr.tab"] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_hidden_tabs_compute_nothing(costly, monkeypatch):
    from pages import _faithfulness

    curves = []
    monkeypatch.setattr(_faithfulness, "_curves", lambda *a: curves.append(a) or {})
    at = _attribution(["Grad-CAM", "Score-CAM"])
    _attribution_parts = importlib.import_module("pages._attribution_parts")
    monkeypatch.setattr(
        _attribution_parts, "ON_DEMAND_SECONDS", 1e9
    )  # everything live now: only the open tab may compute
    at.selectbox(key="attr.target").set_value(3).run()
    assert not curves and len(costly) == 1  # Score-CAM live in Maps; no curves in the hidden Faithfulness tab
    assert kept(at, "attr.sweep") is None
    _open(at, "Faithfulness & sanity")
    assert len(curves) == 1 and kept(at, "attr.sweep") is None


def test_layer_sweep_and_curves_wait_for_their_buttons(costly):
    at = _attribution(["Grad-CAM"])
    titles = lambda: [c.proto.spec for c in at.get("plotly_chart")]  # noqa: E731
    _open(at, "Faithfulness & sanity")
    assert not any('"Deletion"' in t for t in titles())
    assert kept(at, "faith.curves") is None and kept(at, "attr.sweep") is None
    at.button(key="faith.curves.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any('"Deletion"' in t for t in titles())
    _open(at, "Layer sweep")
    at.button(key="attr.sweep.run").click().run()
    assert kept(at, "attr.sweep") is not None
    heats = kept(at, "attr.sweep").value
    model = models.open_bundled("mnist_cnn").model
    assert tuple(heats) == blocks.sweep_layers(model) and len(heats) >= 2
    target = at.selectbox(key="attr.target").value
    for layer, heat in heats.items():
        np.testing.assert_allclose(heat, gradcam(model, _first_digit(), target=target, layer=layer), atol=1e-6)
    at.slider(key="attr.alpha").set_value(0.3).run()  # both stay on a display change
    _open(at, "Faithfulness & sanity")
    assert any('"Deletion"' in t for t in titles()) and kept(at, "attr.sweep") is not None
    at.slider(key="faith.steps").set_value(15).run()  # the curves' input changed: they go, the sweep stays
    assert not any('"Deletion"' in t for t in titles())
    assert kept(at, "attr.sweep") is not None


def test_cheap_methods_stay_live_without_buttons():
    at = _attribution(["Grad-CAM", "Saliency", "Score-CAM"])  # on the MNIST CNN, all three are cheap
    captions = _captions(at)
    assert all(any(c.startswith(f"{m} ·") for c in captions) for m in ("Grad-CAM", "Saliency", "Score-CAM"))
    keys = [b.key for b in at.button]
    assert not any(k and k.startswith("attr.run.") for k in keys)


def test_occlude_by_hand_follows_a_box_and_clears():
    at = _attribution(["Grad-CAM"])
    _open(at, "Occlude by hand")
    model = models.open_bundled("mnist_cnn").model
    x, target = _first_digit(), at.selectbox(key="attr.target").value
    whole = model(x[None], training=False).numpy()[0, target]
    metric = lambda: next(m for m in at.metric if m.label.startswith("P("))  # noqa: E731
    assert metric().value == f"{whole:.1%}"
    # what st.plotly_chart returns after a drag from (x 5, y 5) to (x 20, y 20): AppTest cannot drag
    at.session_state["attr.occ.image"] = {
        "selection": {"points": [], "point_indices": [], "box": [{"x": [5, 20], "y": [5, 20]}], "lasso": []}
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    hand = x.copy()
    hand[5:21, 5:21] = 0.0  # the pixels whose centres are inside the box, filled with 0
    occluded = model(hand[None], training=False).numpy()[0, target]
    assert abs(occluded - whole) > 0.01  # the box matters for this digit
    assert metric().value == f"{occluded:.1%}"
    at.selectbox(key="attr.cmap").set_value("gray").run()  # the box stays on other changes
    assert metric().value == f"{occluded:.1%}"
    at.button(key="attr.occ.clear").click().run()
    assert metric().value == f"{whole:.1%}"
