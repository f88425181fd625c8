"""Walk any Keras image model on a fresh Input: layer table, conv layers, head.

``trace(model)`` replays the model's computation once on a new ``keras.Input`` (cached per model)
instead of reading ``layer.output``; every function here reads that one trace. It covers the
models people bring:

* Functional models (the graph is replayed node by node);
* Sequential models, also ones loaded from ``.keras`` whose ``layer.output`` points at a stale
  graph node and whose ``model.output`` raises (the layers are called in order);
* models nested inside models, such as a ``keras.applications`` base inside a Sequential
  (a nested model is traced recursively; its layers get paths like ``"mobilenetv2/Conv_1"``);
* softmax or sigmoid heads, fused into a Dense layer or separate (``features.feature_model``
  recovers the pre-activation scores from the trace without touching the model).

Nothing is mutated: no weight, activation or attribute of the given model changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras

from vizcore.cache import per_model
from vizcore.errors import LayerNotFoundError, NotAnImageModelError

try:  # Functional is not public API, but it is the class every graph model derives from.
    from keras.src.models.functional import Functional as _Functional
except ImportError:  # pragma: no cover - layout of a future Keras
    _Functional = keras.Model

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
)
HEADS = ("softmax", "sigmoid", "linear")
SEP = "/"


@dataclass(frozen=True)
class InputSpec:
    """The image a model takes: height and width (None when any size works) and channels."""

    height: int | None
    width: int | None
    channels: int

    @property
    def size(self) -> tuple[int | None, int | None]:
        return (self.height, self.width)


@dataclass(frozen=True)
class LayerInfo:
    """One row of the layer table."""

    path: str  # "conv2d" or "mobilenetv2/Conv_1" for a layer inside a nested model
    type: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable: bool
    depth: int  # 0 for the model's own layers, 1 inside a nested model, ...
    is_conv: bool


def _is_graph_model(layer: Any) -> bool:
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, _Functional) and hasattr(layer, "_run_through_graph")
    )


def _flat(structure: Any) -> list[Any]:
    return list(keras.tree.flatten(structure))


def input_shape(model: keras.Model) -> tuple[int | None, ...]:
    """The batch input shape ``(None, H, W, C)`` of a model, however it was built or loaded.

    Raises:
        NotAnImageModelError: the model has several inputs, or was never built.
    """
    shapes: list[tuple] = []
    try:
        shapes = [tuple(t.shape) for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        shapes = []
    if not shapes and isinstance(model, keras.Sequential):
        first = model._layers[0] if getattr(model, "_layers", None) else None
        if isinstance(first, keras.layers.InputLayer):
            shapes = [tuple(first.batch_shape)]
    if not shapes:
        config = model.get_build_config() if hasattr(model, "get_build_config") else None
        shape = (config or {}).get("input_shape")
        if shape is not None:
            shapes = [tuple(shape)] if not isinstance(shape[0], (list, tuple)) else [tuple(s) for s in shape]
    if not shapes:
        raise NotAnImageModelError(
            f"The input size of model '{model.name}' is unknown: it was never built. "
            "Build it with a fixed input (for example keras.Input(shape=(28, 28, 1))) and save it again."
        )
    if len(shapes) > 1:
        raise NotAnImageModelError(
            f"Model '{model.name}' has {len(shapes)} inputs; ConvLens explains models that take one image."
        )
    return tuple(None if d is None else int(d) for d in shapes[0])


def input_spec(model: keras.Model) -> InputSpec:
    """The model's image input as ``InputSpec(height, width, channels)``.

    Raises:
        NotAnImageModelError: the input is not an image batch ``(None, H, W, C)``.
    """
    shape = input_shape(model)
    if len(shape) != 4:
        kind = {2: "flat vectors", 3: "sequences (for example text, audio or an RNN / Conv1D model)"}
        raise NotAnImageModelError(
            f"Model '{model.name}' expects input of shape {shape}: {kind.get(len(shape), f'{len(shape) - 1}-D data')}, "
            "not images. ConvLens needs an image input of shape (batch, height, width, channels)."
        )
    _, height, width, channels = shape
    if channels is None:
        raise NotAnImageModelError(f"Model '{model.name}' does not fix its number of input channels {shape}.")
    return InputSpec(height, width, channels)


@dataclass(frozen=True, eq=False)
class TracedLayer:
    """One layer as the trace saw it, with its symbolic tensors on the trace's fresh Input."""

    path: str  # "conv2d" or "mobilenetv2/Conv_1" for a layer inside a nested model
    layer: keras.layers.Layer
    inbound: tuple[str, ...]  # paths of the layers it reads, "input" for the image
    input: Any  # its first symbolic input
    output: Any  # its first symbolic output

    @property
    def depth(self) -> int:
        return self.path.count(SEP)

    @property
    def is_model(self) -> bool:
        """A nested model: its inner layers come before it in ``Trace.layers``."""
        return _is_graph_model(self.layer)


