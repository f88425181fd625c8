"""TF.js Layers models read with NumPy: the Teachable Machine export, quantized shards, bad manifests."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from helpers import FIXTURES

from vizcore import models
from vizcore.errors import ModelLoadError
from vizcore.models import tfjs

TM = FIXTURES / "tm_tfjs"
ATOL = 2e-5


def test_teachable_machine_tfjs_predicts_what_tf_keras_predicted():
    expected = np.load(FIXTURES / "tm_expected.npz")
    for source in (TM / "model.json", TM):  # the file with its shards beside it, or the folder
        probs = models.loading.load_model(source).predict(expected["x"], verbose=0)
        np.testing.assert_allclose(probs, expected["probs"], atol=ATOL)


def test_topology_is_tfjs_shaped():
    """The fixture carries what tfjs-layers writes, so the repairs are exercised."""
    text = (TM / "model.json").read_text()
    assert '"class_name": "Model"' in text and '"groups": 1' in text and '"module"' not in text


def test_quantized_uint8_weights_in_two_shards():
    expected = np.load(FIXTURES / "tfjs_quantized_expected.npz")
    manifest = json.loads((FIXTURES / "tfjs_quantized" / "model.json").read_text())["weightsManifest"][0]
    assert len(manifest["paths"]) == 2 and all(w["quantization"]["dtype"] == "uint8" for w in manifest["weights"])
    probs = models.loading.load_model(FIXTURES / "tfjs_quantized" / "model.json").predict(expected["x"], verbose=0)
    np.testing.assert_allclose(probs, expected["probs"], atol=ATOL)


def test_dequantization_is_scale_times_value_plus_min():
    doc = {
        "weightsManifest": [
            {
                "paths": ["w.bin"],
                "weights": [
                    {
                        "name": "d/kernel",
                        "shape": [2, 2],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint16", "scale": 0.5, "min": -3.0},
                    },
                    {"name": "d/bias", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
                ],
            }
        ]
    }
    blob = np.array([0, 1, 2, 65535], np.uint16).tobytes() + np.array([1.5, -2.25], np.float16).tobytes()
    stored = tfjs.read_weights(doc, {"w.bin": blob}.get, "m")
    np.testing.assert_array_equal(stored[("d", "kernel")], [[-3.0, -2.5], [-2.0, 65535 * 0.5 - 3.0]])
    np.testing.assert_array_equal(stored[("d", "bias")], [1.5, -2.25])


def _copy(tmp_path):
    folder = tmp_path / "tm"
    shutil.copytree(TM, folder)
    return folder


def test_missing_shard_is_one_sentence(tmp_path):
    folder = _copy(tmp_path)
    (folder / "weights.bin").unlink()
    with pytest.raises(ModelLoadError, match="needs its weight file 'weights.bin' beside it, and it is missing"):
        models.loading.load_model(folder / "model.json")


def test_model_json_uploaded_alone_asks_for_the_zip():
    with pytest.raises(ModelLoadError) as info:
        models.loading.load_model((TM / "model.json").read_bytes(), name="model.json")
    assert str(info.value) == (
        "'model.json' needs its weight file 'weights.bin' beside it: upload model.json together "
        "with its weight files (and metadata.json) in one ZIP."
    )


def test_short_shard_is_one_sentence(tmp_path):
    folder = _copy(tmp_path)
    data = (folder / "weights.bin").read_bytes()
    (folder / "weights.bin").write_bytes(data[:-4])
    with pytest.raises(ModelLoadError) as info:
        models.loading.load_model(folder)
    message = str(info.value)
    assert "too short" in message and f"{len(data) - 4:,}" in message and f"{len(data):,}" in message


def test_graph_model_is_refused_in_one_sentence():
    graph = {
        "format": "graph-model",
        "generatedBy": "2.3.0",
        "modelTopology": {"node": [], "library": {}},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": []}],
    }
    data = _zip_dict({"model.json": json.dumps(graph), "group1-shard1of1.bin": b""})
    with pytest.raises(ModelLoadError, match="TF.js graph model.*only TF.js Layers models"):
        models.loading.load_model(data, name="graph.zip")
    with pytest.raises(ModelLoadError, match="graph model"):
        models.loading.load_model(json.dumps(graph).encode(), name="model.json")


def test_lambda_in_a_tfjs_topology_is_refused(tmp_path):
    folder = _copy(tmp_path)
    doc = json.loads((folder / "model.json").read_text())
    layers = doc["modelTopology"]["config"]["layers"]
    layers.insert(1, {"class_name": "Lambda", "config": {"name": "evil", "function": ["code", None, None]}})
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelLoadError, match="refused for safety.*Lambda"):
        models.loading.load_model(folder)


def _zip_dict(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_tfjs_layers_1x_list_config_predicts_what_tf_keras_predicted():
    expected = np.load(FIXTURES / "tfjs_list_config_expected.npz")
    assert isinstance(
        json.loads((FIXTURES / "tfjs_list_config" / "model.json").read_text())["modelTopology"]["config"], list
    )
    probs = models.loading.load_model(FIXTURES / "tfjs_list_config").predict(expected["x"], verbose=0)
    np.testing.assert_allclose(probs, expected["probs"], atol=ATOL)
    assert np.ptp(probs[:, 0]) > 0.05


def test_tfjs_dense_names_alone_do_not_make_a_teachable_machine_model():
    """tfjs-layers names every Dense dense_DenseN; a small digits CNN is not Teachable Machine's."""
    model = models.loading.load_model(FIXTURES / "tfjs_list_config")
    assert {"dense_Dense1", "dense_Dense2"} <= {layer.name for layer in model.layers}
    assert not models.looks_teachable(model)
