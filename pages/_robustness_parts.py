"""Pieces of the Robustness page: costly work on demand, the attack on one image, the dataset run, links, downloads."""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from pages import _attribution_parts, _cache, _layers, _links
from vizcore import attribution, cache, models
from vizcore import robustness as rb
from vizcore.data import datasets, images
from vizcore.inspect import activations, evaluation
from vizcore.precompute import store as precomputed
from vizcore.present import render
from vizcore.robustness import attacks

ATTACKS = {"fgsm": "FGSM", "pgd": "PGD", "pgd_target": "PGD targeted"}
SOURCES = {
    "mnist_sample": "Bundled MNIST digits",
    "shapes": "Generated shapes",
    "photos": "Bundled colour photos",
    **{f"keras:{n}": f"keras.datasets: {i.title}" for n, i in datasets.KERAS_DATASETS.items()},
}
MAX_EPS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)  # the dataset tab's largest ε
SIDE = 224  # pixels of each image shown
TOP_FRACTION = 0.1  # the top-k overlap of two maps: their top 10% pixels


def costly(
    key: str,
    inputs: Hashable,
    what: str,
    cost: attribution.Cost,
    loaded: models.LoadedModel,
    size_hw,
    compute: Callable[[attribution.Progress | None], object],
    *,
    attack: bool = False,
):
    """``compute(on_progress)`` live when its estimate is short, else behind Run with its cost, progress and Cancel,
    kept until ``inputs`` change: the page's one way to run costly work (``_attribution_parts.on_demand``)."""
    seconds = _attribution_parts.estimate(loaded, cost, tuple(size_hw))
    said = str(cost)
    if attack and not cache.cached_count(loaded.model, "robustness.engine"):
        said += " (and, this first time, compiling the model's gradient: seconds for a 224 px network)"
    return _attribution_parts.on_demand(key, inputs, what, said, seconds, compute)


def levels(eps: float) -> str:
    """ε in words: the change of a 0..255 pixel."""
    return f"±{eps * 255:.1f} of 255 levels per pixel value"


def attack_one(
    loaded: models.LoadedModel,
    image_hwc: np.ndarray,
    attack: str,
    eps: float,
    steps: int,
    target: int | None,
    on_progress=None,
) -> np.ndarray:
    """The adversarial twin of one image (H, W, C), in the model's range."""
    x = image_hwc[None]
    if attack == "fgsm":
        return rb.fgsm(loaded.model, x, eps=eps, input_range=loaded.preprocess, on_progress=on_progress)[0]
    return rb.pgd(
        loaded.model,
        x,
        eps=eps,
        steps=steps,
        target=target if attack == "pgd_target" else None,
        input_range=loaded.preprocess,
        on_progress=on_progress,
    )[0]


def display(loaded: models.LoadedModel, x_hwc: np.ndarray) -> np.ndarray:
    """An image of the model's range as uint8 RGB (or grey) for the screen."""
    return images.deprocess(x_hwc, loaded.preprocess)


