"""Bad input gets one sentence: classes, names, non-image files, bombs, grey photos, featureless bases, no weights."""

from __future__ import annotations

import io
import urllib.error
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from vizcore import models, transfer
from vizcore.data import archive, datasets
from vizcore.errors import LayerNotFoundError, TransferError, WeightsUnavailableError

GREY_NOTE = "1 grey image was converted to colour (the grey channel repeated), as this colour base takes colour."


def one_sentence(message: str) -> bool:
    return message.endswith(".") and message.count(". ") == 0


@pytest.mark.parametrize(
    "names, y, expected",
    [
        (("cat",), [0, 0], "Teaching needs at least 2 classes, each with images; add another class."),
        (("cat", "dog"), [0, 0, 0], "The class 'dog' has no images; add some, or remove the class."),
        (("Cat", "dog", "cat "), [0, 1, 2], "Two classes are named 'cat'; give each class its own name."),
        (("cat", "  "), [0, 1], "Class 2 has no name; give every class a name."),
    ],
)
def test_classes_a_classifier_cannot_be_taught_from(names, y, expected):
    with pytest.raises(TransferError) as info:
        transfer.check_classes(names, np.asarray(y))
    assert str(info.value) == expected and one_sentence(expected)


def test_the_class_cards_are_checked_before_any_image_is_fitted(digits_base):
    with pytest.raises(TransferError, match="The class 'b' has no images"):
        transfer.dataset_from_classes([("a", [np.zeros((28, 28), np.uint8)]), ("b", [])], digits_base)


def test_a_base_without_spatial_features_is_refused_in_one_sentence(few):
    inputs = keras.Input((28, 28, 1))
    mlp = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs)), name="mlp")
    with pytest.raises(TransferError) as info:
        transfer.teach(models.LoadedModel(mlp, "test:mlp", "mlp", tuple("01234")), few[0])
    assert str(info.value) == (
        "Model 'mlp' has no spatial features to teach from (no convolution layer on an image "
        "input); pick a CNN such as MobileNetV2 as the base."
    )


def test_the_feature_layer_can_be_chosen(digits_base, few):
    assert transfer.feature_layer(digits_base.model) == "block4_relu"
    result = transfer.teach(digits_base, few[0], transfer.TeachSettings(epochs=1, feature_layer="block3_relu"))
    assert result.feature_layer == "block3_relu" and result.model.get_layer("teach_hidden").kernel.shape == (64, 100)
    with pytest.raises(LayerNotFoundError, match="no layer 'block9_relu'"):
        transfer.feature_layer(digits_base.model, "block9_relu")


def test_teachable_machines_base_and_the_keras_applications_pick_out_relu():
    base = models.open_application(models.applications.TEACHABLE_BASE, weights=None)
    assert base.preprocess == "symmetric" and base.spec.size == (224, 224)
    assert transfer.feature_layer(base.model) == "out_relu"
    assert transfer.feature_part(base.model, "out_relu").output_shape == (None, 1280)  # alpha 0.35: 1,280 at the top


def test_imagenet_weights_unreachable_name_the_file_and_the_folder(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        models.open_application(models.applications.TEACHABLE_BASE)
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5" in message
    assert str(tmp_path / "keras_home" / "models") in message


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_zip_of_class_folders_keeps_each_photo_and_names_what_it_skipped():
    rng = np.random.default_rng(0)
    bomb = png(Image.new("1", (10_000, 5_000)))  # 50 megapixels in a few kB: refused from its header
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/a.png", png(Image.fromarray(rng.integers(0, 255, (600, 900, 3), dtype=np.uint8))))
        zf.writestr("cats/notes.txt", "not an image")
        zf.writestr("dogs/b.png", png(Image.fromarray(rng.integers(0, 255, (50, 40), dtype=np.uint8))))
        zf.writestr("dogs/huge.png", bomb)
    read = archive.read_class_images(buffer.getvalue(), transform=transfer.shrink)
    assert read.class_names == ("cats", "dogs") and read.y.tolist() == [0, 1]
    assert read.images[0].shape == (320, 480, 3) and read.images[1].shape == (50, 40, 1)  # shrunk as read; small kept
    assert read.notes == ("skipped 2 unreadable files (cats/notes.txt, dogs/huge.png)",)


def test_a_grey_photo_for_a_colour_base_is_converted_with_a_note():
    inputs = keras.Input((32, 32, 3))
    cnn = keras.Model(
        inputs,
        keras.layers.Dense(2, activation="softmax")(
            keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(inputs))
        ),
    )
    base = models.LoadedModel(cnn, "test:colour", "colour", ("a", "b"), "unit")
    grey = np.full((40, 40), 200, np.uint8)
    classes = [("light", [grey]), ("dark", [np.zeros((32, 32, 3), np.uint8)])]
    dataset, notes = transfer.dataset_from_classes(classes, base)
    assert isinstance(dataset, datasets.ImageDataset) and dataset.x_nhwc.shape == (2, 32, 32, 3)
    assert (dataset.x_nhwc[0] == 200).all()
    assert notes == (GREY_NOTE, "1 image was resized to the base's 32x32 input.")
