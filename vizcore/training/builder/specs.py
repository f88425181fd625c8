"""The Builder's layer specs: small frozen dataclasses, their names, their JSON form, and the presets' layers.

Example:
    >>> specs = specs_from_preset("lenet5")
    >>> specs_from_json(specs_to_json(specs)) == specs
    True
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from vizcore.errors import ModelBuildError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "linear")
PADDINGS = ("valid", "same")
MAX_PARAMS = 50_000_000  # beyond this a model is refused: it would not train on a CPU server
MAX_LAYERS = 64
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Conv:
    """Conv2D: ``filters`` kernels of ``kernel`` x ``kernel`` moved by ``stride``."""

    filters: int = 32
    kernel: int = 3
    stride: int = 1
    padding: str = "valid"
    activation: str = "relu"
    name: str | None = None
    type: ClassVar[str] = "conv"


@dataclass(frozen=True)
class MaxPool:
    """MaxPooling2D over ``pool`` x ``pool`` windows; ``stride`` None means the pool size."""

    pool: int = 2
    stride: int | None = None
    padding: str = "valid"
    name: str | None = None
    type: ClassVar[str] = "maxpool"


@dataclass(frozen=True)
class AvgPool:
    """AveragePooling2D over ``pool`` x ``pool`` windows; ``stride`` None means the pool size."""

    pool: int = 2
    stride: int | None = None
    padding: str = "valid"
    name: str | None = None
    type: ClassVar[str] = "avgpool"


@dataclass(frozen=True)
class BatchNorm:
    """BatchNormalization over the last axis (channels)."""

    name: str | None = None
    type: ClassVar[str] = "batchnorm"


@dataclass(frozen=True)
class Dropout:
    """Dropout: zero a fraction ``rate`` of the values while training."""

    rate: float = 0.25
    name: str | None = None
    type: ClassVar[str] = "dropout"


@dataclass(frozen=True)
class Flatten:
    """Flatten a feature map into a vector."""

    name: str | None = None
    type: ClassVar[str] = "flatten"


@dataclass(frozen=True)
class GlobalAvgPool:
    """GlobalAveragePooling2D: one mean per channel."""

    name: str | None = None
    type: ClassVar[str] = "gap"


@dataclass(frozen=True)
class Dense:
    """A fully connected layer of ``units`` with an activation."""

    units: int = 128
    activation: str = "relu"
    name: str | None = None
    type: ClassVar[str] = "dense"


LayerSpec = Conv | MaxPool | AvgPool | BatchNorm | Dropout | Flatten | GlobalAvgPool | Dense
SPEC_TYPES: dict[str, type] = {
    cls.type: cls for cls in (Conv, MaxPool, AvgPool, BatchNorm, Dropout, Flatten, GlobalAvgPool, Dense)
}
KERAS_TYPES = {
    "conv": "Conv2D",
    "maxpool": "MaxPooling2D",
    "avgpool": "AveragePooling2D",
    "batchnorm": "BatchNormalization",
    "dropout": "Dropout",
    "flatten": "Flatten",
    "gap": "GlobalAveragePooling2D",
    "dense": "Dense",
}
_AUTO_PREFIX = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "batchnorm": "bn",
    "dropout": "dropout",
    "flatten": "flatten",
    "gap": "gap",
    "dense": "fc",
}


def spec_to_dict(spec: LayerSpec) -> dict[str, Any]:
    """``{"type": "conv", "filters": 32, ...}``; fields at their default value are left out."""
    out: dict[str, Any] = {"type": spec.type}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value != f.default:
            out[f.name] = value
    return out


def spec_from_dict(item: dict[str, Any]) -> LayerSpec:
    """The spec a ``spec_to_dict`` dict describes.

    Raises:
        ModelBuildError: not a dict, unknown type, unknown field or a value of the wrong kind.
    """
    if not isinstance(item, dict) or "type" not in item:
        raise ModelBuildError(f"A layer must be an object with a 'type', got {item!r:.80}.")
    kind = item["type"]
    if kind not in SPEC_TYPES:
        raise ModelBuildError(f"Unknown layer type {kind!r:.40}; choose one of {', '.join(SPEC_TYPES)}.")
    cls = SPEC_TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in item.items():
        if key == "type":
            continue
        if key not in fields:
            raise ModelBuildError(f"A {kind} layer has no setting {key!r:.40}; it has {', '.join(fields) or 'none'}.")
        default = fields[key].default
        if key in ("name", "padding", "activation") or isinstance(default, str):
            ok = isinstance(value, str) or (value is None and key == "name")
        elif key == "rate":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:  # integer settings; stride may be None
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                value is None and key == "stride" and cls is not Conv
            )
        if not ok:
            raise ModelBuildError(f"The {key} of a {kind} layer cannot be {value!r:.40}.")
        kwargs[key] = value
    return cls(**kwargs)


def specs_to_json(specs: tuple[LayerSpec, ...] | list[LayerSpec]) -> str:
    """Compact JSON of a spec list, for session state and URLs."""
    return json.dumps([spec_to_dict(s) for s in specs], separators=(",", ":"))


def specs_from_json(text: str) -> tuple[LayerSpec, ...]:
    """The specs that ``specs_to_json`` wrote.

    Raises:
        ModelBuildError: not JSON, not a list, or a layer that cannot be read.
    """
    try:
        items = json.loads(text)
    except (TypeError, ValueError) as err:
        raise ModelBuildError(f"The layer list is not valid JSON ({err}).") from None
    if not isinstance(items, list):
        raise ModelBuildError("The layer list must be a JSON list of layers.")
    if len(items) > MAX_LAYERS:
        raise ModelBuildError(f"The layer list has {len(items)} layers; the builder allows {MAX_LAYERS}.")
    return tuple(spec_from_dict(item) for item in items)


def specs_from_preset(name: str) -> tuple[LayerSpec, ...]:
    """The layers of a ``vizcore.models`` preset (without its head), with the same layer names.

    Raises:
        ValueError: unknown preset.
    """
    if name == "lenet5":
        return (
            Conv(6, 5, padding="same", name="conv1"),
            MaxPool(2, name="pool1"),
            Conv(16, 5, name="conv2"),
            MaxPool(2, name="pool2"),
            Flatten(name="flatten"),
            Dense(120, name="fc1"),
            Dense(84, name="fc2"),
        )
    if name == "mnist_cnn":
        return (
            Conv(32, 3, name="conv1"),
            Conv(64, 3, name="conv2"),
            MaxPool(2, name="pool"),
            Dropout(0.25, name="dropout1"),
            Flatten(name="flatten"),
            Dense(128, name="fc"),
            Dropout(0.5, name="dropout2"),
        )
    if name == "cifar_cnn":
        return (
            Conv(32, 3, name="conv1"),
            MaxPool(2, name="pool1"),
            Conv(64, 3, name="conv2"),
            MaxPool(2, name="pool2"),
            Conv(64, 3, name="conv3"),
            Flatten(name="flatten"),
            Dense(64, name="fc"),
        )
    if name == "tiny_vgg":
        return tuple(
            layer
            for block in (1, 2)
            for layer in (
                Conv(10, 3, name=f"conv{block}_1"),
                Conv(10, 3, name=f"conv{block}_2"),
                MaxPool(2, name=f"pool{block}"),
            )
        ) + (Flatten(name="flatten"),)
    raise ValueError(f"Unknown preset '{name}'; choose one of cifar_cnn, lenet5, mnist_cnn, tiny_vgg.")


def layer_names(specs: tuple[LayerSpec, ...] | list[LayerSpec]) -> list[str]:
    """The name each spec's layer gets: its own, else ``conv1``, ``pool1``, ``fc1``, ... (unique)."""
    taken = {s.name for s in specs if s.name}
    counts: dict[str, int] = {}
    names = []
    for spec in specs:
        if spec.name:
            names.append(spec.name)
            continue
        prefix = _AUTO_PREFIX[spec.type]
        while True:
            counts[prefix] = counts.get(prefix, 0) + 1
            candidate = f"{prefix}{counts[prefix]}"
            if candidate not in taken:
                break
        taken.add(candidate)
        names.append(candidate)
    return names
