"""Legacy Keras models: repair tf.keras 1.x/2.x and TF.js Layers configs for Keras 3, and set weights by name.

Every config is inspected for its layer class names before anything is built: a Lambda layer
or a class Keras does not ship is refused, never executed. Weights are read with h5py/NumPy
and assigned by layer name, so a nested model or a renamed variable (``depthwise_kernel``)
finds its values. The repairs are listed in ``REPAIRS`` and in docs/legacy_repairs.md.

Example:
    >>> config, repairs = repair_config(json.loads(h5.attrs["model_config"]))
    >>> model = build_model(config, "keras_model.h5")
    >>> assign_weights(model, h5_weights(h5), "keras_model.h5")
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from vizcore.errors import ModelLoadError

LAMBDA_REFUSED = (
    "was refused for safety: it contains a Lambda layer, whose Python code would run on this server "
    "when loaded. ConvLens never loads such code from an uploaded file. Replace the Lambda by a built-in "
    "layer (for example Rescaling) and save the model again."
)

REPAIRS: dict[str, str] = {
    "groups": "drop `groups` from DepthwiseConv2D (tf.keras/TF.js write it; Keras 3 refuses the keyword)",
    "batch_input_shape": (
        "`batch_input_shape` -> `batch_shape` on InputLayer; on another layer -> an InputLayer before it"
    ),
    "initializer_dtype": "drop `dtype` from initializer configs (tf.keras 1.x wrote it; Keras 3 refuses it)",
    "policy_dtype": "a `Policy` dtype dict -> its name string (mixed-precision era tf.keras)",
    "single_output_list": "a functional model's one input/output stored as a one-element list -> the entry itself",
    "model_class": "class `Model` (tfjs-layers, tf.keras 1.x) -> `Functional`",
    "legacy_module": "drop `module`/`registered_name` that point into tf_keras/tensorflow",
    "bn_axis_list": "BatchNormalization `axis` as a one-element list -> the int",
    "sequential_list": (
        "a Sequential config that is a bare list of layers (Keras 2.0, tfjs-layers 1.x) -> {name, layers}"
    ),
}

# legacy variable name -> Keras 3 variable name, per layer class
WEIGHT_ALIASES: dict[str, dict[str, str]] = {"DepthwiseConv2D": {"depthwise_kernel": "kernel"}}

_CONTAINERS = ("Sequential", "Functional", "Model")


def _layer_configs(config: Any) -> Iterator[dict]:
    """Every layer config (a dict with class_name and config) of a model config, nested ones too."""
    if not isinstance(config, dict):
        return
    yield config
    inner = config.get("config")
    layers = inner.get("layers", ()) if isinstance(inner, dict) else inner if isinstance(inner, list) else ()
    for layer in layers or ():
        yield from _layer_configs(layer)


def known_layer_classes() -> frozenset[str]:
    """Names of the layer and model classes Keras 3 ships (what an uploaded config may use)."""
    names = {
        n for n, obj in vars(keras.layers).items() if isinstance(obj, type) and issubclass(obj, keras.layers.Layer)
    }
    return frozenset(names | set(_CONTAINERS) | {"InputLayer"})


def refuse_unsafe(config: Any, label: str) -> None:
    """Raise ModelLoadError for a Lambda layer or a layer class Keras does not ship, before building."""
    layers = list(_layer_configs(config))
    if "Lambda" in {c.get("class_name") for c in layers}:
        raise ModelLoadError(f"'{label}' {LAMBDA_REFUSED}")
    known = known_layer_classes()
    # Keras 3's own operations (module "keras.src.ops...") are left to its safe mode
    unknown = sorted(
        {
            str(c.get("class_name"))
            for c in layers
            if c.get("class_name") not in known and not str(c.get("module") or "").startswith("keras")
        }
    )
    if unknown:
        raise ModelLoadError(
            f"'{label}' uses the custom layer or object '{unknown[0]}', which ConvLens does not know. Its code is not "
            "in the file, and code from an uploaded file is never run (refused for safety). Use built-in Keras "
            "layers, or load the model in a notebook where you can register the class."
        )


def _unwrap_single(entries: Any) -> Any:
    if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], list):
        return entries[0]
    return entries


def _repair_layer(layer: dict, done: set[str]) -> None:
    cls, cfg = layer.get("class_name"), layer.get("config")
    if cls == "Sequential" and isinstance(cfg, list):
        layer["config"] = cfg = {"name": layer.get("name") or "sequential", "layers": cfg}
        done.add("sequential_list")
    if not isinstance(cfg, dict):
        return
    module = str(layer.get("module") or "")
    if module and not module.startswith("keras"):
        layer.pop("module", None)
        layer.pop("registered_name", None)
        done.add("legacy_module")
    if cls == "Model":
        layer["class_name"] = "Functional"
        done.add("model_class")
    if cls == "DepthwiseConv2D" and "groups" in cfg:
        cfg.pop("groups")
        done.add("groups")
    if cls == "InputLayer" and "batch_input_shape" in cfg:
        cfg["batch_shape"] = cfg.pop("batch_input_shape")
        done.add("batch_input_shape")
    if cls == "BatchNormalization" and isinstance(cfg.get("axis"), list) and len(cfg["axis"]) == 1:
        cfg["axis"] = int(cfg["axis"][0])
        done.add("bn_axis_list")
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "Policy":
        cfg["dtype"] = dtype.get("config", {}).get("name", "float32")
        done.add("policy_dtype")
    for key, value in cfg.items():
        if key.endswith("_initializer") and isinstance(value, dict) and isinstance(value.get("config"), dict):
            if value["config"].pop("dtype", None) is not None:
                done.add("initializer_dtype")
    if layer["class_name"] == "Functional":
        for key in ("input_layers", "output_layers"):
            unwrapped = _unwrap_single(cfg.get(key))
            if unwrapped is not cfg.get(key):
                cfg[key] = unwrapped
                done.add("single_output_list")


def _explicit_inputs(layer: dict, done: set[str]) -> None:
    """A Sequential whose first layer carries batch_input_shape gets an InputLayer before it."""
    cfg = layer.get("config")
    if layer.get("class_name") != "Sequential" or not isinstance(cfg, dict) or not cfg.get("layers"):
        return
    first = cfg["layers"][0]
    shape = first.get("config", {}).pop("batch_input_shape", None) if first.get("class_name") != "InputLayer" else None
    if shape is not None:
        name = f"{first['config'].get('name', 'layer')}_input"
        dtype = first["config"].get("dtype")
        cfg["layers"].insert(
            0,
            {
                "class_name": "InputLayer",
                "config": {"batch_shape": shape, "name": name, "dtype": dtype if isinstance(dtype, str) else "float32"},
            },
        )
        done.add("batch_input_shape")
    for other in cfg["layers"][1:]:
        if other.get("config", {}).pop("batch_input_shape", None) is not None:
            done.add("batch_input_shape")


def repair_config(config: dict) -> tuple[dict, tuple[str, ...]]:
    """A repaired deep copy of a legacy model config, and the REPAIRS keys applied (sorted)."""
    fixed = copy.deepcopy(config)
    done: set[str] = set()
    for layer in _layer_configs(fixed):
        _repair_layer(layer, done)
        _explicit_inputs(layer, done)
    return fixed, tuple(sorted(done))


def build_model(config: dict, label: str) -> keras.Model:
    """Build a Keras 3 model from a (repaired) legacy config in safe mode, after ``refuse_unsafe``."""
    refuse_unsafe(config, label)
    from keras.src.legacy.saving import saving_options, saving_utils  # Keras's own legacy reader
    from keras.src.saving import serialization_lib

    with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(True):
        return saving_utils.model_from_config(copy.deepcopy(config), custom_objects={})


# --------------------------------------------------------------------------- weights by name


def h5_weights(group: Any) -> dict[tuple[str, ...], np.ndarray]:
    """Every weight array in an h5 ``model_weights`` group, keyed by its path split on '/' (':0' dropped)."""
    found: dict[tuple[str, ...], np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if hasattr(obj, "shape") and hasattr(obj, "dtype"):
            found[tuple(name.split(":")[0].split("/"))] = np.asarray(obj[()])

    group.visititems(visit)
    return found


def _leaf_layers(model: keras.Layer, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], keras.Layer]]:
    for layer in getattr(model, "layers", ()):
        path = (*prefix, layer.name)
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer, path)
        elif layer.weights:
            yield path, layer


def _candidates(path: tuple[str, ...], stored: dict[tuple[str, ...], np.ndarray]) -> dict[str, np.ndarray]:
    """Stored weights of the layer at ``path``: by its name, preferring entries under its outer models."""
    mine = [(key, value) for key, value in stored.items() if len(key) >= 2 and key[-2] == path[-1]]
    if len({key[-1] for key, _ in mine}) < len(mine):  # the same layer name in two nested models
        mine = [(key, value) for key, value in mine if set(path[:-1]) & set(key[:-2])] or mine
    return {key[-1]: value for key, value in mine}


def assign_weights(model: keras.Model, stored: dict[tuple[str, ...], np.ndarray], label: str) -> None:
    """Set every weight of ``model`` from ``stored`` (path -> array) by layer and variable name.

    Raises:
        ModelLoadError: a weight is missing or has another shape (one sentence naming it).
    """
    for path, layer in _leaf_layers(model):
        found = _candidates(path, stored)
        aliases = {new: old for old, new in WEIGHT_ALIASES.get(type(layer).__name__, {}).items()}
        values = []
        for var in layer.weights:
            name = var.name.split("/")[-1].split(":")[0]
            value = found.get(name, found.get(aliases.get(name, ""), None))
            if value is None and len(found) == len(layer.weights):  # names differ, the order does not
                value = list(found.values())[len(values)]
            if value is None:
                raise ModelLoadError(f"'{label}' has no stored value for the weight '{name}' of layer '{path[-1]}'.")
            if tuple(value.shape) != tuple(var.shape):
                raise ModelLoadError(
                    f"'{label}' stores the weight '{name}' of layer '{path[-1]}' with shape {tuple(value.shape)}, "
                    f"but the architecture needs {tuple(var.shape)}."
                )
            values.append(value)
        layer.set_weights(values)


def load_keras2(config: dict, weights_h5: bytes, label: str) -> keras.Model:
    """Load a ``.keras`` file that tf.keras 2 (the tf-keras package) wrote: its config repaired and built as an
    ``.h5``'s, then its ``model.weights.h5`` (the same layout Keras 3 reads)."""
    import tempfile
    from pathlib import Path

    refuse_unsafe(config, label)
    config, _ = repair_config(config)
    model = build_model(config, label)
    with tempfile.TemporaryDirectory(prefix="convlens_keras2_") as tmp:
        path = Path(tmp) / "model.weights.h5"
        path.write_bytes(weights_h5)
        model.load_weights(path)
    return model


def load_h5(path: Any, label: str) -> keras.Model:
    """Load a whole-model ``.h5`` (tf.keras 1.x/2.x or Keras 3): repair, refuse unsafe, build, set weights by name."""
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        refuse_unsafe(config, label)
        config, _ = repair_config(config)
        model = build_model(config, label)
        group = f["model_weights"] if "model_weights" in f else f
        assign_weights(model, h5_weights(group), label)
    return model
