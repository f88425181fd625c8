"""Presets, safe loading of user files (good and bad), keras.applications offline."""

from __future__ import annotations

import io
import urllib.error
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import FIXTURES, tiny_functional

from vizcore import models
from vizcore.errors import ModelLoadError, NotAnImageModelError, WeightsUnavailableError
from vizcore.models import graph

LAMBDA_MARKER = Path("/tmp/convlens_lambda_ran.txt")


# ----------------------------------------------------------------------------- presets

EXPECTED_PARAMS = {  # computed by hand from the layer sizes in each docstring
    "lenet5": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10),
    "mnist_cnn": (32 * 9 + 32) + (64 * 32 * 9 + 64) + (12 * 12 * 64 * 128 + 128) + (128 * 10 + 10),
    "cifar_cnn": (32 * 27 + 32) + (64 * 32 * 9 + 64) + (64 * 64 * 9 + 64) + (4 * 4 * 64 * 64 + 64) + (64 * 10 + 10),
    "tiny_vgg": (10 * 27 + 10) + 3 * (10 * 90 + 10) + (13 * 13 * 10 * 10 + 10),
}


@pytest.mark.parametrize("name", sorted(models.presets.PRESETS))
def test_presets_have_split_heads_and_expected_sizes(name):
    model = models.presets.build_preset(name)
    assert model.count_params() == EXPECTED_PARAMS[name]
    names = [layer.name for layer in model.layers]
    assert names[-2:] == ["logits", "probs"]
    assert model.get_layer("logits").activation.__name__ == "linear"
    assert len(set(names)) == len(names) and not any(n.startswith(("conv2d", "dense")) for n in names)
    spec = graph.input_spec(model)
    assert (spec.height, spec.width, spec.channels) == models.presets.PRESETS[name].input_shape
    assert graph.head_type(model) == "softmax"


def test_preset_with_other_classes_and_unknown_name():
    assert models.presets.build_preset("tiny_vgg", num_classes=3).output_shape == (None, 3)
    with pytest.raises(ValueError, match="lenet5"):
        models.presets.build_preset("alexnet")


# ----------------------------------------------------------------------------- good files


def test_load_keras_from_path_bytes_and_filelike(saved_dir):
    data = (saved_dir / "func.keras").read_bytes()
    for source in (saved_dir / "func.keras", str(saved_dir / "func.keras"), data, io.BytesIO(data)):
        model = models.loading.load_model(source, name="func.keras")
        assert model.get_layer("conv_b").filters == 6


def test_format_comes_from_content_not_extension(saved_dir, tmp_path):
    wrong = tmp_path / "really_a_keras_zip.h5"
    wrong.write_bytes((saved_dir / "func.keras").read_bytes())
    assert models.loading.load_model(wrong).name == "tiny_functional"
    h5 = models.loading.load_model((saved_dir / "func.h5").read_bytes(), name="x.bin")
    np.testing.assert_allclose(
        h5.get_layer("conv_a").get_weights()[0], tiny_functional().get_layer("conv_a").get_weights()[0]
    )


# ----------------------------------------------------------------------------- bad files


def _save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def _truncated(saved_dir: Path, tmp_path: Path) -> Path:
    data = (saved_dir / "func.keras").read_bytes()
    path = tmp_path / "trunc.keras"
    path.write_bytes(data[: len(data) // 2])
    return path


def _zip_without_config(tmp_path: Path) -> Path:
    path = tmp_path / "photos.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat.txt", "meow")
    return path


def _dense_only(tmp_path: Path) -> Path:
    inputs = keras.Input((784,))
    return _save(keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dense(32)(inputs))), tmp_path / "mlp.keras")


def _image_without_conv(tmp_path: Path) -> Path:
    inputs = keras.Input((28, 28, 1))
    return _save(keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))), tmp_path / "flat.keras")


def _rnn(tmp_path: Path) -> Path:
    inputs = keras.Input((20, 8))
    return _save(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(4)(inputs))), tmp_path / "rnn.keras")


def _conv1d(tmp_path: Path) -> Path:
    inputs = keras.Input((100, 3))
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 5)(inputs))
    return _save(keras.Model(inputs, keras.layers.Dense(2)(x)), tmp_path / "conv1d.keras")


def _multi_input(tmp_path: Path) -> Path:
    a, b = keras.Input((8, 8, 1)), keras.Input((3,))
    x = keras.layers.Concatenate()([keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(a)), b])
    return _save(keras.Model([a, b], keras.layers.Dense(2)(x)), tmp_path / "multi.keras")


