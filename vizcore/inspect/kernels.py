"""Convolution kernels as pictures and numbers: tiles, one gallery image, filter statistics.

Every conv layer is shown as one kernel tensor ``(kh, kw, cin, cout)``, whatever its type:

* ``Conv2D``: its kernel as is (grouped: ``cin`` is the channels one group sees);
* ``DepthwiseConv2D``: each of its ``cin * multiplier`` filters sees ONE input channel, so the
  kernel ``(kh, kw, cin, m)`` is shown as ``(kh, kw, 1, cin * m)`` in output-channel order;
* ``SeparableConv2D``: the exact equivalent full kernel of depthwise-then-pointwise,
  ``K[i, j, c, o] = sum_m depthwise[i, j, c, m] * pointwise[0, 0, c * m_count + m, o]``
  (the two steps are linear with nothing in between, so this is the same convolution);
* ``Conv2DTranspose``: Keras stores ``(kh, kw, cout, cin)``; shown swapped to ``(kh, kw, cin, cout)``:
  what one input pixel paints onto the output.

``LayerKernel.note`` says which of these a layer got. Colours: a first layer with three input
channels can be shown as RGB composites (channel 0 -> red, 1 -> green, 2 -> blue; grey is a zero
weight; with ``bgr=True``, for a model fed B, G, R such as a 'caffe' VGG16, channel 0 -> blue);
anything else uses the diverging colormap ``render.DIVERGING`` (blue negative, white zero,
red positive). Scaling is per filter, per layer, or global (a bound shared by every conv layer of
the model, from ``global_kernel_bound``).

Example:
    >>> lk = layer_kernel(model, "conv1")
    >>> image = kernel_gallery(lk, scale="layer")          # uint8 HxWx3, one filter per tile
    >>> stats = filter_stats(lk); stats.dead.nonzero()[0]   # indices of dead filters
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from vizcore.models import graph
from vizcore.present import render

MODES = ("rgb", "per_channel", "mean")
SCALES = ("filter", "layer", "global")
MAX_TILES = 4096
PAD_VALUE = 40  # dark grey between tiles: never mistaken for a zero weight (white, or grey in RGB)


@dataclass(frozen=True, eq=False)
class LayerKernel:
    """The kernel of one conv layer as ``(kh, kw, cin, cout)``, with its bias and what was shown.

    Attributes:
        path: layer path, e.g. ``"conv1"`` or ``"mobilenetv2/Conv1"``.
        layer_type: the Keras class name.
        kernel_hwio: float32 ``(kh, kw, cin, cout)``.
        bias: float32 ``(cout,)`` or None.
        note: one sentence on what is shown (depthwise, separable, transposed, grouped, plain).
        is_first: the model's first conv layer (the one that sees the image).
    """

    path: str
    layer_type: str
    kernel_hwio: np.ndarray
    bias: np.ndarray | None
    note: str
    is_first: bool

    @property
    def filters(self) -> int:
        return int(self.kernel_hwio.shape[3])

    @property
    def in_channels(self) -> int:
        return int(self.kernel_hwio.shape[2])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.kernel_hwio.shape[0]), int(self.kernel_hwio.shape[1])


def _layer_object(model: keras.Model, path: str) -> keras.layers.Layer:
    for p, layer, _ in graph.iter_layers(model):
        if p == path:
            return layer
    raise AssertionError(f"resolved path {path!r} not found")  # pragma: no cover


def _kernel_of(layer: keras.layers.Layer) -> tuple[np.ndarray, str]:
    name = type(layer).__name__
    if isinstance(layer, keras.layers.SeparableConv2D):
        dw = np.asarray(layer.depthwise_kernel, dtype=np.float64)  # (kh, kw, cin, m)
        pw = np.asarray(layer.pointwise_kernel, dtype=np.float64)[0, 0]  # (cin * m, cout)
        kh, kw, cin, m = dw.shape
        full = np.einsum("ijcm,cmo->ijco", dw, pw.reshape(cin, m, -1))
        return full.astype(np.float32), (
            f"SeparableConv2D: the equivalent full kernel of its depthwise ({kh}x{kw}, multiplier {m}) "
            "and pointwise (1x1) steps, which together are exactly this convolution."
        )
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k = np.asarray(layer.kernel, dtype=np.float32)  # (kh, kw, cin, m)
        kh, kw, cin, m = k.shape
        return k.reshape(kh, kw, 1, cin * m), (
            f"DepthwiseConv2D: each of its {cin * m} filters sees one input channel "
            f"(output channel c*{m}+j uses input channel c), shown as {kh}x{kw}x1 filters."
        )
    if isinstance(layer, keras.layers.Conv2DTranspose):
        k = np.asarray(layer.kernel, dtype=np.float32)  # (kh, kw, cout, cin)
        return np.ascontiguousarray(k.transpose(0, 1, 3, 2)), (
            "Conv2DTranspose: each filter shows what one input pixel paints onto the output "
            "(Keras's (kh, kw, out, in) kernel swapped to (kh, kw, in, out))."
        )
    k = np.asarray(layer.kernel, dtype=np.float32)
    groups = int(getattr(layer, "groups", 1) or 1)
    if groups > 1:
        return k, f"{name} with {groups} groups: each filter sees the {k.shape[2]} input channels of its group."
    return k, f"{name}: {k.shape[3]} filters of {k.shape[0]}x{k.shape[1]}x{k.shape[2]}."


def layer_kernel(model: keras.Model, layer: str) -> LayerKernel:
    """The kernel tensor ``(kh, kw, cin, cout)`` of a conv layer (nested layers too).

    Args:
        model: any Keras image model.
        layer: a conv layer's path or unique plain name.

    Raises:
        LayerNotFoundError: no such layer.
        ValueError: the layer is not a convolution.
    """
    path = graph.resolve_layer(model, layer)
    obj = _layer_object(model, path)
    if not isinstance(obj, graph.CONV_TYPES):
        convs = graph.conv_layers(model)
        raise ValueError(
            f"Layer '{path}' is a {type(obj).__name__}, not a convolution; conv layers: {', '.join(convs[:8])}"
            + (" ..." if len(convs) > 8 else "")
        )
    kernel, note = _kernel_of(obj)
    bias = getattr(obj, "bias", None)
    bias = None if bias is None else np.asarray(bias, dtype=np.float32)
    return LayerKernel(path, type(obj).__name__, kernel, bias, note, is_first=path == graph.conv_layers(model)[0])


def conv_kernels(model: keras.Model) -> list[LayerKernel]:
    """``layer_kernel`` of every conv layer of the model, in order."""
    return [layer_kernel(model, p) for p in graph.conv_layers(model)]


def global_kernel_bound(model: keras.Model) -> float:
    """The largest ``|w|`` over every conv layer's shown kernel: the bound of ``scale='global'``."""
    return max((float(np.max(np.abs(lk.kernel_hwio))) for lk in conv_kernels(model)), default=0.0)


