"""Legacy .h5 files written by the real tf.keras 2 (tests/fixtures/make_legacy_fixtures.py):
repaired, same predictions."""

from __future__ import annotations

import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from helpers import FIXTURES

from vizcore import models
from vizcore.errors import ModelLoadError
from vizcore.models import legacy

TM_ZIP = FIXTURES / "tm_converted_keras.zip"
ATOL = 2e-5  # float32 round-off between TensorFlow 2 (tf.keras) and Keras 3 kernels


@pytest.fixture(scope="module")
def tm_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("tm") / "keras_model.h5"
    path.write_bytes(zipfile.ZipFile(TM_ZIP).read("keras_model.h5"))
    return path


def _config(path):
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["model_config"])


def test_keras3_alone_refuses_the_teachable_machine_h5(tm_h5):
    """The trap the repairs exist for: Keras 3's own reader fails on this file."""
    with pytest.raises(Exception):  # noqa: B017  (TypeError today; any failure proves the point)
        keras.models.load_model(tm_h5, compile=False)


def test_teachable_machine_h5_predicts_what_tf_keras_predicted(tm_h5):
    expected = np.load(FIXTURES / "tm_expected.npz")
    model = models.loading.load_model(tm_h5.read_bytes(), name="keras_model.h5")
    probs = model.predict(expected["x"], verbose=0)
    np.testing.assert_allclose(probs, expected["probs"], atol=ATOL)
    assert np.ptp(probs[:, 0]) > 0.1  # the probe is discriminative: its images get different predictions


def test_teachable_machine_config_needs_these_repairs(tm_h5):
    _, done = legacy.repair_config(_config(tm_h5))
    assert set(done) == {"batch_input_shape", "bn_axis_list", "groups", "legacy_module", "single_output_list"}


@pytest.mark.parametrize(
    ("fixture", "repair", "atol"),
    [
        ("tfk1_initializer_dtype", "initializer_dtype", ATOL),
        ("tfk2_mixed_precision", "policy_dtype", 2e-3),  # float16 compute on both sides
    ],
)
def test_each_repair_gives_the_writers_predictions(fixture, repair, atol):
    path = FIXTURES / f"{fixture}.h5"
    with pytest.raises(Exception):  # noqa: B017  Keras 3 alone cannot read it
        keras.models.load_model(path, compile=False)
    assert repair in legacy.repair_config(_config(path))[1]
    expected = np.load(FIXTURES / f"{fixture}_expected.npz")
    probs = models.loading.load_model(path).predict(expected["x"], verbose=0)
    np.testing.assert_allclose(probs, expected["probs"], atol=atol)


def test_tf_keras2_sequential_still_matches_its_probe():
    expected = np.load(FIXTURES / "tfk2_sequential_probe.npz")
    probs = models.loading.load_model(FIXTURES / "tfk2_sequential.h5").predict(expected["x"], verbose=0)
    np.testing.assert_allclose(probs, expected["probs"], atol=ATOL)


def test_weights_are_matched_by_name_not_by_order(tmp_path):
    """A model's weights stored under its layer names are found whatever the order of the groups."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="b_conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="a_depthwise")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="c_dense")(keras.layers.Flatten()(x)))
    stored = {
        ("a_depthwise", "a_depthwise", "depthwise_kernel"): model.get_layer("a_depthwise").get_weights()[0] + 1,
        ("a_depthwise", "a_depthwise", "bias"): model.get_layer("a_depthwise").get_weights()[1] + 1,
        ("c_dense", "c_dense", "bias"): model.get_layer("c_dense").get_weights()[1] + 1,
        ("c_dense", "c_dense", "kernel"): model.get_layer("c_dense").get_weights()[0] + 1,
        ("b_conv", "b_conv", "kernel"): model.get_layer("b_conv").get_weights()[0] + 1,
        ("b_conv", "b_conv", "bias"): model.get_layer("b_conv").get_weights()[1] + 1,
    }
    legacy.assign_weights(model, stored, "x")
    for (layer, _, weight), value in stored.items():
        var = {"depthwise_kernel": "kernel"}.get(weight, weight)
        got = {v.name: v.numpy() for v in model.get_layer(layer).weights}[var]
        np.testing.assert_array_equal(got, value)


def test_a_missing_or_misshapen_weight_is_one_sentence():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    with pytest.raises(ModelLoadError, match="no stored value for the weight 'bias' of layer 'd'"):
        legacy.assign_weights(model, {("d", "d", "kernel"): np.zeros((4, 2), np.float32)}, "m.h5")
    with pytest.raises(ModelLoadError, match=r"shape \(4, 3\).*needs \(4, 2\)"):
        legacy.assign_weights(
            model, {("d", "kernel"): np.zeros((4, 3), np.float32), ("d", "bias"): np.zeros(2, np.float32)}, "m.h5"
        )


@pytest.mark.parametrize("class_name", ["TFOpLambda", "KerasLayer", "Lambda"])
def test_unknown_or_lambda_classes_are_refused_before_building(class_name, tmp_path):
    config = _config(FIXTURES / "tfk2_sequential.h5")
    config["config"]["layers"].insert(2, {"class_name": class_name, "config": {"name": "odd", "function": "x"}})
    path = tmp_path / "odd.h5"
    path.write_bytes((FIXTURES / "tfk2_sequential.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(ModelLoadError) as info:
        models.loading.load_model(path)
    expected = "Lambda layer" if class_name == "Lambda" else f"custom layer or object '{class_name}'"
    assert expected in str(info.value) and "odd.h5" in str(info.value)
