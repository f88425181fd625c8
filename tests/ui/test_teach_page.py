"""AppTest of the Teach page: cards, one sentence for bad input, a run on the working model, results, Explore."""

from __future__ import annotations

import json
import time
import urllib.error

import numpy as np
import pytest
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore.data import datasets


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/teach.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _fill(at: AppTest, per_class: int = 15) -> None:
    """Photos collected on the cards: digits 0 and 1 of the bundled sample (as an upload would add them)."""
    ds = datasets.load_mnist_sample()
    for card, digit in zip(at.session_state["teach.classes"], (0, 1)):
        idx = np.flatnonzero(ds.y == digit)[:per_class]
        card["images"].extend(ds.pixels(int(i)) for i in idx)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_two_empty_cards_then_one_sentence_per_problem():
    at = _page()
    assert [c["name"] for c in at.session_state["teach.classes"]] == ["Class 1", "Class 2"]
    at.radio(key="teach.base_source").set_value("working").run()
    at.button(key="teach.train").click().run()
    assert _errors(at) == ["The class 'Class 1' has no images; add some, or remove the class."]
    _fill(at)
    at.text_input(key="teach.name.2").set_value("class 1").run()
    at.button(key="teach.train").click().run()
    assert _errors(at) == ["Two classes are named 'class 1'; give each class its own name."]
    at.button(key="teach.drop.2").click().run()
    at.button(key="teach.train").click().run()
    assert _errors(at) == ["Teaching needs at least 2 classes, each with images; add another class."]
    assert len(at.session_state["teach.classes"][0]["images"]) == 15  # nothing collected was lost


def test_offline_the_page_names_the_weights_file_and_offers_the_bases_at_hand(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    at = _page()
    assert at.radio(key="teach.base_source").value == "tm"  # Teachable Machine's base is the default
    message = " ".join(_errors(at))
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5" in message
    assert str(tmp_path / "keras_home" / "models") in message
    assert any("an uploaded model" in i.value for i in at.info)
    assert at.button(key="teach.train").disabled


def test_teach_on_the_working_model_see_results_and_explore_it():
    at = _page()
    from pages import _choice, _working  # the modules the app imported: their cache holds the shared model

    shared = _working.open_choice(_choice.Choice("bundled", "mnist_cnn")).model
    before = [w.copy() for w in shared.get_weights()]
    _fill(at)
    at.radio(key="teach.base_source").set_value("working").run()
    at.number_input(key="teach.epochs").set_value(40).run()
    at.slider(key="teach.val").set_value(0.2).run()
    at.button(key="teach.train").click().run()
    assert not at.exception and not _errors(at), (_errors(at), [e.value for e in at.exception])
    run = at.session_state["teach.run"]
    assert run.job.wait(120)
    at.run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert run.result.status == "completed" and len(run.result.history["loss"]) == 40
    titles = [json.dumps(json.loads(c.proto.spec)["layout"].get("title", {})) for c in at.get("plotly_chart")]
    assert any("Loss" in t for t in titles) and any("Confusion matrix" in t for t in titles)
    assert any("Accuracy per class" in t for t in titles)
    accuracy = float(next(m.value for m in at.metric if m.label == "Validation accuracy").rstrip("%")) / 100
    assert accuracy >= 0.75  # 0 against 1 from a digit network's features
    at.button(key="teach.explore").click().run()
    choice = at.session_state["working_model"]
    assert choice.kind == "trained" and choice.name == run.result.loaded.key
    assert any("is now the working model" in s.value for s in at.success)
    for page in ("model", "kernels", "activations", "attribution", "filters", "dataset"):  # it opens everywhere
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.session_state["working_model"] == choice
    for a, b in zip(before, shared.get_weights()):  # teaching worked on a copy
        np.testing.assert_array_equal(a, b)


@pytest.fixture(autouse=True)
def _no_leftover_runs():
    yield
    time.sleep(0)  # runs end on their own (few epochs); nothing to clean
