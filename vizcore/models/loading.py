"""Loading the model files people bring, safely.

Keras 3 ``.keras``, legacy ``.h5`` (repaired by ``vizcore.models.legacy``), TF.js Layers ``model.json``
(``vizcore.models.tfjs``) and ZIPs of these with labels.txt/metadata.json (``vizcore.models.bundles``).
Every path refuses Lambda and unknown custom layers before any code runs, and loads with ``safe_mode=True``::

    from vizcore.models import loading
    model = loading.load_model("keras_model.h5")
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import keras

from vizcore.data.sources import read_source
from vizcore.errors import ModelLoadError, NotAnImageModelError
from vizcore.models import bundles, flat_input, legacy, tfjs
from vizcore.models.graph import (
    InputSpec,
    conv_layers,
    input_spec,
    no_conv_message,
)
from vizcore.models.legacy import LAMBDA_REFUSED

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# --------------------------------------------------------------------------- loading user files


def _sniff(head: bytes) -> str | None:
    if head.startswith(ZIP_MAGIC):
        return ".keras"
    if head.startswith(HDF5_MAGIC):
        return ".h5"
    return None


def _describe_bytes(head: bytes) -> str:
    text = head[:40]
    if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        return f"it starts with the text {text.decode()[:30]!r}"
    return f"its first bytes are {head[:8].hex(' ')}"


def _zip_names(target: Path, label: str) -> set[str]:
    try:
        with zipfile.ZipFile(target) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelLoadError(f"'{label}' is a damaged ZIP archive and cannot be read ({err}).") from None
    if bad is not None:
        raise ModelLoadError(f"'{label}' is corrupt: the entry '{bad}' inside the ZIP archive fails its checksum.")
    return names


def _check_h5(path: Path, label: str) -> None:
    """Refuse an HDF5 file with weights only, or with a Lambda/unknown layer, before Keras reads it."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            weights_only = "layer_names" in f.attrs or "model_weights" in f
    except OSError as err:
        raise ModelLoadError(f"'{label}' is a damaged HDF5 file and cannot be read ({err}).") from None
    if config is None:
        what = "only weights (saved with save_weights)" if weights_only else "no model architecture"
        raise ModelLoadError(
            f"'{label}' holds {what}, not a whole model. Build the same architecture in code and call "
            "model.load_weights(...), or save the whole model with model.save('model.keras')."
        )
    _refuse_unsafe_json(config, label)


def _refuse_unsafe_json(config_json: bytes | str, label: str) -> None:
    try:
        config = json.loads(config_json)
    except (ValueError, TypeError):
        return  # Keras will report the broken config itself
    legacy.refuse_unsafe(config, label)


_UNKNOWN_CLASS = re.compile(r"(?:Could not locate (?:class|function) |Unknown (?:layer|object)[^']*)'([^']+)'")


