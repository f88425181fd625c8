"""Models: presets, safe loading of user files, keras.applications, bundled models, inspection.

The graph functions (layer table, conv layers, sub-models) live in ``vizcore.graph`` and are
re-exported here, so a notebook needs one import::

    from vizcore import models
    m = models.load_model("my_model.keras")
    fm = models.feature_model(m, [models.default_target_layer(m)])
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import keras

from vizcore import blocks
from vizcore.data import keras_cache_dir
from vizcore.errors import ModelLoadError, NotAnImageModelError, WeightsUnavailableError
from vizcore.graph import (  # noqa: F401  (re-exported)
    CONV_TYPES,
    FeatureModel,
    InputSpec,
    LayerInfo,
    architecture_edges,
    conv_layers,
    default_target_layer,
    feature_model,
    head_type,
    input_spec,
    iter_layers,
    layer_table,
    no_conv_message,
    resolve_layer,
)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models"
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# --------------------------------------------------------------------------- presets


def _head(x, num_classes: int):
    """Split head: a ``logits`` Dense and a separate activation, so gradients can use the scores."""
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Activation("sigmoid" if num_classes == 1 else "softmax", name="probs")(x)


def lenet5(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, classes."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 5, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(84, activation="relu", name="fc2")(x)
    return keras.Model(inputs, _head(x, num_classes), name="lenet5")


def mnist_cnn(input_shape=(28, 28, 1), num_classes: int = 10, dense_units: int = 128) -> keras.Model:
    """The Keras MNIST CNN: conv 32@3x3, conv 64@3x3, pool, dropout, dense, dropout, classes."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Dropout(0.25, name="dropout1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = keras.layers.Dropout(0.5, name="dropout2")(x)
    return keras.Model(inputs, _head(x, num_classes), name="mnist_cnn")


def cifar_cnn(input_shape=(32, 32, 3), num_classes: int = 10) -> keras.Model:
    """The Keras/TensorFlow CIFAR-10 CNN: conv 32, pool, conv 64, pool, conv 64 (3x3), dense 64."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="fc")(x)
    return keras.Model(inputs, _head(x, num_classes), name="cifar_cnn")


def tiny_vgg(input_shape=(64, 64, 3), num_classes: int = 10) -> keras.Model:
    """Tiny VGG (the CNN Explainer network): two blocks of two conv 10@3x3 + pool, dense."""
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for block in (1, 2):
        x = keras.layers.Conv2D(10, 3, activation="relu", name=f"conv{block}_1")(x)
        x = keras.layers.Conv2D(10, 3, activation="relu", name=f"conv{block}_2")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes), name="tiny_vgg")


@dataclass(frozen=True)
class Preset:
    """A named architecture the app can build untrained."""

    label: str
    build: Callable[..., keras.Model]
    input_shape: tuple[int, int, int]
    description: str


PRESETS: dict[str, Preset] = {
    "lenet5": Preset("LeNet-5", lenet5, (28, 28, 1), "LeCun et al. 1998, for 28x28 digits; 61k parameters."),
    "mnist_cnn": Preset("MNIST CNN", mnist_cnn, (28, 28, 1), "The Keras MNIST example; 1.2M parameters."),
    "cifar_cnn": Preset("CIFAR CNN", cifar_cnn, (32, 32, 3), "The Keras/TensorFlow CIFAR-10 tutorial CNN; 122k parameters."),
    "tiny_vgg": Preset("Tiny VGG", tiny_vgg, (64, 64, 3), "The CNN Explainer network for 64x64 colour images; 9k parameters."),
}


def build_preset(name: str, *, num_classes: int = 10, input_shape: tuple[int, int, int] | None = None) -> keras.Model:
    """Build a preset, untrained. ``input_shape`` defaults to the preset's own."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset '{name}'; choose one of {sorted(PRESETS)}.")
    preset = PRESETS[name]
    return preset.build(input_shape=input_shape or preset.input_shape, num_classes=num_classes)


# --------------------------------------------------------------------------- loading user files


