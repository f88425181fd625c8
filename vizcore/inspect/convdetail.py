"""One output number explained: the convolution, pooling or activation step by step.

``conv_detail`` takes the layer's real input (the previous layer's output for this image), cuts
out the window that one output position sees, and recomputes that output by hand: element-wise
products, their sum, the bias, the activation. Its ``feature_map_value`` is read from the real
feature map, so the two can be compared (they agree to float rounding). Padding follows
TensorFlow: 'valid' uses no padding; 'same' pads ``pad_total = max((out - 1) * stride +
(k - 1) * dilation + 1 - in, 0)`` zeros, ``pad_total // 2`` before and the rest after.

Example:
    >>> d = conv_detail(mnist_cnn, "conv2", image_hwc, channel=5, y=3, x=7)
    >>> d.input_patch.shape, d.activation, d.error < 1e-5
    ((3, 3, 32), 'relu', True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import keras
import numpy as np

from vizcore.cache import per_model
from vizcore.inspect import kernels
from vizcore.models import graph

_KEEP_VALUES = 16  # per model: the (input, output) pairs of the last images and layers asked for


def _io_model(model: keras.Model, path: str) -> keras.Model:
    """A sub-model from the image to ``[layer input, layer output]``; cached per model."""

    def build() -> keras.Model:
        traced = graph.trace(model)
        return keras.Model(traced.input, [traced[path].input, traced[path].output], name=f"{model.name}_io")

    return per_model(model, ("convdetail.io_model", path), build)


def _layer_io(
    model: keras.Model, layer: str, image_hwc: np.ndarray
) -> tuple[str, keras.layers.Layer, np.ndarray, np.ndarray]:
    """(path, layer, input for this image, output for this image), batch axis dropped; cached."""
    path = graph.resolve_layer(model, layer)
    obj = next(found for p, found, _ in graph.iter_layers(model) if p == path)
    image = np.asarray(image_hwc, dtype=np.float32)
    spec = graph.input_spec(model)
    want = (spec.height, spec.width, spec.channels)
    if image.ndim != 3 or any(w is not None and w != g for w, g in zip(want, image.shape)):
        shown = "x".join("?" if d is None else str(d) for d in want)
        raise ValueError(f"Model '{model.name}' takes one image of {shown}; got an array of shape {image.shape}.")
    key = (path, image.shape, hashlib.blake2b(image.tobytes(), digest_size=16).digest())

    def run() -> tuple[np.ndarray, np.ndarray]:
        inp, out = _io_model(model, path)(image[None], training=False)
        return np.asarray(inp)[0], np.asarray(out)[0]

    return (path, obj, *per_model(model, ("convdetail.io_values", *key), run, limit=_KEEP_VALUES))


def _check_position(out: np.ndarray, channel: int, y: int, x: int, path: str) -> None:
    if out.ndim == 3:
        h, w, c = out.shape
        if not (0 <= y < h and 0 <= x < w and 0 <= channel < c):
            raise IndexError(f"'{path}' output is {h}x{w}x{c}; (y={y}, x={x}, channel={channel}) is outside it.")
    elif not 0 <= channel < out.shape[-1]:
        raise IndexError(f"'{path}' has {out.shape[-1]} outputs; channel {channel} is outside it.")


def _pad_before(in_size: int, out_size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    """Zeros TensorFlow adds before the first row/column (see the module docstring)."""
    if padding == "valid":
        return 0
    if padding != "same":
        raise ValueError(f"padding {padding!r} is not supported (only 'valid' and 'same')")
    return max((out_size - 1) * stride + (k - 1) * dilation + 1 - in_size, 0) // 2


def _window_indices(in_hw, out_hw, k_hw, strides, dilation, padding, y, x):
    """Input rows and columns one output position sees, and the (top, left) padding."""
    top = _pad_before(in_hw[0], out_hw[0], k_hw[0], strides[0], dilation[0], padding)
    left = _pad_before(in_hw[1], out_hw[1], k_hw[1], strides[1], dilation[1], padding)
    rows = y * strides[0] - top + np.arange(k_hw[0]) * dilation[0]
    cols = x * strides[1] - left + np.arange(k_hw[1]) * dilation[1]
    return rows, cols, (top, left)


def _gather(
    inp_hwc: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """inp[rows][:, cols] with ``fill`` where a row or column is outside (padding); and that mask."""
    h, w = inp_hwc.shape[:2]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    patch = inp_hwc[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)].astype(np.float64)
    patch[~inside] = fill
    return patch, ~inside


def _channels_last(layer: keras.layers.Layer) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"'{layer.name}' uses data_format={layer.data_format!r}; only channels_last is supported.")


@dataclass(frozen=True, eq=False)
class ConvDetail:
    """How one output number of a conv layer is made.

    Attributes:
        layer, layer_type, channel, y, x: which output.
        input_patch: (kh, kw, n) the layer's input values the kernel sees (0 in the padding).
        input_channels: the n input channels of the patch (all of them for Conv2D; one for
            DepthwiseConv2D; the group's for a grouped conv).
        rows, cols: (kh,), (kw,) input row/column of each patch row/column (outside = padding).
        padded: bool (kh, kw), True where the window lies in the zero padding.
        kernel: (kh, kw, n) the filter's weights for those channels.
        products: (kh, kw, n) input_patch * kernel.
        total: sum of products.  bias: the filter's bias (0.0 when the layer has none).
        pre_activation: total + bias.  activation: the function's name.
        post_activation: activation(pre_activation), recomputed here.
        feature_map_value: the layer's real output at (y, x, channel).
        strides, dilation, padding, pad_before: the geometry; pad_before is (top, left).
        layer_input_hwc: the layer's whole input (for drawing the sliding window).
        note: what was shown for a depthwise / separable / grouped layer.
    """

    layer: str
    layer_type: str
    channel: int
    y: int
    x: int
    input_patch: np.ndarray
    input_channels: tuple[int, ...]
    rows: np.ndarray
    cols: np.ndarray
    padded: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    total: float
    bias: float
    pre_activation: float
    activation: str
    post_activation: float
    feature_map_value: float
    strides: tuple[int, int]
    dilation: tuple[int, int]
    padding: str
    pad_before: tuple[int, int]
    layer_input_hwc: np.ndarray
    note: str

    @property
    def error(self) -> float:
        """|recomputed - real|: float rounding only (about 1e-6 of the values' size)."""
        return abs(self.post_activation - self.feature_map_value)


def _apply(fn, value: float | np.ndarray) -> np.ndarray:
    return np.asarray(fn(np.asarray(value, dtype=np.float32)), dtype=np.float64)


def _fn_name(fn) -> str:
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"


def conv_detail(model: keras.Model, layer: str, image_hwc: np.ndarray, channel: int, y: int, x: int) -> ConvDetail:
    """Recompute the output ``(y, x, channel)`` of a conv layer from its input window, by hand.

    Args:
        model: any Keras image model (nested layers too).
        layer: a Conv2D, DepthwiseConv2D or SeparableConv2D path or unique name
            (Conv2DTranspose is refused).
        image_hwc: float32 (H, W, C), preprocessed as the model expects.
        channel, y, x: the output position.

    Returns:
        ConvDetail; its ``post_activation`` equals ``feature_map_value`` to float tolerance.

    Raises:
        ValueError: not a supported convolution, wrong image shape, or unsupported padding.
        IndexError: the position is outside the output.
    """
    path, obj, inp, out = _layer_io(model, layer, image_hwc)
    if not isinstance(obj, graph.CONV_TYPES) or isinstance(obj, keras.layers.Conv2DTranspose):
        raise ValueError(
            f"'{path}' is a {type(obj).__name__}; conv_detail explains Conv2D, DepthwiseConv2D and SeparableConv2D."
        )
    _channels_last(obj)
    _check_position(out, channel, y, x, path)
    kh, kw = obj.kernel_size
    rows, cols, pad = _window_indices(
        inp.shape[:2], out.shape[:2], (kh, kw), obj.strides, obj.dilation_rate, obj.padding, y, x
    )
    patch, padded = _gather(inp, rows, cols)
    cin = inp.shape[-1]
    if isinstance(obj, keras.layers.DepthwiseConv2D):
        m = int(obj.depth_multiplier)
        c = channel // m
        kernel = np.asarray(obj.kernel, dtype=np.float64)[:, :, c : c + 1, channel % m]
        used = (c,)
        note = f"depthwise: output channel {channel} = input channel {c} with kernel {channel % m} of {m}"
    elif isinstance(obj, keras.layers.SeparableConv2D):
        kernel = kernels.layer_kernel(model, path).kernel_hwio.astype(np.float64)[..., channel]
        used = tuple(range(cin))
        note = "separable: the equivalent full kernel of its depthwise and pointwise steps (exact to float rounding)"
    else:
        groups = int(getattr(obj, "groups", 1) or 1)
        per_group = cin // groups
        g = channel // (obj.filters // groups)
        used = tuple(range(g * per_group, (g + 1) * per_group))
        kernel = np.asarray(obj.kernel, dtype=np.float64)[..., channel]
        note = f"group {g} of {groups}: input channels {used[0]}..{used[-1]}" if groups > 1 else ""
    patch = patch[..., list(used)]
    products = patch * kernel
    total = float(products.sum())
    bias = float(np.asarray(obj.bias)[channel]) if getattr(obj, "bias", None) is not None else 0.0
    pre = total + bias
    return ConvDetail(
        layer=path,
        layer_type=type(obj).__name__,
        channel=channel,
        y=y,
        x=x,
        input_patch=patch,
        input_channels=used,
        rows=rows,
        cols=cols,
        padded=padded,
        kernel=kernel,
        products=products,
        total=total,
        bias=bias,
        pre_activation=pre,
        activation=_fn_name(obj.activation),
        post_activation=float(_apply(obj.activation, pre)),
        feature_map_value=float(out[y, x, channel]),
        strides=tuple(obj.strides),
        dilation=tuple(obj.dilation_rate),
        padding=obj.padding,
        pad_before=pad,
        layer_input_hwc=inp,
        note=note,
    )


@dataclass(frozen=True, eq=False)
class PoolDetail:
    """How one output number of a pooling layer is made.

    Attributes:
        layer, layer_type, channel, y, x: which output (y = x = 0 for global pooling).
        kind: 'max' or 'average'.
        window: (ph, pw) input values in the window (0 in the padding, which never counts).
        rows, cols: input row/column of each window row/column.
        padded: bool (ph, pw), True where the window lies in the padding.
        value: max of the window, or mean over its cells inside the input (TensorFlow's
            'same' average pooling does not count padding).
        argmax: (i, j) in the window of the max (max pooling; the first one on ties), else None.
        feature_map_value: the layer's real output there.
        layer_input_hwc: the layer's whole input.
    """

    layer: str
    layer_type: str
    channel: int
    y: int
    x: int
    kind: str
    window: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    padded: np.ndarray
    value: float
    argmax: tuple[int, int] | None
    feature_map_value: float
    strides: tuple[int, int]
    padding: str
    layer_input_hwc: np.ndarray

    @property
    def error(self) -> float:
        return abs(self.value - self.feature_map_value)


_POOLS = {
    keras.layers.MaxPooling2D: "max",
    keras.layers.AveragePooling2D: "average",
    keras.layers.GlobalMaxPooling2D: "max",
    keras.layers.GlobalAveragePooling2D: "average",
}


def pool_detail(
    model: keras.Model, layer: str, image_hwc: np.ndarray, channel: int, y: int = 0, x: int = 0
) -> PoolDetail:
    """The window of a pooling layer's output ``(y, x, channel)`` and its max or mean.

    Works for MaxPooling2D, AveragePooling2D ('valid' or 'same') and the global poolings
    (whose window is the whole map; y = x = 0).
    """
    path, obj, inp, out = _layer_io(model, layer, image_hwc)
    kind = next((k for cls, k in _POOLS.items() if isinstance(obj, cls)), None)
    if kind is None:
        raise ValueError(
            f"'{path}' is a {type(obj).__name__}; "
            "pool_detail explains MaxPooling2D, AveragePooling2D and global pooling."
        )
    _channels_last(obj)
    if isinstance(obj, (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)):
        if (y, x) != (0, 0):
            raise IndexError(f"'{path}' is global pooling: its one output per channel is at y = x = 0.")
        value_out = out.reshape(-1)
        if not 0 <= channel < value_out.size:
            raise IndexError(f"'{path}' has {value_out.size} channels; channel {channel} is outside it.")
        rows, cols = np.arange(inp.shape[0]), np.arange(inp.shape[1])
        strides, padding, fm_value = (1, 1), "valid", float(value_out[channel])
    else:
        _check_position(out, channel, y, x, path)
        strides, padding = tuple(obj.strides), obj.padding
        rows, cols, _ = _window_indices(
            inp.shape[:2], out.shape[:2], tuple(obj.pool_size), strides, (1, 1), padding, y, x
        )
        fm_value = float(out[y, x, channel])
    window, padded = _gather(inp[..., channel : channel + 1], rows, cols)
    window = window[..., 0]
    inside = window[~padded]
    if kind == "max":
        masked = np.where(padded, -np.inf, window)
        argmax = tuple(int(i) for i in np.unravel_index(int(np.argmax(masked)), masked.shape))
        value = float(inside.max())
    else:
        argmax, value = None, float(inside.mean())
    return PoolDetail(
        layer=path,
        layer_type=type(obj).__name__,
        channel=channel,
        y=y,
        x=x,
        kind=kind,
        window=window,
        rows=rows,
        cols=cols,
        padded=padded,
        value=value,
        argmax=argmax,
        feature_map_value=fm_value,
        strides=strides,
        padding=padding,
        layer_input_hwc=inp,
    )


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


_ELEMENTWISE = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)


def _standalone_name(layer: keras.layers.Layer) -> str:
    if isinstance(layer, keras.layers.Activation):
        return _fn_name(layer.activation)
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
    path, obj, inp, out = _layer_io(model, layer, image_hwc)
    _check_position(out, channel, y, x, path)
    if out.ndim != 3:
        y = x = 0
    at = (y, x, channel) if out.ndim == 3 else (channel,)
    fm_value = float(out[at])
    if isinstance(obj, _ELEMENTWISE):
        name = _standalone_name(obj)
        if name == "softmax":
            raise ValueError(f"'{path}' is a softmax: it is not element-wise (each output depends on all scores).")
        fn, fused, value = (
            (lambda v: np.reshape(np.asarray(obj(np.reshape(v, (1, -1)))), np.shape(v))),
            False,
            float(inp[at]),
        )
    elif isinstance(obj, (*graph.CONV_TYPES, keras.layers.Dense)) and not isinstance(obj, keras.layers.Conv2DTranspose):
        name = _fn_name(obj.activation)
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
        output_value=float(_apply(fn, value)),
        feature_map_value=fm_value,
        curve_x=xs,
        curve_y=_apply(fn, xs),
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
        elif isinstance(layer, tuple(_POOLS)):
            out.append((path, "pool"))
        elif isinstance(layer, _ELEMENTWISE) and _standalone_name(layer) != "softmax":
            out.append((path, "activation"))
    return out
