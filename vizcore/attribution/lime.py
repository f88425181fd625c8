"""LIME (Ribeiro et al., 2016): a weighted linear model of the class probability over superpixels.

The image is cut into superpixels (SLIC, or quickshift with LIME's settings). Each sample switches
a random subset of them off (filled with 0, or with their mean colour) and runs through the model
in batches; a ridge regression of the target's probability on the on/off vectors, weighted by an
exponential kernel of the cosine distance to the all-on vector, gives one weight per superpixel.
The raw map paints each superpixel with its weight; the heatmap shows the positive part.

LIME's own defaults are kept: kernel width 0.25, Ridge(alpha=1) with an intercept, the first sample
is the image itself, samples drawn with NumPy's ``RandomState(seed)`` exactly as ``lime`` draws them.
The ridge is solved here in NumPy (no scikit-learn at run time). Two defaults differ, both measured
on 40 held-out shapes images (pointing game / deletion AUC; random map 0.25 / 0.72):

* superpixels: SLIC (about 50) rather than LIME's quickshift, which at the sizes this app mostly
  shows (28-64 px) leaves a digit with 5-8 superpixels and leaks into noisy backgrounds
  (quickshift 0.38 / 0.18 against SLIC 1.00 / 0.19, both with fill 0);
* a hidden superpixel shows 0 (like Occlusion's fill) rather than its mean colour (LIME's
  ``hide_color=None``): the mean of a flat-coloured part is that same colour, so hiding it changes
  nothing (mean 0.60 / 0.58 against 0 1.00 / 0.19, both with SLIC).

Example:
    >>> fit = explain(model, x_hwc, samples=500)
    >>> v = view(fit, k=5)  # v.mask_hw: +1 on the 5 most positive superpixels, -1 on the 5 most negative
    >>> v.samples, v.r2 <= 1.0
    (500, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from skimage.color import gray2rgb
from skimage.segmentation import find_boundaries, quickshift, slic

from vizcore.attribution.cost import Cost
from vizcore.attribution.engines import batch_for, engine, resolve_target, scores
from vizcore.attribution.factory import Option, method, normalize_map
from vizcore.errors import AttributionError
from vizcore.models import heads
from vizcore.models.batches import as_image

SEGMENTATIONS = ("slic", "quickshift")
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}  # LIME's, for images of 224 px and more
QUICKSHIFT_SIDE = 224  # below this side, kernel_size shrinks in proportion (at least 1)
SLIC_COMPACTNESS = 20.0  # on the image scaled to [0, 1] and converted to Lab
KERNEL_WIDTH = 0.25
RIDGE_ALPHA = 1.0
DEFAULT_SAMPLES = 300
MAX_SAMPLES = 2000

Progress = Callable[[int, int], None]  # (samples done, samples in all)


# --------------------------------------------------------------------------- superpixels


def _unit_rgb(image_hwc: np.ndarray) -> np.ndarray:
    """The image as float64 RGB in [0, 1] (min-max; grey or other channel counts made RGB), for segmentation."""
    x = np.asarray(image_hwc, np.float64)
    x = x[..., 0] if x.shape[-1] == 1 else (x if x.shape[-1] == 3 else x.mean(axis=-1))
    x = (x - x.min()) / np.ptp(x) if np.ptp(x) > 0 else np.zeros_like(x)
    return gray2rgb(x) if x.ndim == 2 else x


def segment(image_hwc: np.ndarray, segmentation: str = "slic", *, superpixels: int = 50, seed: int = 0) -> np.ndarray:
    """Superpixel labels of one image, int32 (H, W), numbered 0..S-1.

    Args:
        image_hwc: float HxWxC in any value range (scaled to [0, 1] for the segmentation only).
        segmentation: 'slic' (about ``superpixels`` regions) or 'quickshift' (LIME's kernel_size=4,
            max_dist=200, ratio=0.2; the kernel shrinks below 224 px).
        superpixels: SLIC's ``n_segments``.
        seed: quickshift's tie-breaking noise.
    """
    rgb = _unit_rgb(image_hwc)
    if segmentation == "quickshift":
        side = min(rgb.shape[:2])
        kernel = max(1.0, round(QUICKSHIFT["kernel_size"] * min(1.0, side / QUICKSHIFT_SIDE)))
        labels = quickshift(
            rgb, kernel_size=kernel, max_dist=QUICKSHIFT["max_dist"], ratio=QUICKSHIFT["ratio"], rng=seed
        )
    elif segmentation == "slic":
        if superpixels < 1:
            raise AttributionError(f"superpixels must be >= 1, got {superpixels}.")
        labels = slic(rgb, n_segments=int(superpixels), compactness=SLIC_COMPACTNESS, start_label=0)
    else:
        raise AttributionError(f"segmentation must be one of {SEGMENTATIONS}, got '{segmentation}'.")
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


def hidden_image(image_hwc: np.ndarray, segments_hw: np.ndarray, fill: float | str = 0.0) -> np.ndarray:
    """What a switched-off superpixel shows: the value ``fill``, or each superpixel's mean colour ('mean', LIME's)."""
    x = np.asarray(image_hwc, np.float32)
    if isinstance(fill, str):
        if fill != "mean":
            raise AttributionError(f"fill must be a number or 'mean', got '{fill}'.")
        flat = segments_hw.ravel()
        counts = np.bincount(flat)
        means = np.stack(
            [np.bincount(flat, weights=x[..., c].ravel().astype(np.float64)) / counts for c in range(x.shape[-1])],
            axis=-1,
        )
        return means[segments_hw].astype(np.float32)
    return np.full_like(x, np.float32(fill))


def on_off_samples(superpixels: int, samples: int, seed: int = 0) -> np.ndarray:
    """Random on/off vectors, int64 (samples, S); row 0 all on (the image itself). The same draw as ``lime``."""
    data = np.random.RandomState(seed).randint(0, 2, samples * superpixels).reshape((samples, superpixels))
    data[0, :] = 1
    return data


def perturbed(image_hwc: np.ndarray, hidden_hwc: np.ndarray, segments_hw: np.ndarray, on_ns: np.ndarray) -> np.ndarray:
    """The images of a block of samples, float32 (N, H, W, C): superpixels off show ``hidden_hwc``."""
    keep_nhw = on_ns[:, segments_hw].astype(bool)
    return np.where(keep_nhw[..., None], image_hwc[None], hidden_hwc[None]).astype(np.float32)


# --------------------------------------------------------------------------- the weighted linear fit


def cosine_distances(on_ns: np.ndarray) -> np.ndarray:
    """Cosine distance of every on/off vector to the all-on vector (N,); an all-off vector is at 1."""
    x = np.asarray(on_ns, np.float64)
    norms = np.linalg.norm(x, axis=1) * np.sqrt(x.shape[1])
    cos = np.divide(x.sum(axis=1), norms, out=np.zeros(len(x)), where=norms > 0)
    return np.clip(1.0 - cos, 0.0, 2.0)


def kernel(distances: np.ndarray, width: float = KERNEL_WIDTH) -> np.ndarray:
    """LIME's exponential kernel: sqrt(exp(-d^2 / width^2))."""
    return np.sqrt(np.exp(-(np.asarray(distances, np.float64) ** 2) / width**2))


