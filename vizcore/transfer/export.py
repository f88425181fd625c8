"""Export a taught model: ``model.keras`` + ``labels.txt`` + ``metadata.json``, and a float ``model.tflite``.

``labels.txt`` has Teachable Machine's "index name" lines; ``metadata.json`` follows Teachable Machine's
(``labels``, ``imageSize``, ``modelName``, ``timeStamp``) and adds what that format leaves implicit: the
input range (``preprocess``, a ``vizcore.data.images.PREPROCESS_MODES`` key) and how an image reaches the
input size (``fit``). A ZIP of the three reopens through ``models.open_upload`` (the Model page's
upload) with the same class names, preprocessing and predictions. ``model.tflite`` comes from
TensorFlow's own converter (float32, any batch size).

No TF.js export: the ``tensorflowjs`` converter package pins its own TensorFlow, JAX and
tensorflow-decision-forests versions, which do not install beside TensorFlow 2.21 / Keras 3.15.

Example:
    >>> export(result.loaded, "out/")
    (PosixPath('out/model.keras'), PosixPath('out/labels.txt'), PosixPath('out/metadata.json'),
     PosixPath('out/model.tflite'))
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from vizcore.data import images
from vizcore.models.graph import input_spec
from vizcore.training import atomic_path, atomic_save_model, atomic_write_text

FORMATS = ("keras", "tflite")
BUNDLE = ("model.keras", "labels.txt", "metadata.json")


def labels_txt(class_names: Sequence[str]) -> str:
    """Teachable Machine's labels.txt: one "index name" line per class."""
    return "".join(f"{i} {' '.join(str(name).split())}\n" for i, name in enumerate(class_names))


def metadata(loaded) -> dict:
    """A Teachable-Machine-style metadata.json for ``loaded`` (a ``models.LoadedModel``), with its range and fit."""
    spec = input_spec(loaded.model)
    return {
        "packageName": "ConvLens Teach",
        "modelName": loaded.label,
        "timeStamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "labels": list(loaded.class_names),
        "imageSize": spec.height if spec.height == spec.width else None,
        "imageShape": [spec.height, spec.width, spec.channels],
        "preprocess": loaded.preprocess,
        "inputRange": images.PREPROCESS_MODES[loaded.preprocess],
        "fit": loaded.fit,
        "base": loaded.origin.get("base"),
        "featureLayer": loaded.origin.get("feature_layer"),
    }


def tflite_bytes(model) -> bytes:
    """The model as a float32 TFLite flatbuffer: Keras's SavedModel export (any batch size), TensorFlow's converter."""
    import tensorflow as tf

    spec = input_spec(model)
    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32)]
    with tempfile.TemporaryDirectory(prefix="convlens_tflite_") as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False, input_signature=signature)
        return tf.lite.TFLiteConverter.from_saved_model(tmp).convert()


def export(loaded, folder: str | os.PathLike, formats: Sequence[str] = FORMATS) -> tuple[Path, ...]:
    """Write ``loaded`` (a ``models.LoadedModel``) into ``folder``, each file atomically; returns the paths written.

    Args:
        formats: "keras" (model.keras, labels.txt, metadata.json) and/or "tflite" (model.tflite).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Unknown export format(s) {unknown}; choose from {FORMATS}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if "keras" in formats:
        written.append(atomic_save_model(loaded.model, folder / "model.keras"))
        written.append(atomic_write_text(folder / "labels.txt", labels_txt(loaded.class_names)))
        written.append(atomic_write_text(folder / "metadata.json", json.dumps(metadata(loaded), indent=2)))
    if "tflite" in formats:
        with atomic_path(folder / "model.tflite") as tmp:
            tmp.write_bytes(tflite_bytes(loaded.model))
        written.append(folder / "model.tflite")
    return tuple(written)


def bundle_zip(loaded) -> bytes:
    """The bytes of a ZIP of model.keras, labels.txt and metadata.json (what the Model page's upload opens)."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="convlens_teach_") as tmp:
        paths = export(loaded, tmp, ("keras",))
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in paths:
                zf.write(path, path.name)
    return buffer.getvalue()