@dataclass(frozen=True, eq=False)
class Head:
    """How the model turns scores into outputs.

    ``kind`` is 'softmax', 'sigmoid' or 'linear'; ``layer`` the path of the last layer that computes
    (inside a nested model when that ends the model); ``fused`` is True when the activation is part
    of that layer (``Dense(10, activation="softmax")``) rather than a layer of its own.
    """

    kind: str
    layer: str
    fused: bool


@dataclass(frozen=True, eq=False)
class Trace:
    """A model replayed once on a fresh ``keras.Input``: its layers in call order and its head.

    ``layers`` lists every layer, nested ones included; a nested model follows its inner layers.
    The trace holds the layers and symbolic tensors, never the model itself.
    """

    input: Any  # the fresh keras.Input (batch, H, W, C)
    output: Any  # the model's output on it
    layers: tuple[TracedLayer, ...]
    head: Head
    _by_path: Mapping[str, TracedLayer] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", MappingProxyType({t.path: t for t in self.layers}))

    def __getitem__(self, path: str) -> TracedLayer:
        return self._by_path[path]

    def __contains__(self, path: object) -> bool:
        return path in self._by_path

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(t.path for t in self.layers)

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """(source path, layer path) for every link, in layer order; sources may be "input"."""
        return tuple((src, t.path) for t in self.layers for src in t.inbound)


def trace(model: keras.Model) -> Trace:
    """The model replayed once on a fresh ``keras.Input`` (cached per model; nothing is mutated).

    Raises:
        NotAnImageModelError: the model was never built, or has several inputs or outputs.

    Example:
        >>> t = trace(models.lenet5())
        >>> t.paths[:2], t["conv2"].inbound, (t.head.kind, t.head.layer, t.head.fused)
        (('conv1', 'pool1'), ('pool1',), ('softmax', 'probs', False))
        >>> keras.Model(t.input, t["conv2"].output).output_shape  # the image -> conv2
        (None, 10, 10, 16)
    """
    return per_model(model, "graph.trace", lambda: _replay(model), limit=1)


class _Replay:
    """What a replay sees while it runs: tensors by id, the layers seen so far."""

    def __init__(self) -> None:
        self.layers: list[TracedLayer] = []
        self.producer: dict[int, str] = {}  # id(tensor) -> path
        self.leaf_producer: dict[int, str] = {}  # id(tensor) -> path of a layer that is no model
        self.keep: list[Any] = []  # the tensors whose ids are keys above stay alive


def _replay(model: keras.Model) -> Trace:
    shape = input_shape(model)
    x_in = keras.Input(batch_shape=shape, name="convlens_input")
    replay = _Replay()
    replay.producer[id(x_in)] = "input"
    y = _replay_model(model, x_in, replay, prefix="")
    leaf = replay.leaf_producer.get(id(y), replay.layers[-1].path)
    layers = tuple(replay.layers)
    leaf_layer = next(t.layer for t in layers if t.path == leaf)
    kind = _head_of(leaf_layer)
    fused = kind != "linear" and not isinstance(leaf_layer, (keras.layers.Activation, keras.layers.Softmax))
    return Trace(input=x_in, output=y, layers=layers, head=Head(kind, leaf, fused))


def _replay_model(model: keras.Model, x: Any, replay: _Replay, prefix: str) -> Any:
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = _replay_op(layer, (x,), {}, replay, prefix)
        return x

    def operation_fn(op):
        def call(*args, **kwargs):
            return _replay_op(op, args, kwargs, replay, prefix)

        return call

    outputs = model._run_through_graph(x, operation_fn=operation_fn)
    flat = _flat(outputs)
    if len(flat) != 1:
        raise NotAnImageModelError(
            f"Model '{model.name}' has {len(flat)} outputs; ConvLens explains models with one output."
        )
    return flat[0]


