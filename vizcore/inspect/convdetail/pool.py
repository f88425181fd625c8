"""One output of a pooling layer: its window and the max or mean of it."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from vizcore.inspect.convdetail.window import channels_last, check_position, gather, layer_io, window_indices


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


POOLS = {
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
    path, obj, inp, out = layer_io(model, layer, image_hwc)
    kind = next((k for cls, k in POOLS.items() if isinstance(obj, cls)), None)
    if kind is None:
        raise ValueError(
            f"'{path}' is a {type(obj).__name__}; "
            "pool_detail explains MaxPooling2D, AveragePooling2D and global pooling."
        )
    channels_last(obj)
    if isinstance(obj, (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)):
        if (y, x) != (0, 0):
            raise IndexError(f"'{path}' is global pooling: its one output per channel is at y = x = 0.")
        value_out = out.reshape(-1)
        if not 0 <= channel < value_out.size:
            raise IndexError(f"'{path}' has {value_out.size} channels; channel {channel} is outside it.")
        rows, cols = np.arange(inp.shape[0]), np.arange(inp.shape[1])
        strides, padding, fm_value = (1, 1), "valid", float(value_out[channel])
    else:
        check_position(out, channel, y, x, path)
        strides, padding = tuple(obj.strides), obj.padding
        rows, cols, _ = window_indices(
            inp.shape[:2], out.shape[:2], tuple(obj.pool_size), strides, (1, 1), padding, y, x
        )
        fm_value = float(out[y, x, channel])
    window, padded = gather(inp[..., channel : channel + 1], rows, cols)
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