def _read_source(source: str | os.PathLike | bytes | BinaryIO) -> tuple[bytes | None, Path | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if hasattr(source, "getvalue"):
        return bytes(source.getvalue()), None
    if hasattr(source, "read"):
        return source.read(), None
    return None, Path(source)


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


def _check_container(path: Path, fmt: str, label: str) -> None:
    """Refuse files that have the right magic but not a model inside."""
    if fmt == ".keras":
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                bad = zf.testzip()
        except zipfile.BadZipFile as err:
            raise ModelLoadError(f"'{label}' is a damaged ZIP archive, not a readable .keras file ({err}).") from None
        if bad is not None:
            raise ModelLoadError(f"'{label}' is corrupt: the entry '{bad}' inside the .keras archive fails its checksum.")
        if "config.json" not in names:
            raise ModelLoadError(
                f"'{label}' is a ZIP archive but not a Keras model: it has no config.json "
                f"(it contains {', '.join(sorted(names)[:4]) or 'nothing'})."
            )
        with zipfile.ZipFile(path) as zf:
            _refuse_lambda(zf.read("config.json"), label)
        return
    import h5py

    try:
        with h5py.File(path, "r") as f:
            has_config = "model_config" in f.attrs
            weights_only = "layer_names" in f.attrs or "model_weights" in f
            if has_config:
                _refuse_lambda(f.attrs["model_config"], label)
    except OSError as err:
        raise ModelLoadError(f"'{label}' is a damaged HDF5 file and cannot be read ({err}).") from None
    if not has_config:
        what = "only weights (saved with save_weights)" if weights_only else "no model architecture"
        raise ModelLoadError(
            f"'{label}' holds {what}, not a whole model. Build the same architecture in code and call "
            "model.load_weights(...), or save the whole model with model.save('model.keras')."
        )


LAMBDA_REFUSED = (
    "was refused for safety: it contains a Lambda layer, whose Python code would run on this server "
    "when loaded. ConvLens never loads such code from an uploaded file. Replace the Lambda by a built-in "
    "layer (for example Rescaling) and save the model again."
)


def _class_names_in(config: Any) -> Iterator[str]:
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config["class_name"]
        for value in config.values():
            yield from _class_names_in(value)
    elif isinstance(config, list):
        for value in config:
            yield from _class_names_in(value)


def _refuse_lambda(config_json: bytes | str, label: str) -> None:
    """Refuse a model whose architecture holds a Lambda layer before Keras reads any of it."""
    try:
        config = json.loads(config_json)
    except (ValueError, TypeError):
        return  # Keras will report the broken config itself
    if "Lambda" in set(_class_names_in(config)):
        raise ModelLoadError(f"'{label}' {LAMBDA_REFUSED}")


_UNKNOWN_CLASS = re.compile(r"(?:Could not locate (?:class|function) |Unknown (?:layer|object)[^']*)'([^']+)'")


def _explain_failure(err: Exception, label: str) -> ModelLoadError:
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


def load_model(source: str | os.PathLike | bytes | BinaryIO, *, name: str | None = None, check: bool = True) -> keras.Model:
    """Load a ``.keras`` or ``.h5`` model from a path or from uploaded bytes, safely.

    The format is read from the file's content, not its name. ``safe_mode=True`` always: a Lambda
    layer or an unknown custom layer is refused, never executed.

    Args:
        source: a path, the file's bytes, or a binary file-like (Streamlit's UploadedFile).
        name: the file name to show in messages (defaults to the path's name).
        check: also require an image CNN (one 4-D input, at least one conv layer).

    Returns:
        The model, uncompiled.

    Raises:
        ModelLoadError: empty, corrupt or unknown file, SavedModel folder, refused layer;
            NotAnImageModelError (a subclass) when ``check`` and the model is not an image CNN.
    """
    data, path = _read_source(source)
    label = name or (path.name if path else "uploaded file")
    if path is not None:
        if path.is_dir():
            if (path / "saved_model.pb").exists():
                raise ModelLoadError(
                    f"'{label}' is a TensorFlow SavedModel folder. Keras 3 cannot load those as models: open it "
                    "with the TensorFlow that wrote it and save it with model.save('model.keras') (or '.h5')."
                )
            raise ModelLoadError(f"'{label}' is a folder, not a model file (.keras or .h5).")
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
    fmt = _sniff(head)
    if fmt is None:
        raise ModelLoadError(
            f"'{label}' is not a Keras model file: .keras files are ZIP archives and .h5 files are HDF5, "
            f"but {_describe_bytes(head)}."
        )
    with tempfile.TemporaryDirectory(prefix="convlens_load_") as tmp:
        target = Path(tmp) / f"model{fmt}"
        if data is not None:
            target.write_bytes(data)
        elif path.suffix.lower() in ((fmt,) if fmt == ".keras" else (".h5", ".hdf5")):
            target = path
        else:
            shutil.copyfile(path, target)
        _check_container(target, fmt, label)
        try:
            model = keras.models.load_model(target, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises ValueError, TypeError, KeyError, OSError, ...
            raise _explain_failure(err, label) from err
    if check:
        check_image_model(model, label)
    return model


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


# --------------------------------------------------------------------------- keras.applications


@dataclass(frozen=True)
class Application:
    """A ``keras.applications`` network and how its inputs are preprocessed."""

    build: Callable[..., keras.Model]
    size: int
    preprocess: str  # a vizcore.data.PREPROCESS_MODES key


APPLICATIONS: dict[str, Application] = {
    "MobileNetV2": Application(keras.applications.MobileNetV2, 224, "symmetric"),
    "ResNet50": Application(keras.applications.ResNet50, 224, "caffe"),
    "VGG16": Application(keras.applications.VGG16, 224, "caffe"),
    "EfficientNetB0": Application(keras.applications.EfficientNetB0, 224, "raw"),
}


def load_application(name: str, *, weights: str | None = "imagenet") -> keras.Model:
    """Build a keras.applications network, with ImageNet weights (downloaded once) or untrained.

    Raises:
        WeightsUnavailableError: the weights could not be downloaded; the message names the file
            and the folder where it can be placed by hand.
    """
    if name not in APPLICATIONS:
        raise ValueError(f"Unknown network '{name}'; choose one of {sorted(APPLICATIONS)}.")
    app = APPLICATIONS[name]
    try:
        return app.build(weights=weights, input_shape=(app.size, app.size, 3))
    except Exception as err:
        if weights is None:
            raise
        urls = re.findall(r"https?://\S+?\.h5", str(err))
        filename = urls[0].rsplit("/", 1)[-1] if urls else f"the {name} weights file"
        raise WeightsUnavailableError(
            f"The ImageNet weights of {name} could not be downloaded ({type(err).__name__}); this machine "
            f"seems to be offline. Place {filename} in {keras_cache_dir('models')} and try again, "
            "or build the network untrained."
        ) from err


def imagenet_class_names() -> tuple[str, ...] | None:
    """The 1,000 ImageNet class names from the Keras cache, or None when it is not there."""
    path = Path(keras_cache_dir("models")) / "imagenet_class_index.json"
    if not path.exists():
        return None
    index = json.loads(path.read_text())
    return tuple(index[str(i)][1] for i in range(len(index)))


# --------------------------------------------------------------------------- bundled models


def list_bundled() -> list[str]:
    """Names of the trained models that ship in ``models/`` (those with a card)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.keras") if p.with_suffix(".json").exists())


def bundled_card(name: str) -> dict[str, Any]:
    """The model card of a bundled model: data, epochs, held-out accuracy, classes, input range."""
    return json.loads((BUNDLED_DIR / f"{name}.json").read_text())


# --------------------------------------------------------------------------- the working model


@dataclass(frozen=True)
class LoadedModel:
    """A model with what the pages need to know about it."""

    model: keras.Model
    key: str  # stable cache key: "bundled:mnist_cnn", "preset:lenet5", "upload:<sha1>", ...
    label: str
    class_names: tuple[str, ...]
    preprocess: str = "unit"  # a vizcore.data.PREPROCESS_MODES key
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> InputSpec:
        return input_spec(self.model)


def _class_names(model: keras.Model, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Names for the model's classes; a single sigmoid unit is binary: two classes."""
    units = int(layer_table(model)[-1].output_shape[-1] or 1)
    if units == 1 and head_type(model) == "sigmoid":
        units = 2
    if names and len(names) == units:
        return tuple(names)
    return tuple(f"class {i}" for i in range(units))


def open_bundled(name: str) -> LoadedModel:
    """Load a bundled trained model with its card."""
    card = bundled_card(name)
    model = load_model(BUNDLED_DIR / f"{name}.keras")
    return LoadedModel(model, f"bundled:{name}", card.get("label", name), _class_names(model, tuple(card["class_names"])), card.get("preprocess", "unit"), card)


def open_preset(name: str, *, num_classes: int = 10) -> LoadedModel:
    """Build a preset, untrained, as a working model."""
    model = build_preset(name, num_classes=num_classes)
    names = tuple(str(i) for i in range(num_classes)) if PRESETS[name].input_shape[-1] == 1 else None
    return LoadedModel(model, f"preset:{name}", f"{PRESETS[name].label} (untrained)", _class_names(model, names), "unit")


def open_application(name: str, *, weights: str | None = "imagenet") -> LoadedModel:
    """A keras.applications network as a working model."""
    model = load_application(name, weights=weights)
    suffix = "ImageNet" if weights else "untrained"
    return LoadedModel(model, f"app:{name}:{weights}", f"{name} ({suffix})", _class_names(model, imagenet_class_names()), APPLICATIONS[name].preprocess)


def open_upload(data: bytes, filename: str, key: str) -> LoadedModel:
    """A user's uploaded file as a working model (input range assumed [0, 1]; the page can change it)."""
    model = load_model(data, name=filename)
    return LoadedModel(model, key, filename, _class_names(model), "unit")


@dataclass(frozen=True)
class ModelSummary:
    """Headline figures of a model."""

    name: str
    params: int
    trainable_params: int
    layers: int
    conv_layers: tuple[str, ...]
    input: InputSpec
    head: str
    outputs: int
    default_layer: str | None


def summarize(model: keras.Model) -> ModelSummary:
    """Parameter counts, conv layers, input, head and default target layer (a block output) of a model."""
    rows = layer_table(model)
    convs = tuple(conv_layers(model))
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return ModelSummary(
        name=model.name,
        params=int(model.count_params()),
        trainable_params=trainable,
        layers=len(rows),
        conv_layers=convs,
        input=input_spec(model),
        head=head_type(model),
        outputs=int(rows[-1].output_shape[-1] or 1),
        default_layer=blocks.default_target_layer(model) if convs else None,
    )


COLOURS = {"conv": "#cfe2ff", "pool": "#d1e7dd", "dense": "#fff3cd", "model": "#e2d9f3", "other": "#f8f9fa"}


def _colour(row: LayerInfo) -> str:
    t = row.type.lower()
    if row.is_conv or "conv" in t:
        return COLOURS["conv"]
    if "pool" in t:
        return COLOURS["pool"]
    if t in ("dense", "activation", "softmax"):
        return COLOURS["dense"]
    return COLOURS["model"] if t in ("functional", "sequential") else COLOURS["other"]


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape[1:])


def architecture_dot(model: keras.Model, *, max_nodes: int = 80, by_block: bool = False) -> str:
    """A Graphviz DOT diagram of the model's own layers (nested models as one box).

    Args:
        max_nodes: beyond this many layers, the middle ones are left out.
        by_block: one node per block or stage (``vizcore.blocks``) instead of one per layer.
    """
    rows, edges = architecture_edges(model)
    spec = input_spec(model)
    lines = [
        "digraph G {",
        '  rankdir=TB; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        f'  "input" [label="input\\n{spec.height}x{spec.width}x{spec.channels}", fillcolor="#eeeeee"];',
    ]
    if by_block:
        return "\n".join(lines + _block_lines(rows, edges) + ["}"])
    shown = rows if len(rows) <= max_nodes else rows[: max_nodes // 2] + rows[-max_nodes // 2 :]
    keep = {r.path for r in shown} | {"input"}
    for r in shown:
        lines.append(f'  "{r.path}" [label="{r.path}\\n{r.type} → {_shape_text(r.output_shape)}", fillcolor="{_colour(r)}"];')
    if len(shown) < len(rows):
        lines.append(f'  "…" [label="… {len(rows) - len(shown)} more layers …", shape=plaintext, style=""];')
        edges = [(shown[max_nodes // 2 - 1].path, "…"), ("…", shown[max_nodes // 2].path)] + edges
        keep.add("…")
    for a, b in edges:
        if a in keep and b in keep:
            lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines)


def _block_lines(rows: list[LayerInfo], edges: list[tuple[str, str]]) -> list[str]:
    """DOT nodes and edges with one node per block (name, layer count, output shape); a nested model stays one node."""
    by_path = {r.path: r for r in rows}
    owner = {"input": "input"}
    lines: list[str] = []

    def add(name: str, paths: tuple[str, ...], output: str | None) -> None:
        name = name if name not in owner.values() else f"{name} #{len(lines) + 1}"
        owner.update({p: name for p in paths})
        last = by_path[output or paths[-1]]
        count = f"{len(paths)} layer{'s' if len(paths) > 1 else ''}" if len(paths) > 1 or name != paths[0] else last.type
        colour = COLOURS["conv"] if any(by_path[p].is_conv for p in paths) else _colour(last)
        lines.append(f'  "{name}" [label="{name}\\n{count} → {_shape_text(last.output_shape)}", fillcolor="{colour}"];')

    segment: list[LayerInfo] = []
    for row in rows + [None]:
        if row is None or row.type in ("Functional", "Sequential"):
            for g in blocks.group_rows(segment):
                add(g.name, g.layers, g.output)
            segment = []
            if row is not None:
                add(row.path, (row.path,), row.path)
        else:
            segment.append(row)
    links = dict.fromkeys((owner[a], owner[b]) for a, b in edges if a in owner and b in owner and owner[a] != owner[b])
    return lines + [f'  "{a}" -> "{b}";' for a, b in links]
