"""One grammar names a model or a dataset: vizcore.models.specs, read by the command lines."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from vizcore import models
from vizcore.data import datasets
from vizcore.errors import ConvLensError, SpecError
from vizcore.models import specs


@pytest.mark.parametrize(
    ("text", "want", "written"),
    [
        ("bundled:mnist_cnn", specs.Spec("bundled", "mnist_cnn"), "bundled:mnist_cnn"),
        ("mnist_cnn", specs.Spec("bundled", "mnist_cnn"), "bundled:mnist_cnn"),
        ("preset:lenet5", specs.Spec("preset", "lenet5"), "preset:lenet5"),
        ("app:MobileNetV2:imagenet", specs.Spec("app", "MobileNetV2", "imagenet"), "app:MobileNetV2:imagenet"),
        ("app:MobileNetV2", specs.Spec("app", "MobileNetV2", "imagenet"), "app:MobileNetV2:imagenet"),
        ("app:ResNet50:none", specs.Spec("app", "ResNet50", None), "app:ResNet50:none"),
    ],
)
def test_model_specs_parse_and_write_back(text, want, written):
    spec = specs.parse_spec(text)
    assert spec == want and spec.text == written
    assert specs.parse_spec(spec.text) == spec  # the written form reads back the same


@pytest.mark.parametrize(
    "text",
    ["bundled:nope", "preset:nope", "app:NoSuchNet:imagenet", "app:MobileNetV2:cifar", "bundled:mnist_cnn:x", ""],
)
def test_a_bad_model_spec_is_a_typed_error_with_one_sentence(text):
    with pytest.raises(SpecError) as err:
        specs.parse_spec(text)
    assert isinstance(err.value, ConvLensError) and isinstance(err.value, ValueError)
    assert str(err.value).startswith(f"Unknown model {text!r}: give a model file, bundled:NAME")
    assert str(err.value).endswith(".") and ". " not in str(err.value)


def test_a_file_spec_opens_keyed_by_its_bytes_and_a_link_never_reads_files(tmp_path):
    path = tmp_path / "copy.keras"
    path.write_bytes((models.BUNDLED_DIR / "mnist_cnn.keras").read_bytes())
    spec = specs.parse_spec(str(path))
    assert spec == specs.Spec("file", str(path)) and spec.text == str(path)
    loaded = specs.open_spec(spec)
    bundled = specs.open_spec("bundled:mnist_cnn")
    assert loaded.key.startswith("upload:") and bundled.key == "bundled:mnist_cnn"
    x = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), bundled.model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(SpecError):
        specs.parse_spec(str(path), files=False)


def test_dataset_specs_open_as_the_view_keys_them(tmp_path):
    ds, name = specs.open_dataset("shapes", limit=10)
    assert name == "shapes" and len(ds) == specs.SHAPES["n"]
    again = datasets.make_shapes(specs.SHAPES["n"], seed=specs.SHAPES["seed"])
    np.testing.assert_array_equal(ds.y, again.y)
    photos, name = specs.open_dataset(specs.parse_dataset("photos"), limit=10)
    assert name == "photos" and photos.image_shape == (224, 224, 3) and len(photos) == len(photos.class_names) >= 3
    assert specs.parse_dataset("keras:cifar10") == specs.DatasetSpec("keras", "cifar10")
    assert specs.parse_dataset("keras:cifar10").text == "keras:cifar10"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("a", "b"):
            for i in range(3):
                zf.writestr(f"{cls}/{i}.png", _png(i + (10 if cls == "b" else 0)))
    path = tmp_path / "two.zip"
    path.write_bytes(buf.getvalue())
    zipped, name = specs.open_dataset(str(path), limit=10)
    assert name.startswith("zip:") and len(name) == 16 and zipped.class_names == ("a", "b") and len(zipped) == 6
    for bad in ("imagenet", "keras:nope", str(tmp_path / "missing.zip")):
        with pytest.raises(SpecError, match=f"Unknown dataset {bad!r}: give one of mnist_sample"):
            specs.parse_dataset(bad)


def _png(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()
