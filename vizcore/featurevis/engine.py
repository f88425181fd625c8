"""Batched gradient ascent: every image of a batch optimized together inside one compiled graph.

One call optimizes N images at once, image i for target i (a filter, a class): the objectives score
each image on its own target, the loss is the sum over images, and Adam works element by element,
so the images do not interact and the batch is N independent optimizations that share each
kernel launch. A chunk of ``settings.progress_every`` steps runs as one ``tf.function`` loop; Python
runs only between chunks (for the progress callback).

One gradient rule on every route (the channel-slicing fast path or the whole layer): the target's
own ReLU passes Lucid's redirected gradient for the first ``settings.redirect_steps`` steps, the
ordinary one after, so a filter reaches the same image whichever route computes it. An early layer
of a large network is optimized as a texture at twice its receptive field when the network up to
it is convolutional (``settings.fit_receptive_field``, ``fitting.fitted_size``, ``texture_settings``).

Seeding is per image: the initial variables and the random transform draws of image i come from
``(seed, target, copy)``, so filter 7 gets the same image whether it is optimized alone or with
the other 63.

Example:
    >>> loaded = models.open_bundled("mnist_cnn")
    >>> images = visualize_filters(loaded, "conv2", range(64))     # (64, 28, 28, 1) in [0, 1]
    >>> result = optimize(loaded, Channel("conv2"), range(64))     # images + loss terms + reached
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.cache import per_model
from vizcore.featurevis import slicing
from vizcore.featurevis.fitting import fitted_size
from vizcore.featurevis.objectives import (
    Channel,
    ClassLogit,
    Direction,
    Diversity,
    Objective,
    Outputs,
    crop_border,
    unique_names,
)
from vizcore.featurevis.ranges import InputRange, input_range, model_and_mode
from vizcore.featurevis.result import FeatureVis
from vizcore.featurevis.settings import Settings, capped_steps, layer_settings, texture_settings
from vizcore.featurevis.transforms import apply_transforms
from vizcore.models import graph, heads

ProgressFn = Callable[[int, int, "np.ndarray | None"], None]
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class _Engine:
    """Variables and compiled functions for one model, objective, settings and batch shape."""

    def __init__(
        self,
        model: keras.Model,
        objective: Objective,
        settings: Settings,
        n: int,
        hwc: tuple[int, int, int],
        in_range: InputRange,
        diversity: float,
    ):
        self.lock = threading.Lock()
        self.objective, self.settings, self.n, self.hwc, self.range = objective, settings, n, hwc, in_range
        self.diversity = diversity
        self.leaves = objective.terms()
        names = list(objective.layers)
        if diversity and not names:
            raise ValueError("diversity compares activations of a layer; the objective reads none.")
        self.paths = {name: graph.resolve_layer(model, name) for name in names}
        fast = objective.sliced_layer if not diversity and len(names) == 1 else None
        self.sliced_name = fast
        self.sliced = slicing.sliced_model(model, self.paths[fast]) if fast else None
        self.full_names = [] if self.sliced is not None else names
        # the plain path reads the input of each layer's own ReLU and applies it with the same rule
        self.splits = {name: slicing.own_relu(model, self.paths[name]) for name in self.full_names}
        self.reads = {name: split.source if split else self.paths[name] for name, split in self.splits.items()}
        wanted = tuple(dict.fromkeys(p for p in self.reads.values() if p != "input"))
        self.forward = (
            slicing.layers_model(model, wanted, objective.needs_scores) if wanted or objective.needs_scores else None
        )
        self.limits = _limits(model, self.paths, objective)
        self.binary = objective.needs_scores and _binary_head(model)

        h, w, c = hwc
        shape = (n, *settings.param.init(np.random.default_rng(0), h, w, c).shape)
        self.var = tf.Variable(tf.zeros(shape), name="featurevis_params")
        self.m = tf.Variable(tf.zeros(shape))
        self.v = tf.Variable(tf.zeros(shape))
        self.t = tf.Variable(0.0)
        self.total = tf.Variable(1.0)  # steps of this run, for the schedule (steps are not part of the key)
        self.responsive = tf.Variable(tf.zeros([n], tf.bool))
        self.targets = tf.Variable(tf.zeros([n], tf.int32))
        self.groups = tf.Variable(tf.zeros([n], tf.int32))
        self.n_draws = sum(t.n_draws for t in settings.transforms)
        # partials, not methods: TensorFlow counts retraces per code object, across all engines
        self.chunk = tf.function(
            functools.partial(_Engine._chunk, self),
            input_signature=[tf.TensorSpec([None, n, self.n_draws], tf.float32)],
        )
        self.evaluate = tf.function(functools.partial(_Engine._evaluate, self))
        self.images = tf.function(functools.partial(_Engine._images, self))

    def _outputs(self, x: Any, redirect: Any = False) -> Outputs:
        acts, scores = self.forward(x) if self.forward is not None else ({}, None)
        acts = {**acts, "input": x}
        layers = {}
        for name in self.full_names:
            split, a = self.splits[name], acts[self.reads[name]]
            layers[name] = a if split is None else split(a, redirect)
        sliced = {self.sliced_name: self.sliced(x, self.targets, redirect)} if self.sliced is not None else {}
        return Outputs(layers, scores, self.targets, self.groups, sliced, self.binary)

    def _unit(self) -> Any:
        h, w, c = self.hwc
        return self.settings.param(self.var, h, w, c)

    def _images(self) -> Any:
        return self.range.to_model(self._unit())

    def _evaluate(self) -> Any:
        return self.objective(self._outputs(self._images()))

    def _step(self, draws: Any) -> Any:
        h, w, _ = self.hwc
        redirect = self.t < float(self.settings.redirect_steps)  # the one gradient rule, every route
        with tf.GradientTape() as tape:
            unit = self._unit()
            x = apply_transforms(self.settings.transforms, unit, draws, h, w)
            out = self._outputs(self.range.to_model(x), redirect)
            values = [term(out) for _, _, term in self.leaves]
            per_image = -tf.add_n([weight * v for (_, weight, _), v in zip(self.leaves, values)])
            if self.diversity:
                similarity = Diversity(self.full_names[0])(out)
                values.append(similarity)
                per_image += self.diversity * similarity
            for reg in self.settings.regularizers:
                penalty = reg(unit)
                values.append(penalty)
                per_image += reg.weight * penalty
            loss = tf.reduce_sum(per_image)
        grad, grad_x = tape.gradient(loss, [self.var, x])  # d loss / d x: the objective's part only
        if grad_x is None:
            raise ValueError(
                "The objective does not depend on the input image; pick a layer or class the image reaches."
            )
        moved = tf.reduce_max(tf.abs(tf.reshape(grad_x, [self.n, -1])), axis=1) > 0.0
        self.responsive.assign(self.responsive | moved)
        lr = self.settings.learning_rate * _schedule(self.settings.schedule, self.t, self.total)
        t = self.t.assign_add(1.0)
        m = self.m.assign(_BETA1 * self.m + (1.0 - _BETA1) * grad)
        v = self.v.assign(_BETA2 * self.v + (1.0 - _BETA2) * tf.square(grad))
        step = lr * (m / (1.0 - _BETA1**t)) / (tf.sqrt(v / (1.0 - _BETA2**t)) + _EPS)
        self.var.assign_sub(step)
        return tf.stack(values + [per_image])

    def _chunk(self, draws: Any) -> Any:
        n_steps = tf.shape(draws)[0]
        history = tf.TensorArray(tf.float32, size=n_steps)
        for i in tf.range(n_steps):
            history = history.write(i, self._step(draws[i]))
        return history.stack()  # (steps, terms, N)

    def term_names(self) -> list[str]:
        names = [name for name, _, _ in self.leaves]
        if self.diversity:
            names.append("diversity")
        names += [reg.name for reg in self.settings.regularizers]
        return unique_names(names) + ["loss"]

    def reset(self, initial: np.ndarray, targets: np.ndarray, groups: np.ndarray, total: int) -> None:
        self.var.assign(initial)
        self.total.assign(float(max(1, total)))
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))
        self.t.assign(0.0)
        self.responsive.assign(tf.zeros_like(self.responsive))
        self.targets.assign(targets.astype(np.int32))
        self.groups.assign(groups.astype(np.int32))


def _schedule(name: str, t: Any, total: Any) -> Any:
    """The learning rate's factor at step ``t`` (0-based) of ``total``: 1, or a cosine from 1 to 0.1."""
    if name == "constant":
        return 1.0
    done = t / tf.maximum(total - 1.0, 1.0)
    return 0.1 + 0.45 * (1.0 + tf.cos(np.pi * tf.minimum(done, 1.0)))


