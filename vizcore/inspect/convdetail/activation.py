"""An activation function at one output (what went in, what came out, its curve), and the layers
the details explain."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from vizcore.inspect.convdetail.conv import conv_detail
from vizcore.inspect.convdetail.pool import POOLS
from vizcore.inspect.convdetail.window import activation_name, apply_activation, check_position, layer_io
from vizcore.models import graph


@dataclass(frozen=True, eq=False)
class ActivationDetail:
    """An activation function at one output: input value -> output value, and its curve.

    Attributes:
        layer, channel, y, x: which output (y = x = 0 for a vector layer).
        function: e.g. 'relu', 'relu(max_value=6.0)', 'sigmoid'.
        fused: True when the activation is part of a Conv/Dense layer (its input is then the
            pre-activation, recomputed here), False for a separate activation layer.
        input_value: what goes into the function.  output_value: the function of it, recomputed.
        feature_map_value: the layer's real output there.
        curve_x, curve_y: float64 (points,) the function on a range that contains input_value.
    """

    layer: str
    channel: int
    y: int
    x: int
    function: str
    fused: bool
    input_value: float
    output_value: float
    feature_map_value: float
    curve_x: np.ndarray
    curve_y: np.ndarray

    @property
    def error(self) -> float:
        return abs(self.output_value - self.feature_map_value)


ELEMENTWISE = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)


def standalone_name(layer: keras.layers.Layer) -> str:
    if isinstance(layer, keras.layers.Activation):
        return activation_name(layer.activation)
    if isinstance(layer, keras.layers.ReLU):
        args = {k: getattr(layer, k, None) for k in ("max_value", "negative_slope", "threshold")}
        extra = ", ".join(f"{k}={float(v):g}" for k, v in args.items() if v not in (None, 0, 0.0))
        return f"relu({extra})" if extra else "relu"
    if isinstance(layer, keras.layers.LeakyReLU):
        return f"leaky_relu(negative_slope={float(layer.negative_slope):g})"
    return "elu"


def activation_detail(
    model: keras.Model, layer: str, image_hwc: np.ndarray, channel: int, y: int = 0, x: int = 0, *, points: int = 201
) -> ActivationDetail:
    """The activation function at one output: what went in, what came out, and its curve.

    ``layer`` is either a separate element-wise activation layer (Activation, ReLU, LeakyReLU,
    ELU) or a Conv2D / DepthwiseConv2D / SeparableConv2D / Dense layer with a fused activation.
    The curve spans ``[-r, r]`` with ``r = max(3, 1.25 * |input|)`` (and past a ReLU's max_value).

    Raises:
        ValueError: softmax (not element-wise), or a layer with no activation to show.
    """
    path, obj, inp, out = layer_io(model, layer, image_hwc)
    check_position(out, channel, y, x, path)
    if out.ndim != 3:
        y = x = 0
    at = (y, x, channel) if out.ndim == 3 else (channel,)
    fm_value = float(out[at])
    if isinstance(obj, ELEMENTWISE):
        name = standalone_name(obj)
        if name == "softmax":
            raise ValueError(f"'{path}' is a softmax: it is not element-wise (each output depends on all scores).")
        fn, fused, value = (
            (lambda v: np.reshape(np.asarray(obj(np.reshape(v, (1, -1)))), np.shape(v))),
            False,
            float(inp[at]),
        )
    elif isinstance(obj, (*graph.CONV_TYPES, keras.layers.Dense)) and not isinstance(obj, keras.layers.Conv2DTranspose):
        name = activation_name(obj.activation)
        if name == "softmax":
            raise ValueError(f"'{path}' ends in a softmax: it is not element-wise (each output depends on all scores).")
        fn, fused = obj.activation, True
        if isinstance(obj, keras.layers.Dense):
            w = np.asarray(obj.kernel, dtype=np.float64)[:, channel]
            bias = float(np.asarray(obj.bias)[channel]) if obj.bias is not None else 0.0
            vec = inp[y, x] if inp.ndim == 3 else inp  # Dense on maps acts on each position
            value = float(vec.astype(np.float64) @ w) + bias
        else:
            value = conv_detail(model, path, image_hwc, channel, y, x).pre_activation
    else:
        raise ValueError(f"'{path}' is a {type(obj).__name__}: it has no activation function to show.")
    r = max(3.0, 1.25 * abs(value), 1.25 * float(getattr(obj, "max_value", None) or 0.0))
    xs = np.linspace(-r, r, points)
    return ActivationDetail(
        layer=path,
        channel=channel,
        y=y,
        x=x,
        function=name,
        fused=fused,
        input_value=value,
        output_value=float(apply_activation(fn, value)),
        feature_map_value=fm_value,
        curve_x=xs,
        curve_y=apply_activation(fn, xs),
    )


def detail_layers(model: keras.Model) -> list[tuple[str, str]]:
    """Layers this module can explain, in order, as ``(path, kind)``: kind 'conv', 'pool' or 'activation'.

    Conv layers with a fused activation are listed once, as 'conv' (their detail ends with the
    activation); separate activation layers as 'activation'.
    """
    out = []
    for path, layer, _ in graph.iter_layers(model):
        if isinstance(
            layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
        ) and not isinstance(layer, keras.layers.Conv2DTranspose):
            out.append((path, "conv"))
        elif isinstance(layer, tuple(POOLS)):
            out.append((path, "pool"))
        elif isinstance(layer, ELEMENTWISE) and standalone_name(layer) != "softmax":
            out.append((path, "activation"))
    return out
