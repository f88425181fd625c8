"""The shared pipeline of every attribution method, and ``method``, the factory that defines one.

A method file holds three things and hands them to ``method``: its raw batched computation
``maps(model, batch_nhwc, target, layer, **options) -> (N, H, W)``, its display rule
(``DISPLAYS``: 'absolute', 'relu' or 'signed') and its cost as a function of its options. The
factory builds the normalized public function and the batch form from them. The steps a
computation can use:

* ``cam_maps`` runs the compiled forward + backward to a layer and hands ``(activations,
  gradients)`` to the method's ``combine`` step (Grad-CAM, Grad-CAM++, LayerCAM), then applies
  ReLU and upsamples to the input size;
* ``input_gradients`` gives d(score)/d(input) for a batch (Saliency, Gradient x Input,
  Integrated Gradients, and so SmoothGrad); with a ``rewrite`` of the sub-model, Guided
  Backpropagation's gated ReLUs;
* ``forward`` / ``target_scores`` / ``probabilities`` run batches forward in chunks (Score-CAM,
  Occlusion, the metrics);
* ``normalize_map`` is the one normalization every public method ends in.

Progress: every public function and batch form takes ``on_progress(done, total) -> bool | None``;
``total`` is the method's cost, ``done`` counts the images the shared chunk loops (``forward``,
``input_gradients``, ``cam_maps``) have run (a computation with its own ``on_progress`` keyword,
such as LIME, gets the callback instead). A callback that returns True stops the run with
``AttributionCancelled`` (a ``threading.Event`` works too: ``on_progress=lambda d, t: stop.is_set()``).
``pass_seconds`` measures one forward pass per image, once per model, to turn a cost into seconds.

The score of a target is the pre-softmax score (``graph.feature_model``); a binary head
(``heads.is_binary``: one sigmoid or linear unit) has targets 0 and 1: target 1 -> +logit,
target 0 -> -logit, top class 1 when the logit is > 0.

Compiled functions live in ``vizcore.cache.per_model`` (weakly keyed by the model, bounded per
kind). A value holds the ``tf.function`` and the sub-model it calls (which shares the model's
layers and variables) but never the model itself. Each is traced once (fixed input signature:
any batch size, the target as a tensor). The model is never changed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore import profile
from vizcore.cache import per_model
from vizcore.errors import ConvLensError
from vizcore.models import blocks, graph, heads
from vizcore.models.batches import as_batch, as_image
from vizcore.present.render import resize_map

Method = Callable[..., np.ndarray]  # (model, image_hwc, *, target=None, layer=None, **options) -> heatmap_hw
BatchMethod = Callable[
    ..., np.ndarray
]  # (model, batch_nhwc, *, target=None, layer=None, **options) -> raw maps (N, H, W)
Maps = Callable[..., np.ndarray]  # (model, batch_nhwc, target, layer, **options) -> raw maps (N, H, W); the computation
EPS = 1e-6  # relative: a map whose span is below EPS * its magnitude is treated as constant
TOP = -1  # the target passed to compiled functions for "each image's top class"
DEFAULT_BATCH = 32
ENGINES_PER_KIND = 16  # compiled functions kept per model and kind (one per layer): a layer sweep fits


class AttributionError(ConvLensError, ValueError):
    """A request an attribution method cannot honour (bad target, non-spatial layer, bad option)."""


class AttributionCancelled(ConvLensError):
    """The ``on_progress`` callback asked a running method to stop."""


# --------------------------------------------------------------------------- progress

Progress = Callable[[int, int], "bool | None"]  # (done, total) -> True to cancel


@dataclass
class _Tracker:
    total: int
    sink: Progress
    done: int = field(default=0)

    def report(self, done: int) -> None:
        self.done = max(0, min(self.total, done))
        if self.sink(self.done, self.total):
            raise AttributionCancelled("Cancelled.")


_TRACKER: contextvars.ContextVar[_Tracker | None] = contextvars.ContextVar("attribution_progress", default=None)


@contextlib.contextmanager
def progress_to(on_progress: Progress | None, total: int) -> Iterator[None]:
    """Report the images the chunk loops run inside the block to ``on_progress(done, total)``.

    Starts with (0, total) and ends with (total, total); a nested block (a wrapped method) reports
    to the outer one. Raises ``AttributionCancelled`` when the callback returns True.
    """
    if on_progress is None or _TRACKER.get() is not None:
        yield
        return
    tracker = _Tracker(max(1, int(total)), on_progress)
    token = _TRACKER.set(tracker)
    try:
        tracker.report(0)
        yield
        tracker.report(tracker.total)
    finally:
        _TRACKER.reset(token)


def advance(images: int) -> None:
    """Count ``images`` more run through the model (a no-op outside ``progress_to``)."""
    tracker = _TRACKER.get()
    if tracker is not None:
        tracker.report(min(tracker.total - 1, tracker.done + images))  # the total when the block ends


# --------------------------------------------------------------------------- normalization


def normalize_map(map_hw: np.ndarray) -> np.ndarray:
    """The shared normalization: min-max to [0, 1] with an epsilon; a constant map becomes zeros.

    Non-finite values are replaced by 0 first, so the result is always finite.

    Example:
        >>> normalize_map(np.array([[0.0, 2.0], [1.0, 2.0]])).tolist()
        [[0.0, 1.0], [0.5, 1.0]]
    """
    m = np.nan_to_num(np.asarray(map_hw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo <= EPS * max(abs(lo), abs(hi)):  # constant, all zeros included
        return np.zeros(m.shape, dtype=np.float32)
    return np.clip((m - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- compiled functions


@dataclass(frozen=True)
class Engine:
    """What is cached for one model and one (kind, layer): never a reference to the model itself."""

    fn: Any  # a tf.function with a fixed input signature
    classes: int  # number of score units
    binary: bool  # one binary logit (heads.is_binary)
    height: int | None
    width: int | None
    channels: int
    head: str
    layer_shape: tuple[int | None, ...] = ()  # output shape of the layer, () when none


def _target_score(scores: tf.Tensor, target: tf.Tensor, binary: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image score of the target (N,) and the class used (N,); target TOP = each image's top class."""
    if binary:
        logit = scores[:, 0]
        chosen = tf.where(target < 0, tf.cast(logit > 0, tf.int32), target)
        return tf.where(chosen == 1, logit, -logit), chosen
    top = tf.argmax(scores, axis=1, output_type=tf.int32)
    chosen = tf.where(target < 0, top, target)
    return tf.gather(scores, chosen, batch_dims=1), chosen