def _limits(model: keras.Model, paths: Mapping[str, str], objective: Objective) -> dict[str, int]:
    """How many targets there are, by what they are: "filters in 'conv2'" -> 64, "classes" -> 10."""
    rows = {r.path: r for r in graph.layer_table(model)}
    limits = {}
    if objective.sliced_layer:
        path = paths[objective.sliced_layer]
        limits[f"filters in '{path}'"] = int(rows[path].output_shape[-1])
    if objective.needs_scores:
        units = int(list(rows.values())[-1].output_shape[-1] or 1)
        limits["classes"] = 2 if _binary_head(model) else units
    for _, _, term in objective.terms():
        if isinstance(term, Direction) and term.index is None:
            limits["directions"] = len(term.directions)
    return limits


def _binary_head(model: keras.Model) -> bool:
    """Whether the scores are one binary logit (two classes: +z and -z), as ``heads.is_binary`` says."""
    units = int(graph.layer_table(model)[-1].output_shape[-1] or 1)
    return heads.is_binary(graph.head_type(model), units)


_ENGINES_PER_MODEL = 4


def _engine(
    model: keras.Model,
    objective: Objective,
    settings: Settings,
    n: int,
    hwc: tuple[int, int, int],
    in_range: InputRange,
    diversity: float,
) -> _Engine:
    """A cached engine: traced once per model, objective, settings (steps aside) and batch shape."""
    key = (
        "featurevis.engine",
        objective,
        dataclasses.replace(settings, steps=0, progress_every=0),
        n,
        hwc,
        in_range,
        diversity,
    )
    return per_model(
        model, key, lambda: _Engine(model, objective, settings, n, hwc, in_range, diversity), limit=_ENGINES_PER_MODEL
    )