def _custom_layer(tmp_path: Path) -> Path:
    @keras.saving.register_keras_serializable(package="userpkg")
    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(Mystery(name="mystery")(inputs)))
    path = _save(keras.Model(inputs, keras.layers.Dense(2)(x)), tmp_path / "custom.keras")
    keras.saving.get_custom_objects().pop("userpkg>Mystery")
    return path


def _saved_model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "exported"
    tiny_functional().export(path, verbose=False)
    return path


BAD_FILES = {
    "empty": (lambda s, t: (t / "empty.keras").write_bytes(b"") and None or t / "empty.keras", "empty (0 bytes)"),
    "text_renamed": (
        lambda s, t: (t / "notes.keras").write_text("just some text\n") and t / "notes.keras",
        "not a Keras model file",
    ),
    "png_renamed": (
        lambda s, t: (t / "img.h5").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)) and t / "img.h5",
        "not a Keras model file",
    ),
    "truncated": (_truncated, "damaged ZIP"),
    "zip_not_model": (lambda s, t: _zip_without_config(t), "no config.json"),
    "weights_only_h5": (lambda s, t: FIXTURES / "tfk2_weights_only.h5", "only weights"),
    "custom_layer": (lambda s, t: _custom_layer(t), "custom layer or object 'Mystery'"),
    "saved_model": (lambda s, t: _saved_model_dir(t), "SavedModel"),
    "dense_only": (lambda s, t: _dense_only(t), "flat vectors"),
    "no_conv": (lambda s, t: _image_without_conv(t), "no convolution layer"),
    "rnn": (lambda s, t: _rnn(t), "sequences"),
    "conv1d": (lambda s, t: _conv1d(t), "sequences"),
    "multi_input": (lambda s, t: _multi_input(t), "2 inputs"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_one_typed_error_with_a_clear_message(case, saved_dir, tmp_path):
    make, expected = BAD_FILES[case]
    path = make(saved_dir, tmp_path)
    with pytest.raises(ModelLoadError) as info:
        models.loading.load_model(path)
    message = str(info.value)
    assert expected in message
    assert path.name in message  # the person sees which file
    assert "Traceback" not in message and len(message) < 600


@pytest.mark.parametrize("case", ["dense_only", "no_conv", "rnn", "multi_input"])
def test_not_image_models_are_a_subclass(case, saved_dir, tmp_path):
    with pytest.raises(NotAnImageModelError):
        models.loading.load_model(BAD_FILES[case][0](saved_dir, tmp_path))


@pytest.mark.parametrize("filename", ["tfk2_lambda.h5", "lambda.keras"])
def test_lambda_layer_is_refused_and_its_code_never_runs(filename, tmp_path):
    LAMBDA_MARKER.unlink(missing_ok=True)
    if filename.endswith(".keras"):
        marker = str(LAMBDA_MARKER)

        def side_effect(t, marker=marker):
            open(marker, "w").write("ran")
            return t

        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(keras.layers.Lambda(side_effect)(inputs)))
        path = _save(keras.Model(inputs, keras.layers.Dense(2)(x)), tmp_path / filename)
        LAMBDA_MARKER.unlink(missing_ok=True)  # building the model above ran it once, legitimately
    else:
        path = FIXTURES / filename
    with pytest.raises(ModelLoadError, match="refused for safety.*Lambda"):
        models.loading.load_model(path.read_bytes(), name=filename)
    assert not LAMBDA_MARKER.exists(), "the Lambda layer's code ran during loading"


def test_check_false_loads_a_non_image_model(tmp_path):
    model = models.loading.load_model(_dense_only(tmp_path), check=False)
    assert model.output_shape == (None, 10)


# ----------------------------------------------------------------------------- keras.applications


def test_application_untrained_builds_with_its_preprocessing():
    loaded = models.open_application("MobileNetV2", weights=None)
    assert loaded.preprocess == "symmetric" and loaded.spec.channels == 3
    assert len(loaded.class_names) == 1000
    assert graph.last_conv_layer(loaded.model) == "Conv_1"
    assert graph.head_type(loaded.model) == "softmax"


def test_application_weights_offline_names_the_cache_folder(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    (tmp_path / "keras_home").mkdir()  # Keras falls back to /tmp/.keras when its home is missing
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        models.applications.load_application("MobileNetV2", weights="imagenet")
    message = str(info.value)
    assert str(tmp_path / "keras_home" / "models") in message
    assert "mobilenet_v2_weights" in message and ".h5" in message
    assert "untrained" in message