def big(image_hwc: np.ndarray, side: int = SIDE) -> np.ndarray:
    """An image scaled up (nearest) to about ``side`` pixels for display."""
    return render.upscale(render.to_rgb(image_hwc), max(1, side // image_hwc.shape[0]))


def layer_links(loaded: models.LoadedModel, layer: str, channel: int, where) -> None:
    """Open a channel on Activations (a layer with maps), and on Filters the convolution at or before the layer."""
    name = _layers.label_of(loaded)
    order = list(_cache.activation_order(loaded))
    left, right = where.columns(2)
    if len(activations.activation_shapes(loaded.model).get(layer, ())) == 3:  # (h, w, c): feature maps
        _links.link(
            left,
            "pages/activations.py",
            f"channel {channel} of {layer}",
            {"act.layer": name(layer), "act.channel": channel},
        )
    convs = set(_cache.summary(loaded).conv_layers)
    before = [p for p in order[: order.index(layer) + 1] if p in convs] if layer in order else []
    if before:
        conv = before[-1]
        _links.link(right, "pages/filters.py", f"filter {channel} of {conv}", {"fv.layer": name(conv)})


def busiest(loaded: models.LoadedModel, changes) -> int:
    """The index of the layer with feature maps that moved most (relative L2), else 0."""
    shapes = activations.activation_shapes(loaded.model)
    scored = [
        (c.relative, i) for i, c in enumerate(changes) if len(shapes.get(c.layer, ())) == 3 and np.isfinite(c.relative)
    ]
    return max(scored)[1] if scored else 0


@dataclass(frozen=True, eq=False)
class DatasetRun:
    """What the dataset tab shows: accuracy at each ε, each image's minimal ε, the most fragile twins."""

    epsilons: np.ndarray
    accuracy: np.ndarray
    minimal: np.ndarray  # (N,) ε per image, inf: none up to the largest ε
    fragile: np.ndarray  # indices of the most fragile images, most fragile first
    twins: np.ndarray  # their adversarial twins at their minimal ε, in the model's range
    labelled: bool  # True: the dataset's labels; False: the model's own predictions


def dataset_images(
    loaded: models.LoadedModel, source: str, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x in the model's range, uint8 display, labels or None) of ``count`` images of a source, evenly spaced."""
    ds = precomputed.sample_photos() if source == "photos" else _cache.dataset(source.removeprefix("keras:"), 5000)
    pick = precomputed.pick(len(ds), ds.image_shape, loaded.spec, count)
    prepared = evaluation.prepare(loaded, np.asarray(ds.x_nhwc)[pick])
    names = list(loaded.class_names)
    labels = (
        np.array([names.index(c) for c in ds.class_names])[ds.y[pick]]
        if source != "photos" and set(ds.class_names) <= set(names)
        else None
    )
    return prepared.x_nhwc, prepared.display_nhwc, labels


def run_dataset(
    loaded: models.LoadedModel,
    x: np.ndarray,
    y: np.ndarray | None,
    attack: str,
    epsilons: np.ndarray,
    steps: int,
    on_progress=None,
    fragile: int = 6,
) -> DatasetRun:
    """The accuracy curve, each image's minimal ε (a grid of the same ε, then 4 halvings) and the fragile twins."""
    pgd = attack == "pgd"
    opts = {"steps": steps} if pgd else {}
    per = steps if pgd else 1  # gradients per image and ε
    swept = len(x) * (per * len(epsilons) if pgd else 1)  # FGSM: one gradient per image for every ε
    total = swept + len(x) * per * (len(epsilons) - 1 + 4)

    def part(done: int):
        return None if on_progress is None else (lambda d, _t: on_progress(done + d, total))

    acc = rb.sweep(
        loaded.model, x, y, epsilons, attack=attack, input_range=loaded.preprocess, on_progress=part(0), **opts
    )
    minimal = rb.minimal_epsilon(
        loaded.model,
        x,
        y,
        attack=attack,
        max_eps=float(epsilons[-1]),
        grid=len(epsilons) - 1,
        iterations=4,
        input_range=loaded.preprocess,
        on_progress=part(swept),
        **opts,
    )
    movable = np.flatnonzero((minimal > 0) & np.isfinite(minimal))  # at ε 0 there is no twin to show
    pick = movable[np.argsort(minimal[movable], kind="stable")[:fragile]].astype(np.int64)
    twins = x[:0]
    if len(pick):  # each at its own minimal ε, the start and steps minimal_epsilon used
        labels = (rb.predict(loaded.model, x[pick]) if y is None else np.asarray(y)[pick]).astype(np.int32)
        eps = minimal[pick].astype(np.float32)
        twins = attacks.perturb(
            loaded.model,
            x[pick],
            labels,
            eps,
            bounds=rb.bounds(x.shape[-1], loaded.preprocess),
            steps=steps if pgd else None,
            step_n=attacks.MADRY_STEP * eps / steps if pgd else None,
            noise_nhwc=attacks.start_noise(x.shape, 0)[pick] if pgd else None,
        )
    return DatasetRun(np.asarray(epsilons), acc, minimal, pick, twins, y is not None)


def csv_bytes(header: tuple[str, ...], rows) -> bytes:
    """A small CSV file."""
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    for row in rows:
        buf.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n")
    return buf.getvalue().encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()
