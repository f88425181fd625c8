"""``method``, the factory that defines an attribution method, and the one normalization every method ends in.

A method file holds three things and hands them to ``method``: its raw batched computation
``maps(model, batch_nhwc, target, layer, **options) -> (N, H, W)`` (built from the steps in
``engines``), its display rule (``DISPLAYS``: 'absolute', 'relu' or 'signed') and its cost as a
function of its options (``cost.Cost``). The factory builds the normalized public function and the
batch form from them, with progress and cancel (``progress``); ``normalize_map`` is the one
normalization every public method ends in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from vizcore.attribution.cost import Cost, CostFn
from vizcore.attribution.progress import Progress, progress_to
from vizcore.models.batches import as_batch, as_image

Method = Callable[..., np.ndarray]  # (model, image_hwc, *, target=None, layer=None, **options) -> heatmap_hw
BatchMethod = Callable[..., np.ndarray]  # (model, batch_nhwc, *, target=None, layer=None, **options) -> raw (N, H, W)
Maps = Callable[..., np.ndarray]  # (model, batch_nhwc, target, layer, **options) -> raw maps (N, H, W); the computation
EPS = 1e-6  # relative: a map whose span is below EPS * its magnitude is treated as constant


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


# How a raw map is shown before the shared normalization.
DISPLAYS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = MappingProxyType(
    {
        "absolute": np.abs,  # magnitude: evidence for and against alike (Gradient x Input, Integrated Gradients)
        "relu": lambda m: np.maximum(m, 0.0),  # evidence for the class only (CAMs, Occlusion)
        "signed": lambda m: m,  # as it is: the most negative value becomes 0 after normalization
    }
)


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
