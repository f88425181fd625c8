"""Feature maps: every requested layer's output in one forward pass, and statistics of them.

``get_activations`` builds one sub-model (``features.feature_model``) that outputs all requested
layers, caches it per model and layer list, and runs the image through it once. Passes run
eagerly, each layer's output freed once no later layer reads it (``features.lean_call``: ResNet50's
peak at 224x224 is about 40 MB instead of 150); when one takes longer than ``COMPILE_AFTER_MS`` (deep
models), later passes use Keras's compiled ``predict_on_batch`` (traced once, then several times
faster; same numbers), so small models never pay the compile and large ones pay it once, unless
the profile compiles no single pass (hosted: a compiled pass keeps 20-40 MB per layer set). Switching
the shown layer or the scaling afterwards is NumPy only (``vizcore.present.grids``: ``feature_grid``,
``overview``), a few milliseconds.

Example:
    >>> acts = get_activations(model, image_hwc)                  # {path: (h, w, c) or (units,)}
    >>> grid = grids.feature_grid(acts["conv2"], scale="map")     # uint8 HxWx3, one tile per channel
    >>> stats = channel_stats(acts["conv2"]); stats.top, stats.dead.sum()
"""

from __future__ import annotations

import dataclasses
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
from vizcore.models import batches, blocks, features, graph
from vizcore.present import grids

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

    fm: features.FeatureModel
    compiled: bool = False
    traced: set = dataclasses.field(default_factory=set)  # batch shapes whose compiled pass is traced
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)  # one trace at a time

    def __call__(self, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        if self.compiled:  # predict_on_batch without its copy of every output (~100 MB at 224): views of the tensors
            shape = np.shape(batch_nhwc)
            if shape in self.traced:
                outs = self.fm.model.predict_function([(batch_nhwc,)])
            else:
                with self.lock:  # a warming thread may be tracing this shape: wait for it rather than trace twice
                    self.fm.model.make_predict_function()
                    outs = self.fm.model.predict_function([(batch_nhwc,)])
                    self.traced.add(shape)
            return [np.asarray(a).astype(np.float32, copy=False) for a in outs[: len(self.fm.layers)]]
        start = time.perf_counter()
        acts, _ = self.fm.predict_lean(batch_nhwc)
        slow = (time.perf_counter() - start) * 1000.0 > COMPILE_AFTER_MS
        self.compiled = slow and profile.current().compile_single_passes  # hosted: never (a compiled pass stays)
        return [acts[p] for p in self.fm.layers]


def _runner(model: keras.Model, paths: tuple[str, ...]) -> _Runner:
    """The sub-model for these layers, cached per model (it holds the layers, never the model)."""
    return per_model(model, ("activations.runner", paths), lambda: _Runner(features.feature_model(model, paths)))


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


def warm(model: keras.Model, batch_nhwc: np.ndarray, layers: Sequence[str]) -> bool:
    """Trace now the compiled pass that ``get_activations_batch(model, <a batch of this shape>, layers)``
    would trace on its next call, so the next input's pass only runs; returns whether it traced.

    Only a pass already found slow (``COMPILE_AFTER_MS``) is compiled, and only where the profile
    compiles single passes: elsewhere (hosted) nothing is traced or kept, and this returns False.
    Run it in a background thread while the user reads the page (``pages/_warm.py``); the pass it
    runs is thrown away (its peak is the pass's own).
    """
    if not profile.current().compile_single_passes:
        return False
    names = tuple(layers)
    paths = per_model(
        model, ("activations.paths", names), lambda: tuple(dict.fromkeys(graph.resolve_layer(model, n) for n in names))
    )
    runner = _runner(model, paths)
    batch = batches.as_batch(model, batch_nhwc)
    if not runner.compiled or np.shape(batch) in runner.traced:
        return False
    runner(batch)
    return True


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

    def warm(self) -> bool:
        """Trace the compiled pass the next image's store will run (``warm``): for a store that computes
        every layer at once; returns whether it traced."""
        model = self._model()
        if model is None or not self.all_at_once or not self._values:
            return False
        return warm(model, self._image[None], tuple(self._values))

    def __getitem__(self, path: str) -> np.ndarray:
        return self.select([path])[path]

    def __contains__(self, path: object) -> bool:
        return path in self._shapes

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


def block_columns(model: keras.Model) -> tuple[str, ...]:
    """The overview's columns by block: each block's output, then the head's vectors after them.

    A subset of ``activation_layers`` (one column per block instead of one per layer), for
    ``grids.overview(acts, block_columns(model))`` on deep networks.

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
    chw = grids.as_chw(maps_hwc)
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