def _draws(settings: Settings, seeds: list[tuple[int, int, int]], steps: int) -> np.ndarray:
    """(steps, N, n_draws) uniforms; transform j of image i draws from stream (seed, target, copy, 1 + j)."""
    columns = []
    for j, transform in enumerate(settings.transforms):
        if transform.n_draws:
            columns.append(
                np.stack([np.random.default_rng([*s, 1 + j]).random((steps, transform.n_draws)) for s in seeds], axis=1)
            )
    if not columns:
        return np.zeros((steps, len(seeds), 0), np.float32)
    return np.concatenate(columns, axis=2).astype(np.float32)


def optimize(
    model: Any,
    objective: Objective,
    targets: Iterable[int],
    *,
    settings: Settings | None = None,
    steps: int | None = None,
    seed: int = 0,
    preprocess: str | None = None,
    value_range: tuple[float, float] | None = None,
    images_per_target: int = 1,
    diversity: float = 0.0,
    on_progress: ProgressFn | None = None,
    preview: bool = True,
) -> FeatureVis:
    """Optimize one image per target (filter or class) together, as one batch in a compiled graph.

    Args:
        model: a keras.Model or a ``LoadedModel`` (whose ``preprocess`` sets the input range).
        objective: what to maximize, e.g. ``Channel("conv2")`` or ``ClassLogit()``; with
            ``index=None`` each image is scored on its own target.
        targets: the filters (or classes), one image each (times ``images_per_target``).
        settings: defaults to ``layer_settings(model, objective)``: ``default_settings`` of the
            input, with ``TEXTURE_STEPS`` steps for an early layer optimized as a texture.
        steps: overrides ``settings.steps``; either is capped by $CONVLENS_MAX_STEPS.
        seed: with the target, seeds each image; the same seed gives the same image.
        preprocess: a PREPROCESS_MODES key; defaults to the LoadedModel's, else 'unit'.
        value_range: an explicit (low, high) input range instead of ``preprocess``.
        images_per_target: k images per target, pushed apart by ``diversity``.
        diversity: weight of the Diversity term between the images of one target (k > 1).
        on_progress: called as ``on_progress(step, total, preview)`` after every chunk of
            ``settings.progress_every`` steps and at the end, in the caller's thread; ``preview``
            is the current batch (N, H, W, C) in the model's range, or None when ``preview=False``.
        preview: whether the callback gets the images.

    Returns:
        FeatureVis with the images, per-step loss terms and the objective reached per image.

    Raises:
        ValueError: a target out of range, bad settings or CONVLENS_MAX_STEPS.
        LayerNotFoundError: the objective names a layer the model does not have.
    """
    keras_model, mode = model_and_mode(model, preprocess)
    spec = graph.input_spec(keras_model)
    settings = settings or layer_settings(keras_model, objective)
    h, w, c = spec.height or settings.image_size, spec.width or settings.image_size, spec.channels
    fitted = fitted_size(keras_model, objective, h, w) if settings.fit_receptive_field else None
    if fitted is not None:
        h, w, stride = fitted
        settings = texture_settings(settings, stride, h)
    total = capped_steps(settings.steps if steps is None else steps)
    base = [int(t) for t in targets]
    if not base:
        raise ValueError("No targets: give at least one filter or class.")
    if images_per_target < 1:
        raise ValueError(f"images_per_target must be >= 1, got {images_per_target}.")
    if diversity and images_per_target < 2:
        raise ValueError("diversity needs images_per_target >= 2 (it pushes images of one target apart).")
    seeds = [(int(seed), t, k) for t in base for k in range(images_per_target)]
    all_targets = np.array([s[1] for s in seeds])
    groups = np.repeat(np.arange(len(base)), images_per_target)
    in_range = input_range(c, mode, value_range)

    engine = _engine(keras_model, objective, settings, len(seeds), (h, w, c), in_range, float(diversity))
    for what, limit in engine.limits.items():
        bad = [t for t in base if not 0 <= t < limit]
        if bad:
            raise ValueError(f"Targets {bad[:5]} are out of range: there are {limit} {what} (0..{limit - 1}).")
    initial = np.stack([settings.param.init(np.random.default_rng([*s, 0]), h, w, c) for s in seeds])
    draws = _draws(settings, seeds, total)
    names = engine.term_names()
    history = []
    with engine.lock:
        engine.reset(initial, all_targets, groups, total)
        start = engine.evaluate().numpy()
        done = 0
        while done < total:
            n = min(max(1, settings.progress_every), total - done)
            history.append(engine.chunk(tf.constant(draws[done : done + n])).numpy())
            done += n
            if on_progress is not None:
                on_progress(done, total, engine.images().numpy() if preview else None)
        images = engine.images().numpy()
        reached = engine.evaluate().numpy()
        responsive = engine.responsive.numpy()
    stacked = np.concatenate(history, axis=0) if history else np.zeros((0, len(names), len(seeds)), np.float32)
    return FeatureVis(
        images_nhwc=images.astype(np.float32),
        targets=tuple(int(t) for t in all_targets),
        loss_terms={name: stacked[:, i, :] for i, name in enumerate(names)},
        start=start.astype(np.float32),
        reached=reached.astype(np.float32),
        responsive=responsive.astype(bool),
        steps=total,
        seed=int(seed),
        settings=settings,
        input_range=in_range,
    )


