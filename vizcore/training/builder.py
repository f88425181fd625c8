"""Build a CNN from a list of layer specs: shapes and parameters first, problems inline, then Keras.

The Builder page keeps a tuple of small frozen specs in session state. ``infer`` walks them with
plain arithmetic (no Keras), so every widget change shows each layer's output shape, parameter
count and, where a choice cannot work, a one-line problem on that row. ``build`` turns valid specs
into a Functional model with every layer named and the split head of the presets (a ``logits``
Dense and a separate ``probs`` softmax).

Example:
    >>> specs = specs_from_preset("lenet5")
    >>> rows = infer(specs, (28, 28, 1), 10)
    >>> rows[-1].output_shape, sum(r.params for r in rows)
    ((10,), 61706)
    >>> model = build(specs, (28, 28, 1), 10, name="my_lenet")
    >>> specs_from_json(specs_to_json(specs)) == specs
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from vizcore.errors import ModelBuildError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "linear")
PADDINGS = ("valid", "same")
MAX_PARAMS = 50_000_000  # beyond this a model is refused: it would not train on a CPU server
MAX_LAYERS = 64
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


# --------------------------------------------------------------------------- specs


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


@dataclass(frozen=True)
class Row:
    """One line of the builder's table, computed before anything is built.

    ``output_shape`` has no batch axis, e.g. ``(26, 26, 32)`` or ``(128,)``; None once an earlier
    problem makes it unknown. ``problem`` blocks building; ``note`` is advice only.
    """

    index: int  # position in the spec list; -1 for the input, len(specs) and +1 for the head
    name: str
    type: str  # the Keras class name
    output_shape: tuple[int, ...] | None
    params: int
    problem: str | None = None
    note: str | None = None


# --------------------------------------------------------------------------- (de)serialisation


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


# --------------------------------------------------------------------------- presets


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


# --------------------------------------------------------------------------- inference


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


def _window_out(size: int, window: int, stride: int, padding: str) -> int:
    return math.ceil(size / stride) if padding == "same" else (size - window) // stride + 1


def _check_settings(spec: LayerSpec) -> str | None:
    """A problem with the spec's own numbers, whatever comes before it."""
    if isinstance(spec, Conv):
        if spec.filters < 1 or spec.kernel < 1 or spec.stride < 1:
            return "Filters, kernel size and stride must each be at least 1."
        if spec.filters > 4096 or spec.kernel > 64:
            return "At most 4096 filters and a kernel of 64 pixels."
    if isinstance(spec, (MaxPool, AvgPool)):
        if spec.pool < 1 or (spec.stride is not None and spec.stride < 1):
            return "Pool size and stride must each be at least 1."
    if isinstance(spec, (Conv, MaxPool, AvgPool)) and spec.padding not in PADDINGS:
        return f"Padding must be 'valid' or 'same', not {spec.padding!r}."
    if isinstance(spec, (Conv, Dense)) and spec.activation not in ACTIVATIONS:
        return f"Unknown activation {spec.activation!r}; choose one of {', '.join(ACTIVATIONS)}."
    if isinstance(spec, Dense) and not 1 <= spec.units <= 65536:
        return "A Dense layer needs between 1 and 65,536 units."
    if isinstance(spec, Dropout) and not 0.0 <= spec.rate < 1.0:
        return f"The dropout rate must be in [0, 1), got {spec.rate:g}: 1 would drop every value."
    if spec.name is not None and (not NAME_RE.match(spec.name) or spec.name in ("logits", "probs", "image")):
        return (
            f"Layer names start with a letter and use letters, digits, '_', '-' or '.'; {spec.name!r} is not allowed."
        )
    return None


def _step(spec: LayerSpec, shape: tuple[int, ...]) -> tuple[tuple[int, ...] | None, int, str | None, str | None]:
    """(output shape, params, problem, note) of one layer on an input of ``shape`` (no batch axis)."""
    spatial = len(shape) == 3
    if isinstance(spec, (Conv, MaxPool, AvgPool)):
        what = "Conv2D" if isinstance(spec, Conv) else "Pooling"
        if not spatial:
            return (
                None,
                0,
                (
                    f"{what} needs an image-shaped feature map (height, width, channels), but the input here "
                    f"is already a vector of {shape[0]} values: move this layer before Flatten / GlobalAveragePooling."
                ),
                None,
            )
        h, w, c = shape
        window = spec.kernel if isinstance(spec, Conv) else spec.pool
        stride = spec.stride if isinstance(spec, Conv) else (spec.stride or spec.pool)
        oh, ow = (_window_out(h, window, stride, spec.padding), _window_out(w, window, stride, spec.padding))
        if oh < 1 or ow < 1:
            return (
                None,
                0,
                (
                    f"A {window}x{window} window does not fit the {h}x{w} input (output would be {oh}x{ow}): "
                    "use a smaller window, 'same' padding, or fewer pooling layers before it."
                ),
                None,
            )
        if isinstance(spec, Conv):
            return (oh, ow, spec.filters), window * window * c * spec.filters + spec.filters, None, None
        return (oh, ow, c), 0, None, None
    if isinstance(spec, BatchNorm):
        return shape, 4 * shape[-1], None, None
    if isinstance(spec, Dropout):
        return shape, 0, None, ("A rate of 0 does nothing." if spec.rate == 0 else None)
    if isinstance(spec, Flatten):
        return (
            (math.prod(shape),),
            0,
            None,
            (None if spatial else "The input is already a vector; Flatten does nothing."),
        )
    if isinstance(spec, GlobalAvgPool):
        if not spatial:
            return (
                None,
                0,
                "GlobalAveragePooling needs an image-shaped feature map, but the input here is already a vector.",
                None,
            )
        return (shape[-1],), 0, None, None
    if isinstance(spec, Dense):
        if spatial:
            h, w, c = shape
            return (
                None,
                0,
                (
                    f"Dense after a {h}x{w}x{c} feature map would act on each pixel's {c} channels separately, "
                    "not on the whole image: add a Flatten (or GlobalAveragePooling) layer before it."
                ),
                None,
            )
        return (spec.units,), shape[0] * spec.units + spec.units, None, None
    raise ModelBuildError(f"Not a layer spec: {spec!r:.80}")