@dataclass(frozen=True, eq=False)
class Ridge:
    """A fitted weighted ridge regression ``y ~ x @ coef + intercept``."""

    coef: np.ndarray  # (S,)
    intercept: float
    r2: float  # weighted R^2 on the data it was fitted on


def weighted_ridge(x_ns: np.ndarray, y_n: np.ndarray, weights_n: np.ndarray, alpha: float = RIDGE_ALPHA) -> Ridge:
    """Minimise sum_i w_i (y_i - x_i.coef - b)^2 + alpha |coef|^2 (the intercept is not penalised).

    The same fit and score as scikit-learn's ``Ridge(alpha).fit(x, y, sample_weight=w)``.
    """
    x, y, w = (np.asarray(a, np.float64) for a in (x_ns, y_n, weights_n))
    x_mean, y_mean = w @ x / w.sum(), w @ y / w.sum()
    xc, yc = x - x_mean, y - y_mean
    coef = np.linalg.solve(xc.T @ (w[:, None] * xc) + alpha * np.eye(x.shape[1]), xc.T @ (w * yc))
    intercept = float(y_mean - x_mean @ coef)
    residual, total = float(w @ (y - x @ coef - intercept) ** 2), float(w @ (y - y_mean) ** 2)
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return Ridge(coef, intercept, r2)