def _outputs(sub: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
    outs = sub(x, training=False)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _cam_step(sub: keras.Model, binary: bool, x: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(acts, d score / d acts, scores, chosen class) of a batch."""
    with tf.GradientTape() as tape:
        acts, scores = _outputs(sub, x)
        score, chosen = _target_score(scores, target, binary)
    return acts, tape.gradient(score, acts), scores, chosen


def _input_grad_step(sub: keras.Model, binary: bool, x: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(d score / d x, score, chosen class) of a batch."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        (scores,) = _outputs(sub, x)
        score, chosen = _target_score(scores, target, binary)
    return tape.gradient(score, x), score, chosen


def _forward_step(sub: keras.Model, binary: bool, x: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """(*layer outputs, scores) of a batch."""
    return tuple(_outputs(sub, x))


_STEPS = {"cam": _cam_step, "input_grad": _input_grad_step, "forward": _forward_step}


Rewrite = Callable[
    [keras.Model], keras.Model
]  # sub-model -> a copy with the same inputs and outputs sharing its layers


def _build(fm: graph.FeatureModel, kind: str, spec: graph.InputSpec, rewrite: Rewrite | None = None) -> Engine:
    sub = (
        fm.model if rewrite is None else rewrite(fm.model)
    )  # the sub-model only: nothing below may reach the original model
    classes = int(sub.outputs[-1].shape[-1])
    binary = heads.is_binary(fm.head, classes)
    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32)]
    if kind != "forward":
        signature.append(tf.TensorSpec((), tf.int32))  # the target; TOP = each image's top class
    # A partial, not a closure: TensorFlow then counts traces per engine instead of per code
    # object, so one trace for each of many models is not reported as "excessive retracing".
    fn = tf.function(functools.partial(_STEPS[kind], sub, binary), input_signature=signature)
    layer_shape = tuple(sub.outputs[0].shape) if fm.layers else ()
    return Engine(fn, classes, binary, spec.height, spec.width, spec.channels, fm.head, layer_shape)


def engine(model: keras.Model, kind: str, layer: str | None = None, rewrite: Rewrite | None = None) -> Engine:
    """The cached compiled function of ``kind`` ('cam', 'input_grad', 'forward') for a model and layer.

    ``rewrite`` (a module-level function, part of the cache key) turns the feature sub-model into
    a copy that computes differently, e.g. Guided Backpropagation's gated ReLUs.
    """

    def build() -> Engine:
        return _build(graph.feature_model(model, (layer,) if layer else ()), kind, graph.input_spec(model), rewrite)

    key = (f"attribution.{kind}", layer) if rewrite is None else (f"attribution.{kind}", layer, rewrite)
    return per_model(model, key, build, limit=ENGINES_PER_KIND)


# --------------------------------------------------------------------------- layers, targets, scores


def cam_layer(model: keras.Model, layer: str | None, kind: str = "cam") -> str:
    """The path of a CAM method's layer: ``layer`` resolved, or the default block output; must be 4-D."""
    path = blocks.default_target_layer(model) if layer is None else graph.resolve_layer(model, layer)
    shape = engine(model, kind, path).layer_shape
    if len(shape) != 4:
        raise AttributionError(
            f"Layer '{path}' outputs shape {shape}; CAM methods need a spatial layer "
            "(batch, height, width, channels), such as a convolution."
        )
    return path


def _check_target(eng: Engine, target: int | None) -> int:
    if target is None:
        return TOP
    limit = 2 if eng.binary else eng.classes
    if not 0 <= int(target) < limit:
        raise AttributionError(f"target must be a class index in 0..{limit - 1}, got {target}.")
    return int(target)


def forward(
    model: keras.Model, batch_nhwc: np.ndarray, layer: str | None = None, *, batch_size: int = DEFAULT_BATCH
) -> tuple[np.ndarray, ...]:
    """Run the compiled forward pass in chunks; returns (layer outputs,) + (scores (N, K),)."""
    eng = engine(model, "forward", layer)
    chunks = []
    for i in range(0, len(batch_nhwc), batch_size):
        chunks.append(eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32)))
        advance(len(batch_nhwc[i : i + batch_size]))
    return tuple(np.concatenate([np.asarray(c[j]) for c in chunks]) for j in range(len(chunks[0])))