def _replay_op(op: Any, args: tuple, kwargs: dict, replay: _Replay, prefix: str) -> Any:
    path = prefix + op.name
    sources = [replay.producer[id(t)] for t in _flat((args, kwargs)) if id(t) in replay.producer]
    if _is_graph_model(op):
        y = _replay_model(op, _flat(args)[0], replay, prefix=path + SEP)
    else:
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        y = op(*args, **kwargs)
        for t in _flat(y):
            replay.leaf_producer[id(t)] = path
    first_in = _flat(args)[0] if _flat(args) else None
    replay.layers.append(TracedLayer(path, op, tuple(dict.fromkeys(sources)), first_in, _flat(y)[0]))
    for t in _flat(y):
        replay.producer[id(t)] = path
    replay.keep.append(y)
    return y


def iter_layers(model: keras.Model, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, keras.layers.Layer, int]]:
    """Yield ``(path, layer, depth)`` for every layer, descending into nested models.

    Example:
        >>> [p for p, _, _ in iter_layers(model)][:2]
        ['conv1', 'pool1']
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + layer.name
        yield path, layer, depth
        if _is_graph_model(layer):
            yield from iter_layers(layer, path + SEP, depth + 1)


def _activation_name(layer: Any) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"


def _shape(t: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in t.shape)


def layer_table(model: keras.Model) -> list[LayerInfo]:
    """Every layer (nested ones too) with type, output shape, parameters and trainability."""
    return _layer_rows(trace(model))


def _layer_rows(traced: Trace) -> list[LayerInfo]:
    rows = []
    for t in traced.layers:  # params and trainable are read now: they may change after the trace
        layer = t.layer
        rows.append(
            LayerInfo(
                path=t.path,
                type=type(layer).__name__,
                output_shape=_shape(t.output),
                params=int(layer.count_params()) if getattr(layer, "built", False) else 0,  # a keras.ops node has none
                trainable=bool(getattr(layer, "trainable", False)),
                depth=t.depth,
                is_conv=isinstance(layer, CONV_TYPES),
            )
        )
    return rows


def conv_layers(model: keras.Model) -> list[str]:
    """Paths of every 2-D convolution layer, those inside nested models included, in order."""
    return [path for path, layer, _ in iter_layers(model) if isinstance(layer, CONV_TYPES)]


def last_conv_layer(model: keras.Model) -> str:
    """The last convolution layer (the default layer to explain is ``blocks.default_target_layer``: its block's output).

    Raises:
        NotAnImageModelError: the model has no convolution layer.
    """
    convs = conv_layers(model)
    if not convs:
        raise NotAnImageModelError(no_conv_message(model))
    return convs[-1]


def no_conv_message(model: keras.Model) -> str:
    kinds = sorted({type(layer).__name__ for _, layer, _ in iter_layers(model)})
    return (
        f"Model '{model.name}' has no convolution layer (its layers: {', '.join(kinds) or 'none'}). "
        "ConvLens explains CNNs: a model needs at least one Conv2D, DepthwiseConv2D or SeparableConv2D layer."
    )


def resolve_layer(model: keras.Model, name: str) -> str:
    """The path of a layer given its path or, when unique, its plain name.

    Raises:
        LayerNotFoundError: no such layer, or a plain name that is ambiguous; the message lists
            the closest names.
    """
    paths = [p for p, _, _ in iter_layers(model)]
    if name in paths:
        return name
    matches = [p for p in paths if p.rsplit(SEP, 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise LayerNotFoundError(f"Layer name '{name}' is ambiguous in '{model.name}'; use one of {matches}.")
    close = difflib.get_close_matches(name, paths, n=3) or paths[-3:]
    raise LayerNotFoundError(f"Model '{model.name}' has no layer '{name}'. Did you mean {', '.join(close)}?")


def head_type(model: keras.Model) -> str:
    """How the model turns scores into outputs: 'softmax', 'sigmoid' or 'linear'."""
    return trace(model).head.kind


def _head_of(layer: Any) -> str:
    name = _activation_name(layer)
    return name if name in ("softmax", "sigmoid") else "linear"


def architecture_edges(model: keras.Model) -> tuple[list[LayerInfo], list[tuple[str, str]]]:
    """The model's own layers (nested models as one node) and the edges between them."""
    traced = trace(model)
    rows = [r for r in _layer_rows(traced) if r.depth == 0]
    top = {r.path for r in rows} | {"input"}
    edges = [(a, b) for a, b in traced.edges if a in top and b in top]
    # an edge into a nested model comes from its first inner layer's source
    for a, b in traced.edges:
        if a in top and b not in top:
            outer = b.split(SEP, 1)[0]
            if (a, outer) not in edges and a != outer:
                edges.append((a, outer))
        if a not in top and b in top:
            outer = a.split(SEP, 1)[0]
            if (outer, b) not in edges and outer != b:
                edges.append((outer, b))
    return rows, list(dict.fromkeys(edges))
