"""The inputs people have: bundled sample photos, several uploads at once, a webcam snapshot."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image
from streamlit.testing.v1 import AppTest

from pages import _picker
from vizcore import models
from vizcore.data import datasets, images
from vizcore.errors import ImageLoadError

TIMEOUT = 60
PHOTOS = images.SAMPLE_PHOTOS_DIR


@pytest.fixture(scope="module")
def shapes_cnn():
    return models.open_bundled("shapes_cnn").model


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _app(page: str, model: str = "bundled:shapes_cnn") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["model"] = model
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _top_predictions(at: AppTest) -> dict[str, float]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (trace,) = [s["data"][0] for s in specs if "Top predictions" in json.dumps(s["layout"].get("title", {}))]
    return dict(zip(trace["y"], trace["x"]))


def _by_hand(model, image: np.ndarray) -> dict[str, float]:
    """The shapes CNN's probabilities for an image: resized to 64x64 by Pillow, x / 255."""
    resized = np.asarray(Image.fromarray(image).resize((64, 64), Image.Resampling.BILINEAR, reducing_gap=3.0))
    probs = model.predict((resized.astype(np.float32) / 255.0)[None], verbose=0)[0]
    return dict(zip(datasets.SHAPE_CLASSES, probs.tolist()))


def _assert_same(shown: dict[str, float], expected: dict[str, float]) -> None:
    assert set(shown) <= set(expected)
    for name, p in shown.items():
        assert p == pytest.approx(expected[name], rel=1e-4, abs=1e-6), (name, p, expected[name])


# --------------------------------------------------------------------------- the bundled photos


def test_sample_photos_are_colour_small_and_licensed():
    photos = images.load_sample_photos()
    assert list(photos) == ["astronaut", "chelsea", "coffee", "rocket"]
    readme = (PHOTOS.parent / "README.md").read_text()
    total = 0
    for name, image in photos.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) == 224
        assert not image.flags.writeable
        spread = np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)).mean()
        assert spread > 5, f"{name} looks grey"  # real colour photos
        total += (PHOTOS / f"{name}.jpg").stat().st_size
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}.jpg`"))
        assert re.search(r"CC0|public domain", row), row
    assert total < 300_000
    assert photos is images.load_sample_photos()  # read once


def test_sample_photos_in_the_picker_for_colour_models_only(shapes_cnn):
    at = _app("pages/activations.py")
    assert at.radio(key="input.source").options == ["Bundled data", "Sample photos", "Upload images", "Camera"]
    at.radio(key="input.source").set_value("photos").run()
    assert at.selectbox(key="input.photo").value == "chelsea"
    at.selectbox(key="input.photo").set_value("coffee").run()
    assert not at.exception
    assert any("sample photo: coffee" in c for i in at.get("image") for c in i.captions)
    _assert_same(_top_predictions(at), _by_hand(shapes_cnn, images.load_sample_photos()["coffee"]))
    digits = _app("pages/activations.py", "bundled:mnist_cnn")
    assert digits.radio(key="input.source").options == ["Bundled data", "Upload images", "Camera", "Draw"]


# --------------------------------------------------------------------------- several uploads


def test_several_images_uploaded_at_once_make_a_gallery(shapes_cnn):
    red = np.zeros((40, 40, 3), np.uint8)
    red[8:32, 8:32] = (230, 30, 30)
    blue = np.full((30, 50, 3), 60, np.uint8)
    blue[5:25, 10:40] = (20, 40, 220)
    at = _app("pages/activations.py")
    at.radio(key="input.source").set_value("upload").run()
    assert at.file_uploader(key="input.upload").accept_multiple_files
    at.file_uploader(key="input.upload").set_value(
        [("red.png", _encoded(red, "PNG"), "image/png"), ("blue.png", _encoded(blue, "PNG"), "image/png")]
    ).run()
    assert not at.exception and not at.error
    gallery = next(i for i in at.get("image") if len(i.captions) == 2)
    assert list(gallery.captions) == ["red.png", "blue.png"]
    pick = at.selectbox(key="input.upload_pick")
    assert pick.options == ["red.png", "blue.png"] and pick.index == 1  # the newest upload is shown
    blue_shown = _top_predictions(at)
    _assert_same(blue_shown, _by_hand(shapes_cnn, blue))
    pick.select_index(0).run()
    assert not at.exception
    _assert_same(_top_predictions(at), _by_hand(shapes_cnn, red))
    at.switch_page("pages/attribution.py").run()  # the gallery and the choice stay in the session
    at.radio(key="input.source").set_value("upload").run()
    assert not at.exception
    assert at.selectbox(key="input.upload_pick").index == 0 and at.selectbox(key="input.upload_pick").options == [
        "red.png",
        "blue.png",
    ]
    assert any(c.startswith("Grad-CAM ·") for i in at.get("image") for c in i.captions)


def test_a_bad_file_among_good_ones_is_named_and_the_rest_work(shapes_cnn):
    good = np.full((20, 20, 3), 128, np.uint8)
    at = _app("pages/activations.py")
    at.radio(key="input.source").set_value("upload").run()
    at.file_uploader(key="input.upload").set_value(
        [("good.png", _encoded(good, "PNG"), "image/png"), ("notes.png", b"just some text", "image/png")]
    ).run()
    assert not at.exception
    assert any("notes.png" in e.value for e in at.error)
    assert at.selectbox(key="input.upload_pick").options == ["good.png"]
    _assert_same(_top_predictions(at), _by_hand(shapes_cnn, good))


# --------------------------------------------------------------------------- the webcam


def test_camera_shot_handler_reads_a_jpeg():
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 30)
    raw = _encoded(rgb, "JPEG")
    digest, image = _picker.camera_shot(raw)
    assert image.shape == (48, 64, 3) and len(digest) == 12
    assert np.abs(image.astype(int) - rgb.astype(int)).mean() < 4  # JPEG is lossy, not that lossy
    with pytest.raises(ImageLoadError, match="camera snapshot"):
        _picker.camera_shot(b"")


def test_a_webcam_snapshot_leads_to_predictions_activations_and_grad_cam(shapes_cnn):
    shot = np.full((48, 64, 3), 70, np.uint8)
    shot[10:40, 20:50] = (240, 200, 20)
    raw = _encoded(shot, "JPEG")
    at = _app("pages/activations.py")
    at.radio(key="input.source").set_value("camera").run()
    assert any("take a photo" in c.value for c in at.caption)
    at.camera_input(key="input.camera").set_value(("shot.jpg", raw, "image/jpeg")).run()
    assert not at.exception and not at.error
    assert any("your camera snapshot" in c for i in at.get("image") for c in i.captions)
    decoded = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    _assert_same(_top_predictions(at), _by_hand(shapes_cnn, decoded))
    at.switch_page("pages/attribution.py").run()
    at.radio(key="input.source").set_value("camera").run()  # the snapshot stays in the session
    assert not at.exception
    assert any(c.startswith("Grad-CAM ·") for i in at.get("image") for c in i.captions)
