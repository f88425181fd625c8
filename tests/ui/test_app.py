"""AppTest: the router and the Model page, driven by widget keys like a person would."""

from __future__ import annotations

import urllib.error

import keras
import pytest
from helpers import ROOT, tiny_sequential
from streamlit.testing.v1 import AppTest

from vizcore import models

TIMEOUT = 120  # importing TensorFlow and building models takes seconds, not AppTest's default 3


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_first_start_opens_a_trained_bundled_model(app):
    assert app.radio(key="model.source").value == "bundled"
    assert app.selectbox(key="model.bundled").value == "mnist_cnn"
    expected = models.summary.summarize(models.open_bundled("mnist_cnn").model)
    assert _metric(app, "Parameters") == f"{expected.params:,}"
    assert _metric(app, "Conv layers") == "2"
    assert _metric(app, "Input") == "28×28×1"
    assert "MNIST CNN" in app.sidebar.markdown[0].value
    table = app.dataframe[0].value
    assert list(table["layer"])[:2] == ["conv1", "conv2"] and table["parameters"].sum() == expected.params
    assert not _errors(app)


def test_switching_models_carries_to_session_state(app):
    app.radio(key="model.source").set_value("preset").run()
    app.selectbox(key="model.preset").set_value("lenet5").run()
    assert not app.exception
    assert _metric(app, "Parameters") == "61,706"
    assert app.session_state["working_model"].name == "lenet5"
    app.radio(key="model.source").set_value("bundled").run()
    app.selectbox(key="model.bundled").set_value("shapes_cnn").run()
    assert _metric(app, "Input") == "64×64×3"
    assert "circle" in app.expander[0].markdown[0].value


def test_upload_good_and_bad_files(app, tmp_path):
    app.radio(key="model.source").set_value("upload").run()
    for name, content, expected in [
        ("broken.keras", b"", "empty (0 bytes)"),
        ("notes.keras", b"this is just text", "not a Keras model file"),
    ]:
        app.file_uploader(key="model.upload").set_value((name, content, "application/octet-stream")).run()
        assert not app.exception
        assert any(expected in e for e in _errors(app)), _errors(app)
        assert app.session_state["working_model"].kind == "bundled"  # the working model is kept
    tiny_sequential().save(tmp_path / "mine.keras")
    data = (tmp_path / "mine.keras").read_bytes()
    app.file_uploader(key="model.upload").set_value(("mine.keras", data, "application/octet-stream")).run()
    assert not app.exception and not _errors(app)
    assert app.session_state["working_model"].kind == "upload"
    assert _metric(app, "Input") == "12×12×1"
    assert _metric(app, "Head") == "softmax" and _metric(app, "Outputs") == "3"


def test_dense_only_upload_is_explained(app, tmp_path):
    inputs = keras.Input((16,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "mlp.keras")
    app.radio(key="model.source").set_value("upload").run()
    app.file_uploader(key="model.upload").set_value(
        ("mlp.keras", (tmp_path / "mlp.keras").read_bytes(), "application/octet-stream")
    ).run()
    assert not app.exception
    assert any("not images" in e for e in _errors(app))
    assert _metric(app, "Input") == "28×28×1"  # still the bundled MNIST model


def test_application_offline_offers_untrained(app, monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    app.radio(key="model.source").set_value("app").run()
    app.selectbox(key="model.app").set_value("MobileNetV2").run()
    app.button(key="model.app_load").click().run()
    assert not app.exception
    assert any(str(tmp_path / "models") in e for e in _errors(app)), _errors(app)
    app.button(key="model.app_untrained").click().run()
    assert not app.exception
    assert app.session_state["working_model"] == type(app.session_state["working_model"])("app", "MobileNetV2", None)
    assert _metric(app, "Input") == "224×224×3"
