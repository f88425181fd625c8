"""The Model page's input range and class names: parsed right, hinted, and applied on every page."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import ROOT, tiny_functional
from streamlit.testing.v1 import AppTest

from vizcore.data import datasets, images
from vizcore.models import hints

TIMEOUT = 60


# --------------------------------------------------------------------------- vizcore.models.hints


@pytest.mark.parametrize(
    "text, names",
    [
        ("cat\ndog\nbird\n", ("cat", "dog", "bird")),
        ("cat, dog ,bird", ("cat", "dog", "bird")),
        ("0 cat\n1 hot dog\n2 bird", ("cat", "hot dog", "bird")),  # Teachable Machine's labels.txt
        ("\ufeff0 cat\r\n1 dog\r\n\r\n", ("cat", "dog")),
        ("7 up\n8 down", ("7 up", "8 down")),  # numbers that are not 0, 1, ... belong to the names
        ("1 one\n0 zero", ("1 one", "0 zero")),
        ("New York, NY\nParis", ("New York, NY", "Paris")),  # commas inside lines stay
        ("  \n", ()),
    ],
)
def test_parse_class_names(text, names):
    assert hints.parse_class_names(text) == names


def test_parse_class_names_reads_file_bytes():
    assert hints.parse_class_names("\ufeff0 chat\n1 café\n".encode("utf-8")) == ("chat", "café")


def _with_rescaling(scale: float, offset: float = 0.0, *, nested: bool = False) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(scale, offset=offset)(inputs)
    x = keras.layers.Conv2D(2, 3)(x)
    model = keras.Model(inputs, x)
    if nested:
        return keras.Sequential([keras.Input((8, 8, 3)), model, keras.layers.GlobalAveragePooling2D()])
    return model


def test_input_hint_from_a_rescaling_layer():
    assert hints.input_hint(_with_rescaling(1 / 255)) == "raw"
    assert hints.input_hint(_with_rescaling(1 / 127.5, -1.0, nested=True)) == "raw"
    assert hints.input_hint(_with_rescaling(2.0, -1.0)) is None  # [0, 1] -> [-1, 1]: not raw pixels
    assert hints.input_hint(tiny_functional(3)) is None


# --------------------------------------------------------------------------- the Model page


def _upload(tmp_path, model: keras.Model, name: str = "mine.keras") -> AppTest:
    model.save(tmp_path / name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/model.py").run()
    at.radio(key="model.source").set_value("upload").run()
    at.file_uploader(key="model.upload").set_value(
        (name, (tmp_path / name).read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    return at


def _top_predictions(at: AppTest) -> dict[str, float]:
    """The page's one "Top predictions" figure as {class name: probability}."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (trace,) = [s["data"][0] for s in specs if "Top predictions" in json.dumps(s["layout"].get("title", {}))]
    return dict(zip(trace["y"], trace["x"]))


def _preview_caption(at: AppTest) -> str:
    return next(c for i in at.get("image") for c in i.captions if "as the model sees it" in c)


def _activations_input_by_hand(model: keras.Model, mode_map) -> np.ndarray:
    """The Activations page's first input for a 3-channel model (shapes, class 0), mapped by ``mode_map``."""
    shapes = datasets.make_shapes(300, seed=7)
    i = int(np.flatnonzero(shapes.y == 0)[0])
    pixels = images.preprocess(np.rint(shapes.x_nhwc[i] * 255).astype(np.uint8), size=(12, 12), channels=3).display_hwc
    return model.predict(mode_map(pixels.astype(np.float32))[None], verbose=0)[0]


