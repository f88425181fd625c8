"""Feature maps: every requested layer's output in one forward pass, as grids and statistics.

``get_activations`` builds one sub-model (``graph.feature_model``) that outputs all requested
layers, caches it per model and layer list, and runs the image through it once. Passes run
eagerly, each layer's output freed once no later layer reads it (``graph.lean_call``: ResNet50's
peak at 224x224 is about 40 MB instead of 150); when one takes longer than ``COMPILE_AFTER_MS`` (deep
models), later passes use Keras's compiled ``predict_on_batch`` (traced once, then several times
faster; same numbers), so small models never pay the compile and large ones pay it once, unless
the profile compiles no single pass (hosted: a compiled pass keeps 20-40 MB per layer set). Switching the
shown layer or the scaling afterwards is NumPy only (``feature_grid``, ``overview``), a few
milliseconds.

Example:
    >>> acts = get_activations(model, image_hwc)                  # {path: (h, w, c) or (units,)}
    >>> grid = feature_grid(acts["conv2"], scale="map")           # uint8 HxWx3, one tile per channel
    >>> stats = channel_stats(acts["conv2"]); stats.top, stats.dead.sum()
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from vizcore import profile
from vizcore.cache import per_model
from vizcore.models import batches, blocks, graph
from vizcore.present import render

SCALES = ("map", "layer", "global")
# Layers that are the identity at inference (their output repeats their input) or only reshape.
SKIPPED_TYPES = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "ActivityRegularization",
        "Flatten",
        "Reshape",
        "Identity",
    }
)
SIGNED_PAD, UNSIGNED_PAD = 40, 255  # grid gaps: dark grey by a diverging map (white = 0), else white
COMPILE_AFTER_MS = 50.0


def activation_layers(model: keras.Model) -> tuple[str, ...]:
    """The layers ``get_activations`` shows by default, from input to prediction.

    Every layer with a 4-D output (conv, pooling, normalization, activation maps) or a 2-D output
    (dense, global pooling, the head), nested layers included; left out are nested-model
    containers (their inner layers are listed), layers that are the identity at inference
    (Dropout, GaussianNoise, ...) and pure reshapes (Flatten, Reshape).
    """

    def build() -> tuple[str, ...]:
        rows = graph.layer_table(model)
        containers = {p.rsplit(graph.SEP, 1)[0] for p in (r.path for r in rows) if graph.SEP in p}
        return tuple(
            r.path
            for r in rows
            if r.path not in containers and r.type not in SKIPPED_TYPES and len(r.output_shape) in (2, 4)
        )

    return per_model(model, "activations.default_layers", build, limit=1)


@dataclass
class _Runner:
    """A cached sub-model and whether its passes are slow enough to be worth compiling."""

    fm: graph.FeatureModel
    compiled: bool = False

    def __call__(self, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        if self.compiled:  # predict_on_batch without its copy of every output (~100 MB at 224): views of the tensors
            self.fm.model.make_predict_function()
            outs = self.fm.model.predict_function([(batch_nhwc,)])
            return [np.asarray(a).astype(np.float32, copy=False) for a in outs[: len(self.fm.layers)]]
        start = time.perf_counter()
        acts, _ = self.fm.predict_lean(batch_nhwc)
        slow = (time.perf_counter() - start) * 1000.0 > COMPILE_AFTER_MS
        self.compiled = slow and profile.current().compile_single_passes  # hosted: never (a compiled pass stays)
        return [acts[p] for p in self.fm.layers]


def _runner(model: keras.Model, paths: tuple[str, ...]) -> _Runner:
    """The sub-model for these layers, cached per model (it holds the layers, never the model)."""
    return per_model(model, ("activations.runner", paths), lambda: _Runner(graph.feature_model(model, paths)))


def get_activations_batch(
    model: keras.Model, batch_nhwc: np.ndarray, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Outputs of the requested layers for a batch, all in one forward pass.

    Args:
        model: any Keras image model (Functional, Sequential, reloaded, nested).
        batch_nhwc: float32 (N, H, W, C), preprocessed as the model expects.
        layers: layer paths or unique plain names; default ``activation_layers(model)``.

    Returns:
        {path: float32 (N, ...)} in the order of ``layers``.
    """
    names = tuple(activation_layers(model) if layers is None else layers)
    paths = per_model(
        model, ("activations.paths", names), lambda: tuple(dict.fromkeys(graph.resolve_layer(model, n) for n in names))
    )
    batch = batches.as_batch(model, batch_nhwc)
    return dict(zip(paths, _runner(model, paths)(batch)))