def infer(
    specs: tuple[LayerSpec, ...] | list[LayerSpec], input_shape: tuple[int, int, int], num_classes: int
) -> list[Row]:
    """Each layer's output shape, parameter count and problem, without building anything.

    Args:
        specs: the layers between the input and the head.
        input_shape: (height, width, channels) of the images.
        num_classes: outputs of the head (1 gives a sigmoid head, as in the presets).

    Returns:
        Rows: the input, one per spec, then the head's ``logits`` Dense and ``probs`` activation.
        A row whose choice cannot work carries a ``problem`` instead of raising; the rows after it
        have ``output_shape`` None. ``problems(rows)`` lists them all.
    """
    specs = tuple(specs)
    rows = []
    shape: tuple[int, ...] | None = tuple(int(d) for d in input_shape)
    input_problem = None
    if len(shape) != 3 or min(shape) < 1:
        input_problem, shape = f"The input must be (height, width, channels), each at least 1; got {input_shape}.", None
    elif len(specs) > MAX_LAYERS:
        input_problem = f"{len(specs)} layers; the builder allows {MAX_LAYERS}."
    elif not any(isinstance(s, Conv) for s in specs):
        input_problem = "The model has no Conv2D layer: add at least one, ConvLens explains convolutional networks."
    rows.append(Row(-1, "image", "InputLayer", shape, 0, input_problem))
    names = layer_names(specs)
    duplicates = {n for n in names if names.count(n) > 1}
    for i, (spec, name) in enumerate(zip(specs, names)):
        problem = _check_settings(spec) or (
            f"The name '{name}' is used by another layer." if name in duplicates else None
        )
        out, params, note = None, 0, None
        if shape is not None and problem is None:
            out, params, problem, note = _step(spec, shape)
        rows.append(Row(i, name, KERAS_TYPES[spec.type], out, params, problem, note))
        shape = out
    head_problem, logits_shape, logits_params = None, None, 0
    if not isinstance(num_classes, int) or num_classes < 1:
        head_problem = f"The number of classes must be at least 1, got {num_classes}."
    elif shape is not None and len(shape) == 3:
        head_problem = (
            f"The last layer outputs a {'x'.join(map(str, shape))} feature map: add a Flatten or "
            "GlobalAveragePooling layer before the classifier."
        )
    elif shape is not None:
        logits_shape, logits_params = (num_classes,), shape[0] * num_classes + num_classes
        total = sum(r.params for r in rows) + logits_params
        if total > MAX_PARAMS:
            head_problem = (
                f"The model would have {total:,} parameters; the builder allows {MAX_PARAMS:,}. "
                "Use fewer units or more pooling."
            )
    rows.append(Row(len(specs), "logits", "Dense", logits_shape, logits_params, head_problem))
    rows.append(Row(len(specs) + 1, "probs", "Activation", logits_shape, 0))
    return rows


def problems(rows: list[Row]) -> list[str]:
    """Every problem as ``"name: message"``, in layer order; empty when the model can be built."""
    return [f"{r.name}: {r.problem}" for r in rows if r.problem]


def total_params(rows: list[Row]) -> int:
    """Sum of the rows' parameter counts."""
    return sum(r.params for r in rows)


# --------------------------------------------------------------------------- building


def _keras_layer(spec: LayerSpec, name: str):
    import keras

    if isinstance(spec, Conv):
        return keras.layers.Conv2D(
            spec.filters, spec.kernel, strides=spec.stride, padding=spec.padding, activation=spec.activation, name=name
        )
    if isinstance(spec, MaxPool):
        return keras.layers.MaxPooling2D(spec.pool, strides=spec.stride, padding=spec.padding, name=name)
    if isinstance(spec, AvgPool):
        return keras.layers.AveragePooling2D(spec.pool, strides=spec.stride, padding=spec.padding, name=name)
    if isinstance(spec, BatchNorm):
        return keras.layers.BatchNormalization(name=name)
    if isinstance(spec, Dropout):
        return keras.layers.Dropout(spec.rate, name=name)
    if isinstance(spec, Flatten):
        return keras.layers.Flatten(name=name)
    if isinstance(spec, GlobalAvgPool):
        return keras.layers.GlobalAveragePooling2D(name=name)
    return keras.layers.Dense(spec.units, activation=spec.activation, name=name)


def build(
    specs: tuple[LayerSpec, ...] | list[LayerSpec],
    input_shape: tuple[int, int, int],
    num_classes: int,
    name: str = "custom_cnn",
):
    """A Functional ``keras.Model``: ``image`` input, the specs' layers, ``logits`` Dense, ``probs`` softmax.

    Raises:
        ModelBuildError: ``infer`` found a problem (the message lists every one).
    """
    import keras

    rows = infer(specs, input_shape, num_classes)
    found = problems(rows)
    if found:
        raise ModelBuildError("The model cannot be built: " + " ".join(found))
    safe_name = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "custom_cnn"
    inputs = keras.Input(tuple(input_shape), name="image")
    x = inputs
    for spec, layer_name in zip(specs, layer_names(specs)):
        x = _keras_layer(spec, layer_name)(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("sigmoid" if num_classes == 1 else "softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=safe_name)