def target_scores(
    model: keras.Model, batch_nhwc: np.ndarray, target: int, *, batch_size: int = DEFAULT_BATCH
) -> np.ndarray:
    """The pre-softmax score of ``target`` for every image of a batch (N,) (binary: signed logit)."""
    scores = forward(model, batch_nhwc, batch_size=batch_size)[-1]
    if engine(model, "forward").binary:
        return np.where(target == 1, scores[:, 0], -scores[:, 0])
    return scores[:, target]


def resolve_target(model: keras.Model, image: np.ndarray, target: int | None = None) -> int:
    """``target`` checked, or the top class of the image when None (binary: 1 when the logit > 0)."""
    eng = engine(model, "forward")
    chosen = _check_target(eng, target)
    if chosen != TOP:
        return chosen
    scores = forward(model, as_image(model, image)[None])[-1][0]
    return int(scores[0] > 0) if eng.binary else int(np.argmax(scores))


def probabilities(model: keras.Model, batch_nhwc: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Class probabilities of a batch as ``heads.probabilities`` says, float64 (N, K) (binary: (N, 2))."""
    scores = forward(model, np.asarray(batch_nhwc, np.float32), batch_size=batch_size)[-1]
    return heads.probabilities(scores, engine(model, "forward").head)


def predict_probabilities(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Class probabilities of ONE image, float64 (K,) (binary head: (2,) = [P(class 0), P(class 1)]).

    Where the profile compiles no single pass (hosted), an eager pass with a bounded peak
    (``graph.FeatureModel.predict_lean``): no compiled forward function is kept for the network.
    """
    if profile.current().compile_single_passes:
        return probabilities(model, as_image(model, image)[None])[0]
    fm = per_model(model, "attribution.lean_forward", lambda: graph.feature_model(model), limit=1)
    _, scores = fm.predict_lean(as_image(model, image)[None])
    return heads.probabilities(scores, fm.head)[0]


def top_k(model: keras.Model, image: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one image as ``(class index, probability)``, best first.

    Example:
        >>> top_k(loaded.model, x_hwc, 3)
        [(7, 0.98), (2, 0.01), (3, 0.004)]
    """
    probs = predict_probabilities(model, image)
    order = np.argsort(-probs, kind="stable")[: max(0, k)]
    return [(int(i), float(probs[i])) for i in order]


def pass_seconds(model: keras.Model, size_hw: tuple[int, int] | None = None, *, images: int = 4) -> float:
    """Seconds of one forward pass per image in a batch of ``images``, measured once per model and size.

    ``size_hw`` is needed only for a model without a fixed input size.
    """
    spec = graph.input_spec(model)
    h, w = (spec.height, spec.width) if spec.height and spec.width else tuple(size_hw or (224, 224))

    def measure() -> float:
        batch = np.zeros((images, h, w, spec.channels), np.float32)
        forward(model, batch)  # warm: the trace, and a first call at this batch size is several times slower
        times = []
        for _ in range(2):
            start = time.perf_counter()
            forward(model, batch)
            times.append(time.perf_counter() - start)
        return min(times) / images

    return per_model(model, ("attribution.pass_seconds", h, w), measure, limit=4)


# --------------------------------------------------------------------------- gradients and CAMs


def input_gradients(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    *,
    batch_size: int = DEFAULT_BATCH,
    rewrite: Rewrite | None = None,
) -> np.ndarray:
    """d(target score)/d(input) for every image of a batch, float32 (N, H, W, C).

    ``target=None`` takes each image's top class; ``rewrite`` as in ``engine``.
    """
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "input_grad", rewrite=rewrite)
    t = tf.constant(_check_target(eng, target), tf.int32)
    parts = []
    for i in range(0, len(batch_nhwc), batch_size):
        parts.append(np.asarray(eng.fn(tf.constant(batch_nhwc[i : i + batch_size], tf.float32), t)[0]))
        advance(len(batch_nhwc[i : i + batch_size]))
    return np.concatenate(parts)


def upsample(map_hw: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a layer-sized map to the input size (no-op when already that size)."""
    return map_hw.astype(np.float32) if map_hw.shape == tuple(size_hw) else resize_map(map_hw, size_hw)


Combine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (acts_nhwk, grads_nhwk) -> cams_nhw


def cam_maps(
    model: keras.Model, batch_nhwc: np.ndarray, combine: Combine, *, target: int | None = None, layer: str | None = None
) -> np.ndarray:
    """The CAM pipeline: forward + backward to ``layer``, ``combine``, ReLU, upsample; raw maps (N, H, W)."""
    batch_nhwc = as_batch(model, batch_nhwc)
    eng = engine(model, "cam", cam_layer(model, layer))
    t = tf.constant(_check_target(eng, target), tf.int32)
    acts, grads, _, _ = eng.fn(tf.constant(batch_nhwc, tf.float32), t)
    advance(len(batch_nhwc))
    cams = np.maximum(combine(np.asarray(acts, np.float64), np.asarray(grads, np.float64)), 0.0)
    size = batch_nhwc.shape[1:3]
    return np.stack([upsample(c, size) for c in cams]).astype(np.float32)


# --------------------------------------------------------------------------- defining a method


# How a raw map is shown before the shared normalization.
DISPLAYS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = MappingProxyType(
    {
        "absolute": np.abs,  # magnitude: evidence for and against alike (Gradient x Input, Integrated Gradients)
        "relu": lambda m: np.maximum(m, 0.0),  # evidence for the class only (CAMs, Occlusion)
        "signed": lambda m: m,  # as it is: the most negative value becomes 0 after normalization
    }
)
UNITS = MappingProxyType({"forward pass": "forward passes", "gradient": "gradients"})
PASSES = MappingProxyType(
    {"forward pass": 1.0, "gradient": 3.0}
)  # forward-pass equivalents of one unit (backward ~ 2 forwards)


@dataclass(frozen=True)
class Cost:
    """What a method runs through the model for one image: ``count`` forward passes or gradients."""

    count: int
    unit: str = "forward pass"  # a key of UNITS; a gradient is one forward + backward pass

    def __str__(self) -> str:
        return f"{self.count:,} {self.unit if self.count == 1 else UNITS[self.unit]}"

    def seconds(self, per_pass: float) -> float:
        """An estimate in seconds from the measured seconds of one forward pass (``pass_seconds``)."""
        return self.count * PASSES[self.unit] * per_pass


CostFn = Callable[..., Cost]  # (model, size_hw, layer, **every option, defaults filled in) -> Cost


def one_gradient(model: keras.Model, size_hw: tuple[int, int], layer: str | None, **options: Any) -> Cost:
    """The cost of a method that takes one gradient (forward + backward) per image."""
    return Cost(1, "gradient")


@dataclass(frozen=True)
class Option:
    """One extra keyword option of a method, for a UI widget (its type is the type of ``default``)."""

    name: str
    kind: str  # "int", "float" or "choice"
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | str | None = None  # a number, or the name of an earlier option whose value is the bound


@dataclass(frozen=True, kw_only=True, eq=False)
class MethodInfo:
    """A method as the registry and the pages see it; built by ``method``, never by hand.

    Attributes:
        fn: the public function, a normalized heatmap of one image.
        batch: the batch form, raw maps of a batch (N, H, W); ``target=None``: each image's top class.
        display: how a raw map is shown (a key of ``DISPLAYS``).
        uses_layer: whether the method looks at a layer (the CAMs).
        cost: the computation's cost (see ``cost_of``).
        defaults: every keyword option of the computation with its default.
        options: the options a page offers as widgets.
        about: one line for the page.
    """

    fn: Method
    batch: BatchMethod
    display: str
    uses_layer: bool
    cost: CostFn
    defaults: Mapping[str, Any]
    options: tuple[Option, ...] = ()
    about: str = ""

    def shown(self, raw_maps: np.ndarray) -> np.ndarray:
        """Raw maps as the method shows them, before normalization."""
        return DISPLAYS[self.display](raw_maps)

    def cost_of(
        self, model: keras.Model, size_hw: tuple[int, int], *, layer: str | None = None, **options: Any
    ) -> Cost:
        """What running the method on one image of ``size_hw`` costs with these options (the rest default)."""
        return self.cost(model, tuple(size_hw), layer if self.uses_layer else None, **{**self.defaults, **options})


def method(
    name: str,
    maps: Maps,
    *,
    display: str,
    uses_layer: bool,
    cost: CostFn,
    options: tuple[Option, ...] = (),
    about: str = "",
) -> MethodInfo:
    """Define a method once, from its raw batched computation; returns its ``MethodInfo``.

    Args:
        name: the public function's name.
        maps: ``(model, batch_nhwc, target, layer, **options) -> raw maps (N, H, W)``: the batch is
            checked float32 NHWC, ``target`` an int or None (each image's top class), ``layer`` None
            unless ``uses_layer``; its keyword-only defaults are the method's options.
        display: 'absolute', 'relu' or 'signed' (``DISPLAYS``).
        uses_layer: whether ``layer`` is passed on.
        cost: ``(model, size_hw, layer, **options) -> Cost``.
        options: the options a page shows; each must be a keyword of ``maps`` with the same default.
    Returns:
        MethodInfo whose ``fn`` is ``normalize_map(display(maps(one image)))`` and ``batch`` the raw maps.
    """
    if display not in DISPLAYS:
        raise ValueError(f"display must be one of {tuple(DISPLAYS)}, got '{display}'.")
    params = inspect.signature(maps).parameters.values()
    defaults = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    own_progress = defaults.pop("on_progress", False) is None  # a computation with its own on_progress reports itself
    for o in options:
        if (o.name in defaults and defaults[o.name] != o.default) or (o.name not in defaults and not open_ended):
            raise TypeError(f"Option '{o.name}' of {name} does not match a keyword default of {maps.__name__}.")
    show = DISPLAYS[display]

    def batch(
        model: keras.Model,
        batch_nhwc: np.ndarray,
        *,
        target: int | None = None,
        layer: str | None = None,
        on_progress: Progress | None = None,
        **opts: Any,
    ) -> np.ndarray:
        x = as_batch(model, batch_nhwc)
        layer = layer if uses_layer else None
        if own_progress:  # the computation reports its own progress (LIME: samples)
            return maps(model, x, target, layer, on_progress=on_progress, **opts)
        total = len(x) * info.cost_of(model, x.shape[1:3], layer=layer, **opts).count if on_progress else 0
        with progress_to(on_progress, total):
            return maps(model, x, target, layer, **opts)

    def fn(
        model: keras.Model,
        image: np.ndarray,
        *,
        target: int | None = None,
        layer: str | None = None,
        on_progress: Progress | None = None,
        **opts: Any,
    ) -> np.ndarray:
        x = as_image(model, image)
        return normalize_map(
            show(batch(model, x[None], target=target, layer=layer, on_progress=on_progress, **opts)[0])
        )

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{name} heatmap of one image, float32 (H, W) in [0, 1]. {about}"
    batch.__name__ = batch.__qualname__ = f"{name}_batch"
    batch.__doc__ = f"Raw {name} maps of a batch, float32 (N, H, W), before '{display}' and normalization."
    info = MethodInfo(
        fn=fn,
        batch=batch,
        display=display,
        uses_layer=uses_layer,
        cost=cost,
        defaults=MappingProxyType(defaults),
        options=tuple(options),
        about=about,
    )
    fn.info = info  # type: ignore[attr-defined]  # so that wrappers (smoothgrad) find the batch form
    return info
