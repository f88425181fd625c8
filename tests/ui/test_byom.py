"""Bring your own model, as a new user would: Teachable Machine's ZIPs and an old tf.keras .h5 through the pages.

AppTest drives the Model page's uploader itself (``at.file_uploader(...).set_value``). What the pages show
is checked against computations made here: the photo fitted with PIL's ``ImageOps.fit`` and scaled with
NumPy, the weights read from the HDF5 file with h5py.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile

import h5py
import numpy as np
import pytest
from helpers import FIXTURES, ROOT
from PIL import Image, ImageOps
from streamlit.testing.v1 import AppTest

from vizcore.data import images
from vizcore.models import loading

TIMEOUT = 300
TM_CLASSES = ("cat", "dog", "teapot")
TM_LAYER = "sequential_1/mobilenetv2_0.35_224/out_relu"  # the nested base's last activation


def tfjs_zip(replace: dict[str, bytes | None] | None = None) -> bytes:
    """Teachable Machine's TF.js download (model.json, weights.bin, metadata.json) as one ZIP;
    ``replace`` changes or drops files."""
    files = {p.name: p.read_bytes() for p in sorted((FIXTURES / "tm_tfjs").iterdir())}
    files.update(replace or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            if content is not None:
                zf.writestr(name, content)
    return buf.getvalue()


def converted_zip(labels: bytes) -> bytes:
    """Teachable Machine's converted_keras.zip with another labels.txt."""
    with zipfile.ZipFile(FIXTURES / "tm_converted_keras.zip") as zf:
        h5 = zf.read("keras_model.h5")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("keras_model.h5", h5)
        zf.writestr("labels.txt", labels)
    return buf.getvalue()


UPLOADS = {
    "converted_keras.zip": lambda: (FIXTURES / "tm_converted_keras.zip").read_bytes(),
    "tm_tfjs.zip": tfjs_zip,
}
ORIGIN = {"converted_keras.zip": "from: h5 (Teachable Machine)", "tm_tfjs.zip": "from: tfjs (Teachable Machine)"}


def _arr(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array {'dtype', 'bdata', 'shape'}."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return out.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else out
    return np.asarray(value)


def _figure(at: AppTest, title_part: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if title_part in json.dumps(spec.get("layout", {}).get("title", {})):
            return spec
    raise AssertionError(f"no figure titled like {title_part!r}")


def _top_predictions(at: AppTest) -> dict[str, float]:
    trace = _figure(at, "Top predictions")["data"][0]
    return dict(zip(_arr(trace["y"]).tolist(), _arr(trace["x"]).astype(float).tolist()))


def _captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions]


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value + "".join(e.stack_trace) for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def upload(name: str, content: bytes) -> AppTest:
    """A fresh session on the Model page with ``content`` uploaded as ``name``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/model.py")
    at.run()
    at.radio(key="model.source").set_value("upload").run()
    start = time.perf_counter()
    at.file_uploader(key="model.upload").set_value((name, content, "application/octet-stream")).run()
    print(
        f"\n{name}: the upload's run (loading and the Model page) took {time.perf_counter() - start:.1f} s"
    )  # pytest -s
    return at


def teachable_input(photo: str) -> np.ndarray:
    """Teachable Machine's own sample code: ImageOps.fit to 224x224 with Lanczos, then x / 127.5 - 1."""
    fitted = ImageOps.fit(Image.fromarray(images.load_sample_photos()[photo]), (224, 224), Image.Resampling.LANCZOS)
    return np.asarray(fitted, np.float32) / 127.5 - 1.0


@pytest.mark.parametrize("name", list(UPLOADS))
def test_a_teachable_machine_zip_through_every_page(name):
    content = UPLOADS[name]()
    at = upload(name, content)
    _ok(at)
    assert any(f"Loaded {name}" in s.value for s in at.success)
    # the Model page says what came with the file: class names, the [-1, 1] range, the centre crop
    assert at.text_area(key="model.class_text").value == "\n".join(TM_CLASSES)
    assert at.selectbox(key="model.range").value == "symmetric"
    caption = next(c.value for c in at.caption if "Default layer to explain" in c.value)
    assert "input range: `symmetric`" in caption and "fit: `crop`" in caption and ORIGIN[name] in caption, caption
    assert f"`{TM_LAYER}`" in caption
    assert not next(e for e in at.expander if e.label == "Input range and class names").proto.expanded  # nothing to ask
    model = loading.load_model(content, name=name)  # a second, separate copy of the model
    direct = model.predict(teachable_input("chelsea")[None], verbose=0)[0]
    preview = _top_predictions(at)  # the preview photo, chelsea, fitted like on every page
    np.testing.assert_allclose([preview[c] for c in TM_CLASSES], direct, rtol=1e-4, atol=1e-5)
    assert "3 classes" in at.sidebar.markdown[0].value and name in at.sidebar.markdown[0].value

    at.switch_page("pages/attribution.py").run()
    at.radio(key="input.source").set_value("photos").run()
    at.selectbox(key="input.photo").set_value("chelsea").run()
    _ok(at)
    assert at.selectbox(key="attr.layer").value == TM_LAYER
    shown = _top_predictions(at)
    assert set(shown) == set(TM_CLASSES)
    np.testing.assert_allclose([shown[c] for c in TM_CLASSES], direct, rtol=1e-4, atol=1e-5)
    squeezed = (
        np.asarray(Image.fromarray(images.load_sample_photos()["chelsea"]).resize((224, 224)), np.float32) / 127.5 - 1
    )
    assert np.abs(model.predict(squeezed[None], verbose=0)[0] - direct).max() > 1e-4  # the crop mattered
    top = TM_CLASSES[int(np.argmax(direct))]
    assert f"Grad-CAM · {top} · {TM_LAYER}" in _captions(at), _captions(at)
    assert any(c.startswith(f"Saliency · {top}") for c in _captions(at))
    assert any("centre-cropped and resized" in c.value for c in at.caption)

    at.switch_page("pages/kernels.py").run()
    _ok(at)
    assert at.selectbox(key="kernels.layer").value == "sequential_1/mobilenetv2_0.35_224/Conv1"
    assert at.get("image")
    at.switch_page("pages/activations.py").run()
    _ok(at)
    assert at.get("image") or at.get("plotly_chart")
    np.testing.assert_allclose(
        [_top_predictions(at)[c] for c in TM_CLASSES], direct, rtol=1e-4, atol=1e-5
    )  # the same photo


def test_a_bad_upload_keeps_the_teachable_model():
    at = upload("converted_keras.zip", UPLOADS["converted_keras.zip"]())
    _ok(at)
    working = at.session_state["working_model"]
    two = tfjs_zip({"keras_model.h5": zipfile.ZipFile(FIXTURES / "tm_converted_keras.zip").read("keras_model.h5")})
    at.file_uploader(key="model.upload").set_value(("two.zip", two, "application/zip")).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "'two.zip' holds 2 models (keras_model.h5, model.json); put one model in the ZIP."
    ]
    assert at.session_state["working_model"] == working
    assert "converted_keras.zip" in at.sidebar.markdown[0].value
    assert at.text_area(key="model.class_text").value == "\n".join(TM_CLASSES)
    at.switch_page("pages/attribution.py").run()
    assert not at.exception and at.selectbox(key="attr.layer").value == TM_LAYER


