"""The Dataset view as a Teachable Machine user tries it: their converted_keras.zip, then a ZIP of their class folders.

The class folders are crops of the bundled photos, written here with PIL. What the page shows is checked
against the model run here on the same images (Teachable Machine's own preprocessing, x / 127.5 - 1).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from helpers import FIXTURES, ROOT
from PIL import Image
from streamlit.testing.v1 import AppTest

from vizcore import models
from vizcore.data import images

TIMEOUT = 300
CLASSES = {"cat": "chelsea", "dog": "astronaut", "teapot": "coffee"}  # folder: the bundled photo its crops come from
PER_CLASS = 6
SIDE = 224


def _crops(photo: str) -> list[np.ndarray]:
    """PER_CLASS square crops of a bundled photo, each resized to SIDE x SIDE
    (what the archive reads back unchanged)."""
    img = Image.fromarray(images.load_sample_photos()[photo]).convert("RGB")
    w, h = img.size
    s = min(w, h) * 3 // 4
    out = []
    for i in range(PER_CLASS):
        x0, y0 = (w - s) * i // (PER_CLASS - 1), (h - s) * (PER_CLASS - 1 - i) // (PER_CLASS - 1)
        out.append(np.asarray(img.crop((x0, y0, x0 + s, y0 + s)).resize((SIDE, SIDE), Image.Resampling.BILINEAR)))
    return out


def _dataset_zip() -> tuple[bytes, np.ndarray, np.ndarray]:
    buf, xs, ys = io.BytesIO(), [], []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for label, (folder, photo) in enumerate(CLASSES.items()):
            for i, crop in enumerate(_crops(photo)):
                png = io.BytesIO()
                Image.fromarray(crop).save(png, format="PNG")
                zf.writestr(f"my_images/{folder}/{i}.png", png.getvalue())
                xs.append(crop)
                ys.append(label)
    return buf.getvalue(), np.stack(xs), np.array(ys)


def test_a_teachable_machine_model_over_a_zip_of_class_folders():
    data, x_uint8, y = _dataset_zip()
    tm_zip = (FIXTURES / "tm_converted_keras.zip").read_bytes()
    model = models.open_upload(tm_zip, "converted_keras.zip", "test")  # the loader alone, outside the app
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/model.py")
    at.run()
    at.radio(key="model.source").set_value("upload").run()
    at.file_uploader(key="model.upload").set_value(("converted_keras.zip", tm_zip, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert tuple(model.class_names) == tuple(CLASSES)

    at.switch_page("pages/dataset.py").run()
    at.radio(key="dataset.view").set_value("evaluate").run()
    at.selectbox(key="dataset.source").set_value("zip").run()
    at.file_uploader(key="dataset.zip").set_value(("my_images.zip", data, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(c.value.startswith(f"{len(y)} images of {len(y)} · 3 classes") for c in at.caption)

    # the evaluation equals the model run here on the same pixels, in Teachable Machine's range
    predicted = np.asarray(model.model.predict(x_uint8.astype(np.float32) / 127.5 - 1.0, verbose=0)).argmax(axis=1)
    assert not at.warning, [w.value for w in at.warning]
    table = at.dataframe[0].value
    assert list(table.iloc[:, 0]) == list(CLASSES)
    accuracy = float((predicted == y).mean())
    assert any(f"{accuracy:.2%}" in m.value for m in at.metric), [m.value for m in at.metric]

    # filter examples: the default layer's first filter shows its top images from this ZIP
    at.radio(key="dataset.view").set_value("examples").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c for img in at.get("image") for c in img.captions if c.startswith("Images: ")]
    assert captions and len(captions[0].split("#")) - 1 == 9

    # embedding: every image is a point; the atlas renders over it
    at.radio(key="dataset.view").set_value("embedding").run()
    assert not at.exception, [e.value for e in at.exception]
    at.slider(key="dataset.atlas_grid").set_value(2)
    at.number_input(key="dataset.atlas_min").set_value(1)
    at.number_input(key="dataset.atlas_steps").set_value(2).run()
    at.button(key="dataset.atlas_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [c for img in at.get("image") for c in img.captions if c.startswith("Activation atlas")]