def get_activations(
    model: keras.Model, image_hwc: np.ndarray, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Outputs of the requested layers for one image, in one forward pass.

    Returns:
        {path: float32 (h, w, c) for maps, (units,) for vectors}.

    Example:
        >>> get_activations(mnist_cnn, x_hwc, ["conv1"])["conv1"].shape
        (26, 26, 32)
    """
    image = batches.as_image(model, image_hwc)
    return {p: a[0] for p, a in get_activations_batch(model, image[None], layers).items()}


def activation_shapes(model: keras.Model) -> dict[str, tuple[int | None, ...]]:
    """{path: one image's output shape} for ``activation_layers(model)``: (h, w, c) for maps, (units,) for vectors."""

    def build() -> dict[str, tuple[int | None, ...]]:
        rows = {r.path: r.output_shape[1:] for r in graph.layer_table(model)}
        return {p: rows[p] for p in activation_layers(model)}

    return per_model(model, "activations.shapes", build, limit=1)


def activations_mb(model: keras.Model) -> float:
    """MB of every default layer's float32 outputs for one image (inf when a size is unknown before a pass)."""
    dims = [d for shape in activation_shapes(model).values() for d in shape]
    if any(d is None for d in dims):
        return math.inf
    return sum(4 * math.prod(shape) for shape in activation_shapes(model).values()) / 2**20


class ActivationStore(Mapping):
    """One image's layer outputs, computed when first asked for and then kept (read-only arrays).

    ``select(paths)`` runs one forward pass for all the paths not computed yet. A model whose
    all-layer outputs fit in ``all_at_once_mb`` gets every layer in its first pass (then every
    request is a lookup); a larger one computes only what is asked: the overview by block needs
    ResNet50's 20 block outputs (25 MB), not its 176 layers (141 MB). ``store[path]`` computes one
    missing layer on its own; ask for many with ``select``. Thread-safe; holds the model weakly.

    Example:
        >>> store = ActivationStore(resnet50, x_hwc, all_at_once_mb=32)
        >>> cols = store.select(block_columns(resnet50))    # one pass, 20 layers
        >>> store["conv1_relu"].shape, len(store.computed)
        ((112, 112, 64), 21)
    """

    def __init__(self, model: keras.Model, image_hwc: np.ndarray, *, all_at_once_mb: float = math.inf) -> None:
        self._model = weakref.ref(model)
        self._image = np.array(batches.as_image(model, image_hwc), dtype=np.float32)
        self._shapes = activation_shapes(model)
        self._values: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.all_at_once = activations_mb(model) <= all_at_once_mb

    @property
    def computed(self) -> tuple[str, ...]:
        """The paths computed so far."""
        return tuple(self._values)

    @property
    def maps(self) -> tuple[str, ...]:
        """The layers whose output is (h, w, c) feature maps, in order (no pass needed)."""
        return tuple(p for p, shape in self._shapes.items() if len(shape) == 3)

    def select(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """{path: read-only float32 output} for ``paths`` (of this store's layers), the missing ones in one pass."""
        unknown = [p for p in paths if p not in self._shapes]
        if unknown:
            raise KeyError(f"not a layer of this store: {unknown[0]!r}")
        with self._lock:
            missing = [p for p in (self._shapes if self.all_at_once else dict.fromkeys(paths)) if p not in self._values]
            if missing:
                model = self._model()
                if model is None:
                    raise ReferenceError("the model of this ActivationStore was freed")
                for path, value in get_activations(model, self._image, missing).items():
                    value.setflags(write=False)
                    self._values[path] = value
                if self.all_at_once:
                    profile.trim_heap()  # an eager pass frees every layer's tensors at its end: hand them back now
                else:  # a large network: also collect the garbage of this run (traces, a replaced store) soon
                    profile.release_memory_soon(0.5)
            return {p: self._values[p] for p in paths}

    def __getitem__(self, path: str) -> np.ndarray:
        return self.select([path])[path]

    def __contains__(self, path: object) -> bool:
        return path in self._shapes

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


# --------------------------------------------------------------------------- pictures


def _as_chw(maps: np.ndarray) -> np.ndarray:
    """(h, w, c) maps or a (units,) vector -> float32 (c, h, w); a vector becomes 1x1 maps."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:
        return maps[:, None, None]
    if maps.ndim != 3:
        raise ValueError(f"expected (h, w, c) feature maps or a (units,) vector, got shape {maps.shape}")
    return maps.transpose(2, 0, 1)


def _is_signed(cmap: str) -> bool:
    return cmap.split("_")[0] == "RdBu"


def activation_bounds(acts: Mapping[str, np.ndarray], layers: Sequence[str] | None = None) -> tuple[float, float]:
    """(min, max) over the given layers (default: all in ``acts``): the bounds of ``scale='global'``."""
    arrays = [np.asarray(acts[k]) for k in (acts if layers is None else layers)]
    return float(min(a.min() for a in arrays)), float(max(a.max() for a in arrays))


def _to_unit(
    values_chw: np.ndarray,
    scale: str,
    signed: bool,
    global_bounds: tuple[float, float] | None,
    all_chw: np.ndarray | None = None,
) -> np.ndarray:
    """Scale (c, h, w) values to [0, 1] per map, per layer (``all_chw``) or between global bounds."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    ref = values_chw if all_chw is None else all_chw
    if scale == "global" and global_bounds is None:
        raise ValueError("scale='global' needs global_bounds=activation_bounds(acts)")
    if signed:
        if scale == "map":
            bound = np.max(np.abs(values_chw), axis=(1, 2), keepdims=True)
        elif scale == "layer":
            bound = np.full((1, 1, 1), np.max(np.abs(ref)))
        else:
            bound = np.full((1, 1, 1), max(abs(global_bounds[0]), abs(global_bounds[1])))
        ok = bound > render.EPS
        unit = np.where(ok, 0.5 + 0.5 * values_chw / np.where(ok, bound, 1.0), 0.5)
    else:
        if scale == "map":
            lo = values_chw.min(axis=(1, 2), keepdims=True)
            hi = values_chw.max(axis=(1, 2), keepdims=True)
        elif scale == "layer":
            lo, hi = np.full((1, 1, 1), ref.min()), np.full((1, 1, 1), ref.max())
        else:
            lo, hi = np.full((1, 1, 1), global_bounds[0]), np.full((1, 1, 1), global_bounds[1])
        span = hi - lo
        ok = span > render.EPS
        unit = np.where(ok, (values_chw - lo) / np.where(ok, span, 1.0), 0.0)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def _fit(values_chw: np.ndarray, tile: int) -> np.ndarray:
    """Maps to about ``tile`` px: an integer nearest upscale (crisp) when smaller, nearest downsampling when larger."""
    _, h, w = values_chw.shape
    side = max(h, w)
    if side <= tile:
        f = max(1, round(tile / side))
        return np.repeat(np.repeat(values_chw, f, axis=1), f, axis=2) if f > 1 else values_chw
    out_h, out_w = max(1, round(h * tile / side)), max(1, round(w * tile / side))
    rows = (np.arange(out_h) * h) // out_h
    cols = (np.arange(out_w) * w) // out_w
    return values_chw[:, rows][:, :, cols]


def feature_grid(
    maps_hwc: np.ndarray,
    *,
    scale: str = "map",
    cmap: str = "viridis",
    columns: int | None = None,
    global_bounds: tuple[float, float] | None = None,
    tile: int = 48,
    channels: Sequence[int] | None = None,
    pad: int = 1,
) -> np.ndarray:
    """All feature maps of one layer as one uint8 image: one tile per channel, row-major.

    Args:
        maps_hwc: float (h, w, c) feature maps of one image (or a (units,) vector: 1x1 maps).
        scale: 'map' (each map to its own min..max), 'layer' (one min..max over all the layer's
            channels, also those not shown), 'global' (``global_bounds``, e.g.
            ``activation_bounds(acts)``, shared by every layer).
        cmap: a ``render`` colormap. With a diverging one (``render.DIVERGING``) the scaling is
            symmetric about zero: bound = max |value| per map / layer, or max(|lo|, |hi|) for global.
        columns: tiles per row (default ceil(sqrt(n))).
        tile: target tile side in px: smaller maps are upscaled by a whole factor (crisp pixels),
            larger ones sampled down to it.
        channels: which channels to show, in that order (default: all); tile i is ``channels[i]``.
        pad: pixels between tiles (white; dark grey with a diverging colormap).

    Returns:
        uint8 (H, W, 3).

    Example:
        >>> feature_grid(acts["conv1"], scale="global", global_bounds=activation_bounds(acts)).dtype
        dtype('uint8')
    """
    chw = _as_chw(maps_hwc)
    shown = chw if channels is None else chw[np.asarray(channels, dtype=int)]
    signed = _is_signed(cmap)
    unit = _to_unit(shown, scale, signed, global_bounds, all_chw=chw)
    tiles = render.colorize(_fit(unit, tile), cmap)
    return render.montage(tiles, columns=columns, pad=pad, pad_value=SIGNED_PAD if signed else UNSIGNED_PAD)


@dataclass(frozen=True, eq=False)
class OverviewColumn:
    """One layer of the overview: its maps (or units) stacked top to bottom.

    Attributes:
        layer: the layer path ('input' for the input image).
        image: uint8 (H, W, 3).
        shape: the layer's output shape for one image, e.g. (26, 26, 32) or (10,).
        shown: channel (or unit) indices shown, top to bottom; fewer than all when capped.
        cell: pixel height of one tile (maps) or one cell (vectors); the gap between is ``pad``.
    """

    layer: str
    image: np.ndarray
    shape: tuple[int, ...]
    shown: tuple[int, ...]
    cell: int

    @property
    def total(self) -> int:
        return int(self.shape[-1])


@dataclass(frozen=True, eq=False)
class Overview:
    """A CNN-Explainer-like overview: one column per layer, from the input to the prediction."""

    columns: tuple[OverviewColumn, ...]
    pad: int

    def composite(self, *, gap: int = 12, background: int = 255) -> np.ndarray:
        """All columns side by side (tops aligned, ``gap`` px apart) as one uint8 (H, W, 3) image."""
        height = max(c.image.shape[0] for c in self.columns)
        width = sum(c.image.shape[1] for c in self.columns) + gap * (len(self.columns) - 1)
        out = np.full((height, width, 3), background, dtype=np.uint8)
        x = 0
        for c in self.columns:
            h, w = c.image.shape[:2]
            out[:h, x : x + w] = c.image
            x += w + gap
        return out


def overview(
    acts: Mapping[str, np.ndarray],
    layer_order: Sequence[str],
    *,
    input_display_hwc: np.ndarray | None = None,
    scale: str = "layer",
    cmap: str = "viridis",
    global_bounds: tuple[float, float] | None = None,
    tile: int = 40,
    max_maps: int = 16,
    max_units: int = 64,
    pad: int = 2,
) -> Overview:
    """Columns of feature maps, one per layer, for a CNN-Explainer-like view (NumPy only, fast).

    Args:
        acts: from ``get_activations``.
        layer_order: the layers to show, left to right (e.g. ``activation_layers(model)``).
        input_display_hwc: uint8 image shown as the first column (optional).
        scale: 'map', 'layer' or 'global' as in ``feature_grid``; 'global' defaults to
            ``activation_bounds`` over the 4-D layers of ``layer_order``.
        tile: target side of a map tile (as in ``feature_grid``).
        max_maps: at most this many maps per column (the first ones; ``column.shown`` says which).
        max_units: at most this many cells for a vector layer (dense, global pooling, scores).
        pad: gap between tiles, white.

    Returns:
        Overview; ``.columns[i].image`` per layer, ``.composite()`` for one image.
    """
    if scale == "global" and global_bounds is None:
        maps = [p for p in layer_order if np.ndim(acts[p]) == 3]
        global_bounds = activation_bounds(acts, maps or list(layer_order))
    signed = _is_signed(cmap)
    columns = []
    if input_display_hwc is not None:
        image = render.to_rgb(input_display_hwc)
        fitted = _fit(image.transpose(2, 0, 1).astype(np.float32), tile).transpose(1, 2, 0).astype(np.uint8)
        columns.append(OverviewColumn("input", fitted, tuple(image.shape), (0,), fitted.shape[0]))
    for path in layer_order:
        values = np.asarray(acts[path], dtype=np.float32)
        chw = _as_chw(values)
        is_vector = values.ndim == 1
        n = min(len(chw), max_units if is_vector else max_maps)
        unit = _to_unit(chw[:n], scale, signed, global_bounds, all_chw=chw)
        cell = max(6, tile // 4) if is_vector else None
        fitted = np.repeat(np.repeat(unit, cell, axis=1), cell, axis=2) if is_vector else _fit(unit, tile)
        image = render.montage(render.colorize(fitted, cmap), columns=1, pad=pad, pad_value=255)
        columns.append(OverviewColumn(path, image, tuple(values.shape), tuple(range(n)), int(fitted.shape[1])))
    return Overview(tuple(columns), pad)


def block_columns(model: keras.Model) -> tuple[str, ...]:
    """The overview's columns by block: each block's output, then the head's vectors after them.

    A subset of ``activation_layers`` (one column per block instead of one per layer), for
    ``overview(acts, block_columns(model))`` on deep networks.

    Example:
        >>> block_columns(mobilenet_v2)[-3:]
        ('out_relu', 'global_average_pooling2d', 'predictions')
    """
    layers = activation_layers(model)
    outputs = set(blocks.block_outputs(model))
    last = max((i for i, p in enumerate(layers) if p in outputs), default=-1)
    return tuple(p for i, p in enumerate(layers) if p in outputs or i > last)


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Per-channel numbers of one layer's maps for one image.

    Attributes:
        mean, max: float32 (c,).
        sparsity: float32 (c,), share of exact zeros in each map.
        top: int64 (k,), the channels with the highest mean, highest first.
        dead: bool (c,), the map is zero everywhere on this input (max |value| == 0; for a
            ReLU output, max == 0).
        layer_sparsity: share of exact zeros over the whole layer.
    """

    mean: np.ndarray
    max: np.ndarray
    sparsity: np.ndarray
    top: np.ndarray
    dead: np.ndarray
    layer_sparsity: float


def channel_stats(maps_hwc: np.ndarray, *, k: int = 5) -> ChannelStats:
    """Mean, max, sparsity per channel; the top-k most active channels; dead channels flagged.

    Example:
        >>> acts = get_activations(mnist_cnn, load_mnist_sample().x_nhwc[7])
        >>> s = channel_stats(acts["conv1"], k=3); s.top.tolist(), int(s.dead.sum())
        ([4, 18, 23], 0)
    """
    chw = _as_chw(maps_hwc)
    flat = chw.reshape(len(chw), -1)
    mean = flat.mean(axis=1)
    zeros = flat == 0
    return ChannelStats(
        mean=mean,
        max=flat.max(axis=1),
        sparsity=zeros.mean(axis=1).astype(np.float32),
        top=np.argsort(-mean, kind="stable")[: min(k, len(mean))].astype(np.int64),
        dead=zeros.all(axis=1),
        layer_sparsity=float(zeros.mean()),
    )


def layer_sparsity(acts: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of exact zeros in each layer's output (after ReLU: the share of inactive units)."""
    return {p: float(np.mean(np.asarray(a) == 0)) for p, a in acts.items()}