@pytest.mark.parametrize(
    "name, content, note",
    [
        (
            "two_labels.zip",
            lambda: converted_zip(b"0 cat\n1 dog\n"),
            "The class list of 'two_labels.zip' has 2 names but the model has 3 outputs, "
            "so the classes are numbered instead of named.",
        ),
        (
            "no_labels.zip",
            lambda: tfjs_zip({"metadata.json": json.dumps({"tmVersion": "2.4.7", "imageSize": 224}).encode()}),
            "'metadata.json' has no \"labels\" list, so the classes are numbered instead of named.",
        ),
    ],
)
def test_class_names_that_do_not_fit_give_a_note_and_numbered_classes(name, content, note):
    at = upload(name, content())
    _ok(at)
    assert [w.value for w in at.warning] == [note]
    numbered = tuple(f"class {i}" for i in range(3))
    assert at.text_area(key="model.class_text").value == "\n".join(numbered)
    assert next(e for e in at.expander if e.label == "Input range and class names").proto.expanded  # asks for names
    assert at.selectbox(key="model.range").value == "symmetric"  # still Teachable Machine: its range and crop
    assert set(_top_predictions(at)) == set(numbered)
    at.text_area(key="model.class_text").set_value("cat, dog, teapot").run()  # the person names them
    _ok(at)
    at.switch_page("pages/attribution.py").run()
    _ok(at)
    assert set(_top_predictions(at)) == set(TM_CLASSES)


def test_an_old_tf_keras_h5_through_the_pages():
    path = FIXTURES / "tfk2_sequential.h5"
    at = upload("tfk2_sequential.h5", path.read_bytes())
    _ok(at)
    caption = next(c.value for c in at.caption if "Default layer to explain" in c.value)
    assert "`conv_b`" in caption and "from: h5" in caption and "Teachable" not in caption
    assert next(m.value for m in at.metric if m.label == "Input") == "12×12×1"

    at.switch_page("pages/kernels.py").run()
    _ok(at)
    assert at.selectbox(key="kernels.layer").value == "conv_a"
    with h5py.File(path) as f:  # the kernel as tf.keras 2 wrote it
        group = f["model_weights/conv_a"]
        (kernel_path,) = [k for k in _walk(group) if k.endswith("kernel:0")]
        kernel = group[kernel_path][()]
    z = _arr(_figure(at, "Filter 0, input channel 0")["data"][0]["z"])
    np.testing.assert_allclose(z, kernel[:, :, 0, 0], rtol=1e-6)

    at.switch_page("pages/activations.py").run()
    _ok(at)
    assert at.get("image") and set(_top_predictions(at)) == {"class 0", "class 1", "class 2"}

    at.switch_page("pages/attribution.py").run()
    _ok(at)
    assert at.selectbox(key="attr.layer").value == "conv_b"
    assert any(c.startswith("Grad-CAM · class ") and c.endswith(" · conv_b") for c in _captions(at)), _captions(at)


def _walk(group, prefix: str = "") -> list[str]:
    out = []
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out += _walk(item, f"{prefix}{key}/")
        else:
            out.append(f"{prefix}{key}")
    return out
