"""The bad-input matrix: each case checks the message a person sees and that the app still works after it.

Model files go through the Model page's uploader, images through the input picker, ZIP datasets and
impossible settings through the Training page, all driven by AppTest as a person would.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import FIXTURES, ROOT, tiny_functional
from PIL import Image
from streamlit.testing.v1 import AppTest

LAMBDA_MARKER = Path("/tmp/convlens_lambda_ran.txt")


def _app(page: str = "pages/model.py", params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update(params or {})
    at.switch_page(page)
    at.run()
    return at


def _saved(model: keras.Model, tmp_path: Path, name: str) -> bytes:
    model.save(tmp_path / name)
    return (tmp_path / name).read_bytes()


def _cnn_input(shape):
    inputs = keras.Input(shape)
    return inputs, keras.layers.Conv2D(2, 3, name="c")(inputs)


def _model_files(tmp_path: Path) -> dict[str, tuple[str, bytes, str]]:
    """case -> (file name, bytes, words the error must contain)."""
    good = _saved(tiny_functional(), tmp_path, "good.keras")
    inputs = keras.Input((16,))
    dense = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))
    seq_in = keras.Input((20, 8))
    rnn = keras.Model(seq_in, keras.layers.Dense(2)(keras.layers.LSTM(3)(seq_in)))
    c1_in = keras.Input((50, 3))
    conv1d = keras.Model(
        c1_in, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(2, 3)(c1_in)))
    )
    a, conv = _cnn_input((8, 8, 1))
    b = keras.Input((3,))
    multi = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([keras.layers.Flatten()(conv), b])))

    @keras.saving.register_keras_serializable(package="matrix")
    class Unknown(keras.layers.Layer):
        def call(self, x):
            return x

    c_in = keras.Input((8, 8, 1))
    custom = keras.Model(c_in, keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(Unknown()(c_in))))
    custom_bytes = _saved(custom, tmp_path, "custom.keras")
    keras.saving.get_custom_objects().pop("matrix>Unknown")
    tm = {p.name: p.read_bytes() for p in (FIXTURES / "tm_tfjs").iterdir()}  # Teachable Machine's TF.js download
    h5 = zipfile.ZipFile(FIXTURES / "tm_converted_keras.zip").read("keras_model.h5")
    return {
        "zero-byte file": ("empty.keras", b"", "empty (0 bytes)"),
        "corrupt .keras (truncated)": ("cut.keras", good[: len(good) // 2], "damaged ZIP"),
        "text renamed .keras": ("notes.keras", b"hello, I am a text file\n", "not a Keras model file"),
        ".h5 with only weights": ("weights.h5", (FIXTURES / "tfk2_weights_only.h5").read_bytes(), "only weights"),
        "Lambda layer (refused, no code runs)": (
            "lambda.h5",
            (FIXTURES / "tfk2_lambda.h5").read_bytes(),
            "refused for safety",
        ),
        "unregistered custom layer": ("custom.keras", custom_bytes, "custom layer or object 'Unknown'"),
        "Dense-only model": ("mlp.keras", _saved(dense, tmp_path, "mlp.keras"), "flat vectors"),
        "RNN model": ("rnn.keras", _saved(rnn, tmp_path, "rnn.keras"), "sequences"),
        "1-D conv model": ("conv1d.keras", _saved(conv1d, tmp_path, "conv1d.keras"), "sequences"),
        "multi-input model": ("multi.keras", _saved(multi, tmp_path, "multi.keras"), "2 inputs"),
        "TF.js ZIP without its shard": (
            "tm_no_shard.zip",
            _zip({"model.json": tm["model.json"], "metadata.json": tm["metadata.json"]}),
            "needs its weight file 'weights.bin' beside it, and it is missing",
        ),
        "TF.js model.json alone": ("model.json", tm["model.json"], "upload model.json together with its weight files"),
        "TF.js short shard": (
            "tm_short.zip",
            _zip({**tm, "weights.bin": tm["weights.bin"][:-1000]}),
            "weight files that are too short",
        ),
        "TF.js graph model": (
            "graph.zip",
            _zip({"model.json": _GRAPH_MODEL_JSON, "group1-shard1of1.bin": bytes(864)}),
            "TF.js graph model",
        ),
        "ZIP with two models": ("two.zip", _zip({**tm, "keras_model.h5": h5}), "holds 2 models"),
    }


# what tensorflowjs_converter --output_format=tfjs_graph_model writes (shortened to one conv)
_GRAPH_MODEL_JSON = json.dumps(
    {
        "format": "graph-model",
        "generatedBy": "2.15.0",
        "convertedBy": "TensorFlow.js Converter v4.17.0",
        "signature": {
            "inputs": {"input_1:0": {"name": "input_1:0", "dtype": "DT_FLOAT"}},
            "outputs": {"Identity:0": {"name": "Identity:0", "dtype": "DT_FLOAT"}},
        },
        "modelTopology": {
            "node": [
                {"name": "input_1", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
                {"name": "conv/kernel", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
                {
                    "name": "conv/Conv2D",
                    "op": "Conv2D",
                    "input": ["input_1", "conv/kernel"],
                    "attr": {"padding": {"s": "U0FNRQ=="}},
                },
                {"name": "Identity", "op": "Identity", "input": ["conv/Conv2D"]},
            ],
            "library": {},
            "versions": {"producer": 1482},
        },
        "weightsManifest": [
            {
                "paths": ["group1-shard1of1.bin"],
                "weights": [{"name": "conv/kernel", "shape": [3, 3, 3, 8], "dtype": "float32"}],
            }
        ],
    }
).encode()


MODEL_CASES = [
    "zero-byte file",
    "corrupt .keras (truncated)",
    "text renamed .keras",
    ".h5 with only weights",
    "Lambda layer (refused, no code runs)",
    "unregistered custom layer",
    "Dense-only model",
    "RNN model",
    "1-D conv model",
    "multi-input model",
    "TF.js ZIP without its shard",
    "TF.js model.json alone",
    "TF.js short shard",
    "TF.js graph model",
    "ZIP with two models",
]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return _model_files(tmp_path_factory.mktemp("bad_models"))


@pytest.mark.parametrize("case", MODEL_CASES)
def test_bad_model_files(case, model_files):
    LAMBDA_MARKER.unlink(missing_ok=True)
    name, content, expected = model_files[case]
    at = _app()
    at.radio(key="model.source").set_value("upload").run()
    at.file_uploader(key="model.upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(expected in e and name in e for e in errors), errors
    assert not LAMBDA_MARKER.exists()
    # the app still works: the bundled model is still the working model, and other pages open
    assert at.session_state["working_model"].kind == "bundled"
    at.switch_page("pages/kernels.py").run()
    assert not at.exception and at.selectbox(key="kernels.layer").value == "conv1"


def _png(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge 1-bit image (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _images() -> dict[str, tuple[str, bytes, str, str]]:
    """case -> (file name, bytes, 'ok' or 'error', words shown)."""
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, np.full((40, 30), 128, np.uint8)]), "RGBA")
    sixteen = Image.fromarray((rng.random((32, 32)) * 65535).astype(np.uint16))
    return {
        "RGBA image": ("a.png", _png(rgba), "ok", "grayscale"),
        "16-bit image": ("b.png", _png(sixteen), "ok", "resized"),
        "CMYK image": ("c.jpg", _png(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "ok", "grayscale"),
        "palette image": ("d.png", _png(Image.fromarray(rgb).convert("P")), "ok", "grayscale"),
        "text renamed .png": ("e.png", b"definitely not pixels", "error", "e.png"),
        "very large image (header)": ("f.png", _bomb_png(9000, 9000), "error", "megapixels"),
        "decompression bomb": ("g.png", _bomb_png(60000, 60000), "error", "limit"),
    }


@pytest.mark.parametrize("case", list(_images()))
def test_bad_or_unusual_images(case):
    name, content, kind, words = _images()[case]
    at = _app("pages/activations.py")
    at.radio(key="input.source").set_value("upload").run()
    at.file_uploader(key="input.upload").set_value((name, content, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    if kind == "error":
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
    else:
        assert not at.error, [e.value for e in at.error]
        assert any(words in c.value for c in at.caption), [c.value for c in at.caption]
        assert at.get("image")  # the maps were computed
    at.radio(key="input.source").set_value("data").run()  # and the app goes on
    assert not at.exception and at.get("image")


def test_grayscale_image_for_an_rgb_model_and_the_reverse():
    gray = _png(Image.fromarray((np.arange(64 * 64) % 255).reshape(64, 64).astype(np.uint8), "L"))
    at = _app("pages/activations.py", {"model": "bundled:shapes_cnn"})
    at.radio(key="input.source").set_value("upload").run()
    at.file_uploader(key="input.upload").set_value(("gray.png", gray, "image/png")).run()
    assert not at.exception and any("repeated the grayscale channel" in c.value for c in at.caption)
    colour = _png(Image.fromarray((np.random.default_rng(1).random((28, 28, 3)) * 255).astype(np.uint8)))
    at = _app("pages/activations.py", {"model": "bundled:mnist_cnn"})
    at.radio(key="input.source").set_value("upload").run()
    at.file_uploader(key="input.upload").set_value(("colour.png", colour, "image/png")).run()
    assert not at.exception and any("converted colour image to grayscale" in c.value for c in at.caption)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, content in entries.items():
            zf.writestr(path, content)
    return buf.getvalue()


def _digit_png(size: int, value: int) -> bytes:
    return _png(Image.fromarray(np.full((size, size), value, np.uint8), "L"))


ZIP_CASES = {
    "one class only": (_zip({f"cats/{i}.png": _digit_png(28, i * 10) for i in range(4)}), "error", "class"),
    "path escaping its folder": (
        _zip({"a/1.png": _digit_png(28, 1), "../evil/2.png": _digit_png(28, 2)}),
        "error",
        "outside",
    ),
    "not a zip": (b"PK? no, plain text", "error", "Upload a .zip"),
    "mixed image sizes": (
        _zip(
            {
                **{f"a/{i}.png": _digit_png(20 + i, 40) for i in range(6)},
                **{f"b/{i}.png": _digit_png(40, 200) for i in range(6)},
            }
        ),
        "ok",
        "resized",
    ),
}


@pytest.mark.parametrize("case", list(ZIP_CASES))
def test_uploaded_zip_datasets(case):
    content, kind, words = ZIP_CASES[case]
    at = _app("pages/training.py", {"model": "preset:lenet5"})
    at.selectbox(key="train.data").set_value("zip").run()
    at.file_uploader(key="train.zip").set_value(("data.zip", content, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    if kind == "error":
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
        assert at.button(key="train.start").disabled
    else:  # read and resized; what is left is said plainly: 2 classes do not fit LeNet-5's 10 outputs
        assert any(words in c.value for c in at.caption), [c.value for c in at.caption]
        assert any("2 classes" in e.value for e in at.error), [e.value for e in at.error]
    at.selectbox(key="train.data").set_value("mnist_sample").run()
    assert not at.exception and not at.button(key="train.start").disabled


def test_training_settings_that_cannot_work():
    at = _app("pages/training.py", {"model": "preset:lenet5"})
    at.selectbox(key="train.data").set_value("zip").run()
    small = _zip(
        {
            **{f"a/{i}.png": _digit_png(28, 10) for i in range(5)},
            **{f"b/{i}.png": _digit_png(28, 200) for i in range(5)},
        }
    )
    at.file_uploader(key="train.zip").set_value(("small.zip", small, "application/zip")).run()
    at.number_input(key="train.batch").set_value(512).run()
    assert any("batch" in e.value.lower() for e in at.error), [e.value for e in at.error]
    assert at.button(key="train.start").disabled
    from vizcore import training

    assert any("epoch" in p.lower() for p in training.TrainConfig(epochs=0).problems())  # the widget's minimum is 1


def test_model_with_unknown_input_size(tmp_path):
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(2)])
    unbuilt.save(tmp_path / "unbuilt.keras")
    at = _app()
    at.radio(key="model.source").set_value("upload").run()
    at.file_uploader(key="model.upload").set_value(
        ("unbuilt.keras", (tmp_path / "unbuilt.keras").read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception
    assert any("input size" in e.value and "unknown" in e.value for e in at.error), [e.value for e in at.error]
    # a fully convolutional model (any height and width) is fine: inputs keep their own size
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "anysize.keras")
    at.file_uploader(key="model.upload").set_value(
        ("anysize.keras", (tmp_path / "anysize.keras").read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception and not at.error
    assert next(m.value for m in at.metric if m.label == "Input") == "any×any×3"
    at.switch_page("pages/attribution.py").run()
    assert not at.exception, [e.value for e in at.exception]
