"""Teachable Machine's preprocessing (centre-crop fit, [-1, 1]), input_hint, and ImageNet class names offline."""

from __future__ import annotations

import json
import urllib.error

import keras
import numpy as np
import pytest
from PIL import Image, ImageOps

from vizcore import models
from vizcore.data import images
from vizcore.errors import WeightsUnavailableError
from vizcore.models import hints


def _photo() -> np.ndarray:
    """A 300x180 (WxH) picture: red 40-pixel stripes left and right, a gradient between."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (180, 300, 3), dtype=np.uint8)
    image[:, :40] = image[:, -40:] = (255, 0, 0)
    return image


def test_crop_is_teachable_machines_sample_code():
    image = _photo()
    out = images.preprocess(image, size=(224, 224), channels=3, mode="symmetric", crop=True)
    # Teachable Machine's python sample: ImageOps.fit(image, (224, 224), LANCZOS), then x / 127.5 - 1
    reference = (
        np.asarray(ImageOps.fit(Image.fromarray(image), (224, 224), Image.Resampling.LANCZOS), np.float32) / 127.5 - 1
    )
    np.testing.assert_allclose(out.image_hwc, reference, atol=1e-6)
    assert out.notes == ("centre-cropped and resized 300x180 to 224x224 (Teachable Machine's fit)",)
    red = (out.display_hwc[..., 0] > 250) & (out.display_hwc[..., 1] < 5)
    assert red.mean() < 0.01  # the stripes at the sides were cropped away, not squeezed in


def test_a_loaded_model_prepares_an_image_by_its_fit():
    inputs = keras.Input((224, 224, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3)(inputs))
    image = _photo()
    reference = (
        np.asarray(ImageOps.fit(Image.fromarray(image), (224, 224), Image.Resampling.LANCZOS), np.float32) / 127.5 - 1
    )
    cropped = models.LoadedModel(model, "k", "m", ("a",), "symmetric", fit="crop").prepare(image)
    np.testing.assert_allclose(cropped.image_hwc, reference, atol=1e-6)
    stretched = models.LoadedModel(model, "k", "m", ("a",), "unit").prepare(image)
    squeezed = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BILINEAR), np.float32) / 255
    assert np.abs(stretched.image_hwc - reference).max() > 0.5 and stretched.image_hwc.min() >= 0
    assert np.abs(stretched.image_hwc[:, :20] - squeezed[:, :20]).max() < 0.05  # the red stripes squeezed in, not cut


def test_crop_and_keep_aspect_are_exclusive():
    with pytest.raises(ValueError, match="crop and keep_aspect"):
        images.preprocess(_photo(), size=(32, 32), channels=3, crop=True, keep_aspect=True)


def _cnn(*front):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for layer in front:
        x = layer(x)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def test_input_hint():
    assert hints.input_hint(_cnn(keras.layers.Rescaling(1 / 255))) == "raw"
    assert hints.input_hint(_cnn()) is None
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    late = keras.layers.Rescaling(2.0)(
        keras.layers.Conv2D(2, 3)(inputs)
    )  # after the first conv: says nothing of the input
    assert hints.input_hint(keras.Model(inputs, late)) is None
    nested = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.Sequential([keras.layers.Rescaling(1 / 127.5, offset=-1)]),
            keras.layers.Conv2D(2, 3),
        ]
    )
    assert hints.input_hint(nested) == "raw"


@pytest.fixture
def empty_keras_home(monkeypatch, tmp_path):
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home" / "models"


def test_imagenet_class_names_offline_name_the_file_and_folder(monkeypatch, empty_keras_home):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        models.applications.fetch_imagenet_class_names()
    assert "imagenet_class_index.json" in str(info.value) and str(empty_keras_home) in str(info.value)
    untrained = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    monkeypatch.setattr(models.applications, "load_application", lambda name, weights: untrained)
    loaded = models.open_application("MobileNetV2", weights="imagenet")
    assert loaded.class_names[:2] == ("class 0", "class 1") and len(loaded.notes) == 1
    assert str(empty_keras_home) in loaded.notes[0]


def test_imagenet_class_index_downloaded_once_into_the_cache(monkeypatch, empty_keras_home):
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir))
        empty_keras_home.mkdir(parents=True, exist_ok=True)
        index = {str(i): [f"n{i:08d}", f"name_{i}"] for i in range(1000)}
        (empty_keras_home / fname).write_text(json.dumps(index))
        return str(empty_keras_home / fname)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    untrained = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    monkeypatch.setattr(models.applications, "load_application", lambda name, weights: untrained)
    first = models.open_application("MobileNetV2", weights="imagenet")
    second = models.open_application("MobileNetV2", weights="imagenet")
    assert first.class_names[999] == second.class_names[999] == "name_999" and first.notes == ()
    assert calls == [("imagenet_class_index.json", models.applications.IMAGENET_CLASS_INDEX_URL, "models")]
