"""One output of a convolution recomputed by hand: window, products, sum, bias, activation."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from vizcore.inspect import kernels
from vizcore.inspect.convdetail.window import (
    activation_name,
    apply_activation,
    channels_last,
    check_position,
    gather,
    layer_io,
    window_indices,
)
from vizcore.models import graph


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
    path, obj, inp, out = layer_io(model, layer, image_hwc)
    if not isinstance(obj, graph.CONV_TYPES) or isinstance(obj, keras.layers.Conv2DTranspose):
        raise ValueError(
            f"'{path}' is a {type(obj).__name__}; conv_detail explains Conv2D, DepthwiseConv2D and SeparableConv2D."
        )
    channels_last(obj)
    check_position(out, channel, y, x, path)
    kh, kw = obj.kernel_size
    rows, cols, pad = window_indices(
        inp.shape[:2], out.shape[:2], (kh, kw), obj.strides, obj.dilation_rate, obj.padding, y, x
    )
    patch, padded = gather(inp, rows, cols)
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
        activation=activation_name(obj.activation),
        post_activation=float(apply_activation(obj.activation, pre)),
        feature_map_value=float(out[y, x, channel]),
        strides=tuple(obj.strides),
        dilation=tuple(obj.dilation_rate),
        padding=obj.padding,
        pad_before=pad,
        layer_input_hwc=inp,
        note=note,
    )