def default_mode(lk: LayerKernel) -> str:
    """'rgb' for a first layer on 3 channels, 'per_channel' when that stays small, else 'mean'."""
    if lk.is_first and lk.in_channels == 3:
        return "rgb"
    return "per_channel" if lk.in_channels * lk.filters <= 1024 else "mean"


def _bounds(values: np.ndarray, scale: str, bound: float | None) -> np.ndarray:
    """Per-filter bounds, broadcastable against ``values`` whose first axis is the filter."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    axes = tuple(range(1, values.ndim))
    if scale == "filter":
        return np.max(np.abs(values), axis=axes, keepdims=True)
    if scale == "layer":
        return np.full((1,) * values.ndim, np.max(np.abs(values)))
    if bound is None:
        raise ValueError("scale='global' needs bound=global_kernel_bound(model)")
    return np.full((1,) * values.ndim, float(bound))


def _unit(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """0.5 + 0.5 * v / bound, clipped to [0, 1]; a zero bound gives 0.5 (zero weight)."""
    safe = np.where(bounds > render.EPS, bounds, 1.0)
    unit = np.where(bounds > render.EPS, 0.5 + 0.5 * values / safe, 0.5)
    return np.clip(unit, 0.0, 1.0)


def kernel_tiles(
    lk: LayerKernel,
    *,
    mode: str | None = None,
    scale: str = "filter",
    bound: float | None = None,
    filters: Sequence[int] | None = None,
    bgr: bool = False,
) -> np.ndarray:
    """One small uint8 RGB picture per filter (or per filter and input channel).

    Args:
        lk: from ``layer_kernel``.
        mode: 'rgb' (needs 3 input channels; channel 0/1/2 -> R/G/B, 128 grey = 0), 'per_channel'
            (one diverging tile per input channel), 'mean' (the mean over input channels,
            diverging); None picks ``default_mode(lk)``.
        scale: 'filter' (each filter to its own max |w|), 'layer' (the layer's max |w|, over all
            its filters), 'global' (``bound``, e.g. ``global_kernel_bound(model)``).
        bound: the global bound, required by ``scale='global'``.
        filters: indices of the filters to show (default: all), in the order given.
        bgr: the layer's input channels are B, G, R (``vizcore.data.images.is_bgr(preprocess)``): the
            'rgb' composite puts them back in RGB order, so a filter that reads red shows red.

    Returns:
        uint8 ``(N, kh, kw, 3)``. N = number of filters for 'rgb' and 'mean'; for 'per_channel'
        N = filters * cin, filter-major: tile ``f * cin + c`` is filter f, input channel c.
    """
    mode = mode or default_mode(lk)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    k = lk.kernel_hwio.astype(np.float32).transpose(3, 0, 1, 2)  # (cout, kh, kw, cin)
    if mode == "rgb":
        if lk.in_channels != 3:
            raise ValueError(f"mode='rgb' needs 3 input channels; '{lk.path}' has {lk.in_channels}")
        values = k[..., ::-1] if bgr else k
    elif mode == "mean":
        values = k.mean(axis=3)  # (cout, kh, kw)
    else:
        values = k.transpose(0, 3, 1, 2)  # (cout, cin, kh, kw)
    bounds = _bounds(values, scale, bound)  # computed over ALL filters: a subset keeps the layer's scale
    if filters is not None:
        idx = np.asarray(filters, dtype=int)
        values = values[idx]
        bounds = bounds[idx] if bounds.shape[0] > 1 else bounds
    unit = _unit(values, bounds)
    if mode == "rgb":
        return np.rint(unit * 255.0).astype(np.uint8)
    tiles = render.colorize(unit, render.DIVERGING)
    if mode == "per_channel":
        n, cin, kh, kw, _ = tiles.shape
        tiles = tiles.reshape(n * cin, kh, kw, 3)
    return tiles


def kernel_gallery(
    lk: LayerKernel,
    *,
    mode: str | None = None,
    scale: str = "filter",
    bound: float | None = None,
    filters: Sequence[int] | None = None,
    columns: int | None = None,
    tile_px: int = 32,
    pad: int = 1,
    max_tiles: int = MAX_TILES,
    bgr: bool = False,
) -> np.ndarray:
    """Every filter of a layer as one uint8 image: crisp upscaled tiles in a row-major grid.

    Order: tile i sits at row ``i // columns``, column ``i % columns`` (filters in index order, or
    in the order of ``filters``). With ``mode='per_channel'`` each row is one filter and each
    column one input channel (``columns`` = cin, when cin > 1). Arguments as in ``kernel_tiles``, plus:

    Args:
        columns: tiles per row (default: ceil(sqrt(N)), or cin for 'per_channel' with cin > 1).
        tile_px: target tile side; kernels are upscaled by the integer ``max(1, tile_px // k)``.
        pad: pixels of dark grey (``PAD_VALUE``) between tiles.
        max_tiles: refuse larger grids (pass ``filters=`` or use ``mode='mean'``).

    Returns:
        uint8 (H, W, 3).

    Raises:
        ValueError: unknown mode/scale, or more than ``max_tiles`` tiles.
    """
    mode = mode or default_mode(lk)
    n_filters = lk.filters if filters is None else len(filters)
    n = n_filters * (lk.in_channels if mode == "per_channel" else 1)
    if n > max_tiles:
        raise ValueError(
            f"'{lk.path}' would need {n:,} tiles ({n_filters} filters x {lk.in_channels} channels); "
            f"the limit is {max_tiles:,}. Choose filters=..., or mode='mean'."
        )
    tiles = kernel_tiles(lk, mode=mode, scale=scale, bound=bound, filters=filters, bgr=bgr)
    factor = max(1, tile_px // max(lk.size))
    tiles = np.repeat(np.repeat(tiles, factor, axis=1), factor, axis=2)
    if columns is None:
        by_channel = mode == "per_channel" and lk.in_channels > 1
        columns = lk.in_channels if by_channel else int(np.ceil(np.sqrt(len(tiles))))
    return render.montage(tiles, columns=columns, pad=pad, pad_value=PAD_VALUE)


@dataclass(frozen=True, eq=False)
class FilterStats:
    """Per-filter weight statistics of one layer, with dead and near-dead filters flagged.

    The rule: a weight is near zero when ``|w| < eps * max|w|`` over the whole layer (every weight
    when the layer is all zeros). A filter is **dead** when all its weights are near zero: its
    output is the constant ``activation(bias)``, whatever the input. It is **near dead** (and not
    dead) when at least ``near_share`` of its weights are near zero, or its L2 norm is below
    ``weak_ratio`` times the median L2 norm of the layer's filters.

    Attributes (arrays of shape (cout,)):
        l2, mean, std: of each filter's weights.
        near_zero_share: share of its weights that are near zero, in [0, 1].
        dead, near_dead: bool flags (disjoint).
        threshold: ``eps * max|w|`` of the layer.
    """

    l2: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    near_zero_share: np.ndarray
    dead: np.ndarray
    near_dead: np.ndarray
    threshold: float


def filter_stats(
    lk: LayerKernel, *, eps: float = 0.01, near_share: float = 0.9, weak_ratio: float = 0.05
) -> FilterStats:
    """L2 norm, mean, std and share of near-zero weights per filter; dead filters flagged.

    Example:
        >>> s = filter_stats(layer_kernel(models.open_bundled("mnist_cnn").model, "conv2"))
        >>> int(s.dead.sum()), int(s.near_dead.sum())
        (0, 0)
    """
    w = lk.kernel_hwio.astype(np.float64).reshape(-1, lk.filters).T  # (cout, kh*kw*cin)
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    threshold = eps * peak
    near = np.abs(w) < threshold if peak > 0 else np.ones_like(w, dtype=bool)
    share = near.mean(axis=1)
    l2 = np.sqrt((w**2).sum(axis=1))
    dead = near.all(axis=1)
    weak = l2 < weak_ratio * float(np.median(l2))
    near_dead = ~dead & ((share >= near_share) | weak)
    return FilterStats(
        l2=l2.astype(np.float32),
        mean=w.mean(axis=1).astype(np.float32),
        std=w.std(axis=1).astype(np.float32),
        near_zero_share=share.astype(np.float32),
        dead=dead,
        near_dead=near_dead,
        threshold=threshold,
    )


def weight_histogram(lk: LayerKernel, *, bins: int = 41, bound: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of a layer's kernel weights on the symmetric range [-bound, bound].

    Args:
        bins: number of bins (odd: one bin is centred on zero).
        bound: half-width of the range (default: the layer's max |w|); pass
            ``global_kernel_bound(model)`` to compare layers on one axis. Weights beyond it are
            counted in the end bins.

    Returns:
        (counts int64 (bins,), edges float64 (bins + 1,)), as ``np.histogram``.
    """
    w = lk.kernel_hwio.ravel().astype(np.float64)
    b = float(np.max(np.abs(w))) if bound is None else float(bound)
    b = b if b > 0 else 1.0
    return np.histogram(np.clip(w, -b, b), bins=bins, range=(-b, b))
