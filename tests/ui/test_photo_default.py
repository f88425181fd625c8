"""A photo model (colour, 224x224: Teachable Machine, ImageNet) opens the input pickers on the sample photos."""

from __future__ import annotations

from helpers import FIXTURES, ROOT
from streamlit.testing.v1 import AppTest
from test_byom import _ok, upload

from pages import _picker
from vizcore.models.graph import InputSpec


def test_which_models_take_photos():
    assert _picker.photo_model(InputSpec(224, 224, 3)) and _picker.photo_model(InputSpec(None, None, 3))
    assert not _picker.photo_model(InputSpec(64, 64, 3))  # the shapes CNN: generated shapes
    assert not _picker.photo_model(InputSpec(32, 32, 3)) and not _picker.photo_model(InputSpec(224, 224, 1))


def test_a_teachable_machine_model_first_meets_a_photo_and_a_digit_model_a_digit():
    at = upload("converted_keras.zip", (FIXTURES / "tm_converted_keras.zip").read_bytes())
    _ok(at)
    for page in ("activations", "attribution", "convolution"):  # on every page, not only the first
        at.switch_page(f"pages/{page}.py").run()
        _ok(at)
        assert at.radio(key="input.source").value == "photos", page
        assert at.selectbox(key="input.photo").value == "chelsea"
    at.session_state["dataset.limit"] = 20
    at.switch_page("pages/dataset.py").run()
    _ok(at)
    assert at.selectbox(key="dataset.source").value == "photos"
    at.switch_page("pages/model.py").run()  # back to a digit model: its pickers open on the digits again
    at.radio(key="model.source").set_value("bundled").run()
    at.selectbox(key="model.bundled").set_value("mnist_cnn").run()
    at.switch_page("pages/activations.py").run()
    _ok(at)
    assert at.radio(key="input.source").value == "data"


def test_an_imagenet_network_by_deep_link_opens_on_a_photo():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["model"] = "app:MobileNetV2:none"
    at.switch_page("pages/attribution.py").run()
    _ok(at)
    assert at.radio(key="input.source").value == "photos"
    at2 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at2.query_params.update({"model": "app:MobileNetV2:none", "input": "data"})  # a link that names the source wins
    at2.switch_page("pages/attribution.py").run()
    _ok(at2)
    assert at2.radio(key="input.source").value == "data"


def test_a_chosen_input_source_stays_when_the_page_changes():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.switch_page("pages/activations.py").run()
    at.radio(key="input.source").set_value("upload").run()
    for page in ("attribution", "convolution"):  # each page's radio is a new widget: it must not start afresh
        at.switch_page(f"pages/{page}.py").run()
        _ok(at)
        assert at.radio(key="input.source").value == "upload", page
