"""Model ZIPs and the class names, preprocessing and fit that travel with a model (open_upload)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from helpers import FIXTURES

from vizcore import models
from vizcore.errors import ModelLoadError
from vizcore.models import bundles

TM_ZIP = FIXTURES / "tm_converted_keras.zip"
TM_LABELS = ("cat", "dog", "teapot")


def _zip(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tfjs_entries(prefix="", **replace) -> dict:
    entries = {prefix + p.name: p.read_bytes() for p in (FIXTURES / "tm_tfjs").iterdir()}
    entries.update({prefix + k.replace("_", "."): v for k, v in replace.items()})
    return {k: v for k, v in entries.items() if v is not None}


def _tm_h5() -> bytes:
    return zipfile.ZipFile(TM_ZIP).read("keras_model.h5")


def test_converted_keras_zip_opens_as_teachable_machine():
    loaded = models.open_upload(TM_ZIP.read_bytes(), "converted_keras.zip", "upload:tm")
    assert loaded.class_names == TM_LABELS
    assert (loaded.preprocess, loaded.fit) == ("symmetric", "crop")
    assert loaded.origin["format"] == "h5" and loaded.origin["teachable_machine"] and loaded.notes == ()
    expected = np.load(FIXTURES / "tm_expected.npz")
    np.testing.assert_allclose(loaded.model.predict(expected["x"], verbose=0), expected["probs"], atol=2e-5)


def test_tfjs_zip_in_a_folder_brings_labels_and_image_size():
    loaded = models.open_upload(_zip(_tfjs_entries("my-model/")), "tm-my-image-model.zip", "upload:tfjs")
    assert loaded.class_names == TM_LABELS and loaded.origin == {
        "format": "tfjs",
        "teachable_machine": True,
        "image_size": 224,
    }
    assert (loaded.preprocess, loaded.fit) == ("symmetric", "crop")


def test_bare_keras_model_h5_is_recognised_by_its_head():
    loaded = models.open_upload(_tm_h5(), "keras_model.h5", "upload:h5")
    assert loaded.class_names == ("class 0", "class 1", "class 2")
    assert (loaded.preprocess, loaded.fit) == ("symmetric", "crop")


@pytest.mark.parametrize(
    "labels", [list(TM_LABELS), "0 cat\n1 dog\n2 teapot\n", json.dumps({"labels": list(TM_LABELS)}).encode()]
)
def test_a_class_list_uploaded_alongside(labels):
    loaded = models.open_upload(_tm_h5(), "keras_model.h5", "upload:h5", labels=labels)
    assert loaded.class_names == TM_LABELS and loaded.notes == ()


def test_labels_txt_whose_count_does_not_match_is_one_note():
    data = _zip({"keras_model.h5": _tm_h5(), "labels.txt": "0 cat\n1 dog\n"})
    loaded = models.open_upload(data, "converted_keras.zip", "upload:x")
    assert loaded.class_names == ("class 0", "class 1", "class 2")
    assert loaded.notes == (
        "The class list of 'converted_keras.zip' has 2 names but the model has 3 outputs, "
        "so the classes are numbered instead of named.",
    )


def test_metadata_without_labels_is_one_note():
    meta = json.dumps({"tmVersion": "2.4.7", "imageSize": 224}).encode()
    loaded = models.open_upload(_zip(_tfjs_entries(metadata_json=meta)), "tm.zip", "upload:x")
    assert loaded.class_names == ("class 0", "class 1", "class 2")
    assert loaded.notes == ("'metadata.json' has no \"labels\" list, so the classes are numbered instead of named.",)


def test_zip_with_two_models_is_one_sentence():
    data = _zip({"keras_model.h5": _tm_h5(), "other/model.h5": _tm_h5(), "labels.txt": "0 a\n"})
    with pytest.raises(ModelLoadError) as info:
        models.loading.load_model(data, name="two.zip")
    assert str(info.value) == "'two.zip' holds 2 models (keras_model.h5, other/model.h5); put one model in the ZIP."


@pytest.mark.parametrize("entry", ["../keras_model.h5", "/etc/keras_model.h5"])
def test_zip_entries_outside_the_archive_are_refused(entry):
    with pytest.raises(ModelLoadError, match="refused"):
        models.loading.load_model(_zip({entry: _tm_h5()}), name="evil.zip")


def test_zip_without_a_model_says_what_it_holds():
    with pytest.raises(ModelLoadError, match=r"holds no model .* it contains labels.txt, notes.md"):
        models.loading.load_model(_zip({"labels.txt": "0 a\n", "notes.md": "hi"}), name="bundle.zip")


def test_zip_bomb_is_refused_before_reading():
    data = _zip({"keras_model.h5": b"\0" * (8 * 2**20)})  # deflates about 1000-fold
    with pytest.raises(ModelLoadError, match="decompression bomb"):
        models.loading.load_model(data, name="bomb.zip")


def test_keras_file_inside_a_zip(saved_dir):
    data = _zip({"model/func.keras": (saved_dir / "func.keras").read_bytes(), "model/labels.txt": "a\nb\nc\n"})
    loaded = models.open_upload(data, "func.zip", "upload:k")
    assert loaded.class_names == ("a", "b", "c") and loaded.origin["format"] == "keras"
    assert (loaded.preprocess, loaded.fit) == ("unit", "stretch")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("0 cat\n1 big dog\n", ("cat", "big dog")),
        ("cat\nbig dog\n\n", ("cat", "big dog")),
        ("\ufeff0 a\r\n1 b\r\n", ("a", "b")),
        ("3 three\n1 one\n", ("3 three", "1 one")),
    ],
)
def test_parse_labels_txt(text, names):
    assert bundles.parse_labels_txt(text.encode()) == names


def test_macos_zip_extras_are_not_a_second_model():
    data = _zip(
        {
            "keras_model.h5": _tm_h5(),
            "__MACOSX/._keras_model.h5": b"\0\5\26\7junk",
            ".DS_Store": b"x",
            "labels.txt": "0 cat\n1 dog\n2 teapot\n",
        }
    )
    assert models.open_upload(data, "converted_keras.zip", "upload:mac").class_names == TM_LABELS
