"""Export: model.keras + labels.txt + metadata.json reopen through the real upload path, model.tflite through TFLite."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from helpers import FIXTURES

from vizcore import models, transfer

GREY_NOTE = "1 grey image was converted to colour (the grey channel repeated), as this colour base takes colour."


@pytest.fixture(scope="module")
def taught(digits_base, few):
    return transfer.teach(digits_base, few[0], transfer.TeachSettings(epochs=5))


def zipped(paths) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in paths:
            zf.write(path, path.name)
    return buffer.getvalue()


def test_the_keras_bundle_reopens_with_the_same_names_preprocessing_and_predictions(taught, few, tmp_path):
    paths = transfer.export(taught.loaded, tmp_path, ("keras",))
    assert [p.name for p in paths] == ["model.keras", "labels.txt", "metadata.json"]
    assert (tmp_path / "labels.txt").read_text() == "0 5\n1 6\n2 7\n3 8\n4 9\n"  # Teachable Machine's lines
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["labels"] == list("56789") and meta["imageSize"] == 28
    assert (meta["preprocess"], meta["fit"]) == ("unit", "stretch")
    reopened = models.open_upload(zipped(paths), "taught.zip", "upload:taught")  # what the Model page's upload does
    assert reopened.class_names == tuple("56789") and (reopened.preprocess, reopened.fit) == ("unit", "stretch")
    held_out = few[1].x_nhwc[:200]
    expected = taught.model.predict(held_out, verbose=0)
    np.testing.assert_allclose(reopened.model.predict(held_out, verbose=0), expected, atol=1e-6)


def test_the_tflite_model_gives_the_same_top_1(taught, few, tmp_path):
    (path,) = transfer.export(taught.loaded, tmp_path, ("tflite",))
    interpreter = tf.lite.Interpreter(model_path=str(path))
    images = few[1].x_nhwc[:64]
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    keras_probs = taught.model.predict(images, verbose=0)
    np.testing.assert_array_equal(lite.argmax(axis=1), keras_probs.argmax(axis=1))
    np.testing.assert_allclose(lite, keras_probs, atol=1e-4)


def test_unknown_formats_are_refused(taught, tmp_path):
    with pytest.raises(ValueError, match="tfjs"):
        transfer.export(taught.loaded, tmp_path, ("tfjs",))


def photos(rng, colour, n, size=(200, 300)):
    """n 'photos' of one dominant colour with noise, 300x200, uint8."""
    base = np.array(colour, np.float32)
    return [np.clip(base + rng.normal(0, 40, (*size, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def test_a_teachable_machine_upload_is_a_base_and_its_crop_and_range_travel_with_the_export():
    tm = models.open_upload((FIXTURES / "tm_converted_keras.zip").read_bytes(), "converted_keras.zip", "upload:tm")
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (180, 240), dtype=np.uint8)  # a grey photo for a colour base
    classes = [
        ("red", photos(rng, (220, 40, 40), 3)),
        ("green", photos(rng, (40, 200, 60), 3) + [grey]),
        ("blue", photos(rng, (40, 60, 220), 3)),
    ]
    dataset, notes = transfer.dataset_from_classes(classes, tm)
    assert dataset.x_nhwc.shape == (10, 224, 224, 3) and dataset.x_nhwc.dtype == np.uint8
    assert notes == (GREY_NOTE, "10 images were centre-cropped and resized to the base's 224x224 input.")
    result = transfer.teach(tm, dataset, transfer.TeachSettings(epochs=30, validation_fraction=0))
    assert result.feature_layer == "sequential_1/mobilenetv2_0.35_224/out_relu"  # the nested MobileNet, pooled
    assert result.model.get_layer("teach_hidden").kernel.shape == (1280, 100)
    assert (result.loaded.preprocess, result.loaded.fit) == ("symmetric", "crop")
    reopened = models.open_upload(transfer.bundle_zip(result.loaded), "my_model.zip", "upload:mine")
    assert (reopened.preprocess, reopened.fit, reopened.class_names) == ("symmetric", "crop", ("red", "green", "blue"))
    assert not reopened.origin["teachable_machine"]  # its own metadata says how it takes images
    photo = classes[2][1][0]  # a blue training photo at its own 300x200 (the fixture's base is untrained)
    x_then, x_now = result.loaded.prepare(photo).image_hwc, reopened.prepare(photo).image_hwc
    np.testing.assert_array_equal(x_then, x_now)
    then, now = result.model.predict(x_then[None], verbose=0), reopened.model.predict(x_now[None], verbose=0)
    np.testing.assert_allclose(now, then, atol=1e-5)
    assert then.argmax() == 2 and result.history["accuracy"][-1] == 1.0