def visualize_filters(
    model: Any, layer: str, filters: Iterable[int], *, steps: int | None = None, seed: int = 0, **kwargs: Any
) -> np.ndarray:
    """The images (N, H, W, C), in the model's input range, that most excite each filter of ``layer``.

    All filters are optimized together as one batch. Keyword arguments are those of ``optimize``
    (settings, preprocess, value_range, images_per_target, diversity, on_progress, preview); use
    ``optimize(model, Channel(layer), filters)`` for the loss terms and activations reached.

    Example:
        >>> visualize_filters(models.open_bundled("mnist_cnn"), "conv2", range(64)).shape
        (64, 28, 28, 1)
    """
    return optimize(model, Channel(layer), filters, steps=steps, seed=seed, **kwargs).images_nhwc


def visualize_classes(
    model: Any, classes: Iterable[int], *, steps: int | None = None, seed: int = 0, **kwargs: Any
) -> np.ndarray:
    """Class model visualization: images (N, H, W, C) that maximize each class's pre-softmax score."""
    return optimize(model, ClassLogit(), classes, steps=steps, seed=seed, **kwargs).images_nhwc


def real_activation(
    model: Any, layer: str, images_nhwc: np.ndarray, *, border: int | None = None, batch_size: int = 128
) -> np.ndarray:
    """Mean activation (n_filters,) of each filter of ``layer`` over real images, border excluded.

    The same measure as ``FeatureVis.reached`` for ``Channel(layer)``, so a gallery can show
    "reached vs real". A filter whose value is 0 here and in ``reached`` is dead.

    Args:
        model: keras.Model or LoadedModel.
        layer: layer path or unique name.
        images_nhwc: real images (N, H, W, C), already in the model's input range.
    """
    keras_model, _ = model_and_mode(model, None)
    path = graph.resolve_layer(keras_model, layer)
    forward = tf.function(slicing.layers_model(keras_model, (path,), False))
    total, count = None, 0
    x = np.asarray(images_nhwc, np.float32)
    for i in range(0, len(x), batch_size):
        acts = forward(tf.constant(x[i : i + batch_size]))[0][path]
        part = tf.reduce_sum(tf.reduce_mean(crop_border(acts, border), axis=[1, 2]), axis=0).numpy()
        total = part if total is None else total + part
        count += len(x[i : i + batch_size])
    if total is None:
        raise ValueError("real_activation needs at least one image.")
    return (total / count).astype(np.float32)