def _explain_failure(err: Exception, label: str) -> ModelLoadError:
    if isinstance(err, ModelLoadError):
        return err
    text = str(err)
    if "Lambda" in text and "safe_mode" in text:
        return ModelLoadError(f"'{label}' {LAMBDA_REFUSED}")
    if "safe_mode" in text or "unsafe" in text.lower():
        return ModelLoadError(f"'{label}' was refused for safety: it would run arbitrary Python code when loaded.")
    match = _UNKNOWN_CLASS.search(text)
    if match or "custom_objects" in text:
        name = match.group(1).rsplit(">", 1)[-1] if match else "a custom class"
        return ModelLoadError(
            f"'{label}' uses the custom layer or object '{name}', which ConvLens does not know. Its code is not "
            "in the file, and code from an uploaded file is never run (refused for safety). Use built-in Keras "
            "layers, or load the model in a notebook where you can register the class."
        )
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return ModelLoadError(f"'{label}' could not be loaded as a Keras model: {type(err).__name__}: {first[:300]}")


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A model read from a file, with what travelled with it (labels.txt, metadata.json).

    Attributes:
        model: the Keras 3 model, uncompiled.
        format: "keras", "h5" or "tfjs".
        labels: class names that came with it, or None.
        image_size: ``imageSize`` of a metadata.json, or None.
        teachable: made by Teachable Machine.
        notes: warnings a page can show, one sentence each.
        preprocess, fit: the input range and fit its metadata.json states, or None.
    """

    model: keras.Model
    format: str
    labels: tuple[str, ...] | None = None
    image_size: int | None = None
    teachable: bool = False
    notes: tuple[str, ...] = ()
    preprocess: str | None = None
    fit: str | None = None


def _load_keras(target: Path, label: str) -> keras.Model:
    with zipfile.ZipFile(target) as zf:
        config = zf.read("config.json")
        _refuse_unsafe_json(config, label)
        meta = json.loads(zf.read("metadata.json")) if "metadata.json" in zf.namelist() else {}
        weights = zf.read("model.weights.h5") if str(meta.get("keras_version", "")).startswith("2.") else None
    try:
        if weights is not None:  # tf.keras 2 (tf-keras) wrote it: its config needs the legacy repairs
            return legacy.load_keras2(json.loads(config), weights, label)
        return keras.models.load_model(target, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises ValueError, TypeError, KeyError, OSError, ...
        raise _explain_failure(err, label) from err


def _load_h5(target: Path, label: str) -> keras.Model:
    _check_h5(target, label)
    try:
        return legacy.load_h5(target, label)
    except Exception as err:
        raise _explain_failure(err, label) from err


def _load_tfjs(text: bytes, read: Callable[[str], bytes | None], label: str) -> keras.Model:
    try:
        return tfjs.load_tfjs(text, read, label)
    except Exception as err:
        raise _explain_failure(err, label) from err


def _from_bundle(bundle: bundles.Bundle, tmp: Path, label: str) -> ModelFile:
    inner = f"{label}/{bundle.model_path}"
    if bundle.kind == "tfjs":
        model = _load_tfjs(bundle.files[bundle.model_path], bundle.read, inner)
    else:
        target = tmp / ("inner.keras" if bundle.kind == "keras" else "inner.h5")
        target.write_bytes(bundle.files[bundle.model_path])
        model = (_load_keras if bundle.kind == "keras" else _load_h5)(target, inner)
    return ModelFile(
        model,
        bundle.kind,
        bundle.labels,
        bundle.image_size,
        bundle.teachable,
        bundle.notes,
        bundle.preprocess,
        bundle.fit,
    )


def _beside(folder: Path) -> Callable[[str], bytes | None]:
    """Read a file named in a manifest from ``folder``, never from outside it."""
    root = folder.resolve()

    def read(relative: str) -> bytes | None:
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            return None
        return target.read_bytes()

    return read


def _tfjs_folder(model_json: Path, label: str) -> ModelFile:
    read = _beside(model_json.parent)
    model = _load_tfjs(model_json.read_bytes(), read, label)
    labels, size, teachable, notes, preprocess, fit = None, None, False, [], None, None
    if (meta := read("metadata.json")) is not None:
        labels, size, teachable, note = bundles.parse_metadata(meta)
        notes += [note] if note else []
        preprocess, fit = bundles.parse_input(meta)
    if (text := read("labels.txt")) is not None and bundles.parse_labels_txt(text):
        labels, notes = bundles.parse_labels_txt(text), []
    return ModelFile(model, "tfjs", labels, size, teachable, tuple(notes), preprocess, fit)


def read_model(
    source: str | os.PathLike | bytes | BinaryIO, *, name: str | None = None, check: bool = True
) -> ModelFile:
    """Read a model file safely, with the class names and sizes that came with it.

    Opens Keras 3 ``.keras``; ``.h5`` from Keras 3, Keras 2 or tf.keras 1.x-2.x (Teachable Machine's
    keras_model.h5 included; legacy configs are repaired, see vizcore.models.legacy); a TF.js Layers
    ``model.json`` (path: its shards beside it); a ``.zip`` that holds one of these with labels.txt
    or metadata.json (Teachable Machine's converted_keras.zip and TF.js export). The format is read
    from the content, not the name. A Lambda or unknown custom layer is refused, never executed.

    Args:
        source: a path (a TF.js folder too), the file's bytes, or a binary file-like (Streamlit's UploadedFile).
        name: the file name to show in messages (defaults to the path's name).
        check: also require an image CNN (one 4-D input, at least one conv layer).

    Raises:
        ModelLoadError: empty, corrupt, unsafe or unknown file, missing weight shards, two models in
            one ZIP, refused layer; NotAnImageModelError (a subclass) when ``check`` fails.
    """
    data, path = read_source(source)
    label = name or (path.name if path else "uploaded file")
    if path is not None:
        if path.is_dir():
            if (path / "model.json").is_file():
                return _checked(_tfjs_folder(path / "model.json", label), check, label)
            if (path / "saved_model.pb").exists():
                raise ModelLoadError(
                    f"'{label}' is a TensorFlow SavedModel folder. Keras 3 cannot load those as models: open it "
                    "with the TensorFlow that wrote it and save it with model.save('model.keras') (or '.h5')."
                )
            raise ModelLoadError(f"'{label}' is a folder, not a model file (.keras, .h5, model.json or .zip).")
        if not path.exists():
            raise ModelLoadError(f"'{label}' does not exist ({path}).")
        with open(path, "rb") as f:
            head = f.read(64)
        size = path.stat().st_size
    else:
        head, size = data[:64], len(data)
    if size == 0:
        raise ModelLoadError(f"'{label}' is empty (0 bytes): the upload or the save did not finish.")
    if head.startswith(b"saved_model") or label.endswith(".pb"):
        raise ModelLoadError(f"'{label}' is part of a TensorFlow SavedModel; save the model as .keras or .h5 instead.")
    if head.lstrip().startswith(b"{"):
        if path is not None:
            return _checked(_tfjs_folder(path, label), check, label)

        def no_shards(shard: str) -> bytes:
            raise ModelLoadError(
                f"'{label}' needs its weight file '{shard}' beside it: upload model.json together with its "
                "weight files (and metadata.json) in one ZIP."
            )

        return _checked(ModelFile(_load_tfjs(data, no_shards, label), "tfjs"), check, label)
    fmt = _sniff(head)
    if fmt is None:
        raise ModelLoadError(
            f"'{label}' is not a Keras model file: .keras files and .zip bundles are ZIP archives, .h5 files are "
            f"HDF5 and TF.js model.json files are JSON, but {_describe_bytes(head)}."
        )
    with tempfile.TemporaryDirectory(prefix="convlens_load_") as tmp:
        target = Path(tmp) / f"model{fmt}"
        if data is not None:
            target.write_bytes(data)
        elif path.suffix.lower() in ((fmt,) if fmt == ".keras" else (".h5", ".hdf5")):
            target = path
        else:
            shutil.copyfile(path, target)
        if fmt == ".h5":
            found = ModelFile(_load_h5(target, label), "h5")
        elif "config.json" in _zip_names(target, label):
            found = ModelFile(_load_keras(target, label), "keras")
        elif label.lower().endswith(".keras"):
            names = sorted(_zip_names(target, label))
            raise ModelLoadError(
                f"'{label}' is a ZIP archive but not a Keras model: it has no config.json "
                f"(it contains {', '.join(names[:4]) or 'nothing'})."
            )
        else:
            found = _from_bundle(bundles.read_zip(target.read_bytes(), label), Path(tmp), label)
    return _checked(found, check, label)


def _checked(found: ModelFile, check: bool, label: str) -> ModelFile:
    image_model = flat_input.as_image_model(found.model) if check else None
    if image_model is not None:  # (H, W) in, a channel added inside: a greyscale image model
        _, height, width, _ = image_model.input_shape
        first = type(found.model.layers[0]).__name__ if isinstance(found.model, keras.Sequential) else "expand_dims"
        note = flat_input.note(label, height, width, first)
        found = dataclasses.replace(found, model=image_model, notes=(*found.notes, note))
    if check:
        check_image_model(found.model, label)
    return found


def load_model(
    source: str | os.PathLike | bytes | BinaryIO, *, name: str | None = None, check: bool = True
) -> keras.Model:
    """Load a model file safely: ``read_model(...).model`` (every format ``read_model`` opens).

    Returns:
        The model, uncompiled.

    Raises:
        ModelLoadError: see ``read_model``; NotAnImageModelError when ``check`` and not an image CNN.
    """
    return read_model(source, name=name, check=check).model


def check_image_model(model: keras.Model, label: str | None = None) -> InputSpec:
    """Require one image input ``(None, H, W, C)`` and at least one conv layer.

    Raises:
        NotAnImageModelError: with a message that says what the model is instead.
    """
    try:
        spec = input_spec(model)
    except NotAnImageModelError as err:
        raise NotAnImageModelError(f"'{label}': {err}" if label else str(err)) from None
    if not conv_layers(model):
        message = no_conv_message(model)
        raise NotAnImageModelError(f"'{label}': {message}" if label else message)
    return spec