# --------------------------------------------------------------------------- one explanation


@dataclass(frozen=True, eq=False)
class LimeFit:
    """Everything one LIME run made: superpixels, samples, probabilities and the fit."""

    segments_hw: np.ndarray  # int32 (H, W), superpixels 0..S-1
    on_ns: np.ndarray  # (samples, S) 1 = superpixel shown; row 0 all on
    probabilities: np.ndarray  # (samples,) the target's probability for each sample
    distances: np.ndarray  # (samples,) cosine distance to the all-on vector
    weights: np.ndarray  # (S,) the ridge coefficients, one per superpixel
    intercept: float
    r2: float
    target: int

    @property
    def samples(self) -> int:
        return len(self.on_ns)

    @property
    def raw_hw(self) -> np.ndarray:
        """Each superpixel painted with its weight, float32 (H, W), signed."""
        return self.weights[self.segments_hw].astype(np.float32)

    @property
    def heatmap_hw(self) -> np.ndarray:
        """The heatmap METHODS["LIME"] returns: the positive weights, normalized to [0, 1]."""
        return normalize_map(np.maximum(self.raw_hw, 0.0))


def explain(
    model: keras.Model,
    image: np.ndarray,
    *,
    target: int | None = None,
    samples: int = DEFAULT_SAMPLES,
    segmentation: str = "slic",
    superpixels: int = 50,
    fill: float | str = 0.0,
    seed: int = 0,
    kernel_width: float = KERNEL_WIDTH,
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> LimeFit:
    """Run LIME on one image: ``samples`` forward passes in batches of ``batch_size``, then the fit.

    ``batch_size`` None: ``engines.batch_for(model)``.

    ``on_progress(done, total)`` is called after every batch. ``target=None`` explains the top class.
    """
    if samples < 2:
        raise AttributionError(f"LIME needs at least 2 samples, got {samples}.")
    x = as_image(model, image)
    t = resolve_target(model, x, target)
    segments_hw = segment(x, segmentation, superpixels=superpixels, seed=seed)
    hidden = hidden_image(x, segments_hw, fill)
    on_ns = on_off_samples(int(segments_hw.max()) + 1, samples, seed)
    probs, head = [], engine(model, "forward").head
    batch_size = batch_size or batch_for(model)
    for start in range(0, samples, batch_size):  # build and score one batch of perturbed images at a time
        block = perturbed(x, hidden, segments_hw, on_ns[start : start + batch_size])
        probs.append(heads.probabilities(scores(model, block, batch_size=batch_size), head)[:, t])
        if on_progress is not None:
            on_progress(min(start + batch_size, samples), samples)
    probs_n = np.concatenate(probs)
    distances = cosine_distances(on_ns)
    fit = weighted_ridge(on_ns, probs_n, kernel(distances, kernel_width))
    return LimeFit(segments_hw, on_ns, probs_n, distances, fit.coef, fit.intercept, fit.r2, t)


# --------------------------------------------------------------------------- the method and its view


def lime_maps(
    model: keras.Model,
    batch_nhwc: np.ndarray,
    target: int | None,
    layer: str | None,
    *,
    samples: int = DEFAULT_SAMPLES,
    segmentation: str = "slic",
    superpixels: int = 50,
    fill: float | str = 0.0,
    seed: int = 0,
    kernel_width: float = KERNEL_WIDTH,
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> np.ndarray:
    """Signed raw maps, float32 (N, H, W): each superpixel's LIME weight. Progress counts every image's samples."""
    total = len(batch_nhwc) * samples
    maps = []
    for i, x in enumerate(batch_nhwc):
        sink = None if on_progress is None else (lambda done, _, i=i: on_progress(i * samples + done, total))
        maps.append(
            explain(
                model,
                x,
                target=target,
                samples=samples,
                segmentation=segmentation,
                superpixels=superpixels,
                fill=fill,
                seed=seed,
                kernel_width=kernel_width,
                batch_size=batch_size,
                on_progress=sink,
            ).raw_hw
        )
    return np.stack(maps)


LIME = method(
    "lime",
    lime_maps,
    display="relu",
    uses_layer=False,
    cost=lambda model, size_hw, layer, *, samples, **options: Cost(int(samples)),
    options=(
        Option("samples", "int", DEFAULT_SAMPLES, "perturbed images, one forward pass each", min=10, max=MAX_SAMPLES),
        Option(
            "segmentation",
            "choice",
            "slic",
            "superpixels: SLIC, or quickshift with LIME's settings",
            choices=SEGMENTATIONS,
        ),
        Option("superpixels", "int", 50, "SLIC: about how many superpixels (quickshift ignores it)", min=2, max=500),
        Option(
            "fill",
            "choice",
            0.0,
            "what a hidden superpixel shows: 0, or its mean colour (LIME's default)",
            choices=(0.0, "mean"),
        ),
        Option("seed", "int", 0, "seed of the samples (and of quickshift)", min=0, max=10_000),
    ),
    about="a weighted linear fit over superpixels switched on and off; one forward pass per sample",
)
lime = LIME.fn


@dataclass(frozen=True, eq=False)
class LimeView:
    """The top-k superpixels of a fit, for a page."""

    mask_hw: np.ndarray  # int8 (H, W): +1 on the k most positive superpixels, -1 on the k most negative, 0 elsewhere
    segments_hw: np.ndarray
    r2: float
    samples: int
    positive: tuple[int, ...]  # superpixel ids, strongest first
    negative: tuple[int, ...]


def view(fit: LimeFit, k: int = 5) -> LimeView:
    """The ``k`` strongest positive and ``k`` strongest negative superpixels of a fit as a mask."""
    order = np.argsort(-fit.weights, kind="stable")
    positive = tuple(int(s) for s in order if fit.weights[s] > 0)[: max(0, k)]
    negative = tuple(int(s) for s in order[::-1] if fit.weights[s] < 0)[: max(0, k)]
    signs = np.zeros(len(fit.weights), np.int8)
    signs[list(positive)] = 1
    signs[list(negative)] = -1
    return LimeView(signs[fit.segments_hw], fit.segments_hw, fit.r2, fit.samples, positive, negative)


def mask_image(display_hwc: np.ndarray, lime_view: LimeView) -> np.ndarray:
    """The image with the positive superpixels tinted green, the negative red, the rest dimmed; uint8 RGB.

    Each shown superpixel is outlined in yellow. ``display_hwc`` is uint8 (H, W, 1 or 3), any size.
    """
    rgb = np.asarray(display_hwc, np.float64)
    rgb = rgb[..., None] if rgb.ndim == 2 else rgb
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb
    h, w = rgb.shape[:2]
    rows = np.arange(h) * lime_view.mask_hw.shape[0] // h  # nearest neighbour when the display size differs
    cols = np.arange(w) * lime_view.mask_hw.shape[1] // w
    mask, segments = lime_view.mask_hw[np.ix_(rows, cols)], lime_view.segments_hw[np.ix_(rows, cols)]
    out = rgb * 0.35
    for sign, colour in ((1, (40, 200, 60)), (-1, (220, 40, 40))):
        out = np.where((mask == sign)[..., None], 0.5 * rgb + 0.5 * np.array(colour, np.float64), out)
    out[find_boundaries(np.where(mask != 0, segments + 1, 0), mode="inner")] = (255, 220, 0)
    return np.clip(out, 0, 255).round().astype(np.uint8)