def test_range_and_class_names_chosen_on_the_model_page_apply_on_another_page(tmp_path):
    model = tiny_functional(channels=3, classes=3)
    at = _upload(tmp_path, model)
    options = next(e for e in at.expander if e.label == "Input range and class names")
    assert options.proto.expanded  # nothing says
    assert at.selectbox(key="model.range").value == "unit"
    assert [o.split(":")[0] for o in at.selectbox(key="model.range").options] == list(images.PREPROCESS_MODES)
    at.selectbox(key="model.range").set_value("symmetric").run()
    at.text_area(key="model.class_text").set_value("cat, dog, bird").run()
    assert not at.exception and not at.error
    assert any("input range: `symmetric`" in c.value for c in at.caption)
    preview = _top_predictions(at)
    assert set(preview) == {"cat", "dog", "bird"}

    at.switch_page("pages/activations.py").run()
    assert not at.exception
    shown = _top_predictions(at)
    expected = _activations_input_by_hand(model, lambda x: x / 127.5 - 1.0)
    assert set(shown) == {"cat", "dog", "bird"}
    np.testing.assert_allclose([shown[n] for n in ("cat", "dog", "bird")], expected, rtol=1e-4, atol=1e-6)
    unit = _activations_input_by_hand(model, lambda x: x / 255.0)
    assert np.abs(unit - expected).max() > 1e-3  # the range really changed what the model saw

    at.switch_page("pages/model.py").run()  # back: the page shows the choices that apply
    assert at.selectbox(key="model.range").value == "symmetric"
    assert at.text_area(key="model.class_text").value == "cat\ndog\nbird"
    at.button(key="model.options_reset").click().run()
    assert at.selectbox(key="model.range").value == "unit"
    assert at.text_area(key="model.class_text").value == "class 0\nclass 1\nclass 2"
    at.switch_page("pages/activations.py").run()
    shown = _top_predictions(at)
    np.testing.assert_allclose([shown[f"class {i}"] for i in range(3)], unit, rtol=1e-4, atol=1e-6)


def test_class_names_from_a_labels_file_and_a_wrong_count(tmp_path):
    at = _upload(tmp_path, tiny_functional(channels=1, classes=3))
    assert [o.split(":")[0] for o in at.selectbox(key="model.range").options] == [
        "unit",
        "symmetric",
        "raw",
    ]  # no ImageNet RGB modes
    at.text_area(key="model.class_text").set_value("only\ntwo").run()
    assert any("2 class name(s) for 3 outputs" in e.value for e in at.error)
    assert "model_options" not in at.session_state or not at.session_state["model_options"]
    at.file_uploader(key="model.class_file").set_value(("labels.txt", b"0 zero\n1 one\n2 two\n", "text/plain")).run()
    assert not at.exception and not at.error
    assert at.text_area(key="model.class_text").value == "zero\none\ntwo"
    at.switch_page("pages/activations.py").run()
    assert set(_top_predictions(at)) == {"zero", "one", "two"}
    assert "3 classes" in at.sidebar.markdown[0].value


def test_a_rescaling_layer_is_hinted(tmp_path):
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(2, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    at = _upload(tmp_path, model)
    assert any("`Rescaling` layer before its first convolution" in c.value for c in at.caption)
    pixels = images.preprocess(images.load_sample_photos()["chelsea"], size=(12, 12), channels=3).display_hwc.astype(
        np.float32
    )
    lo, hi = pixels.min(), pixels.max()
    assert at.selectbox(key="model.range").value == "raw"  # the hint is applied on upload: raw pixels
    assert f"values {lo:.3g} to {hi:.3g} (`raw`)" in _preview_caption(at)
    at.selectbox(key="model.range").set_value("unit").run()
    assert not at.exception
    assert f"values {lo / 255:.3g} to {hi / 255:.3g} (`unit`)" in _preview_caption(at)


def test_a_bundled_model_keeps_its_own_range_unless_changed():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert not next(e for e in at.expander if e.label == "Input range and class names").proto.expanded  # the card says
    assert at.selectbox(key="model.range").value == "unit"
    assert set(_top_predictions(at)) <= set("0123456789")
    assert "model_options" not in at.session_state or not at.session_state["model_options"]
