"""CRAFT (Fel et al., CVPR 2023): the concepts a layer uses for a class, their importance, crops and heatmaps.

1. Crops of every image of the class (a grid covering the image, side fitted to the layer's receptive
   field, starts at most 0.8 of the side apart), each resized to the input size (bicubic) and run
   to the layer; activations averaged over positions: one row per crop.
2. Non-negative factorization of those rows, A ~ U W (``nmf``): W's rows are the concepts, U says
   how much of each a crop holds.
3. Importance: on each image, the concepts' coefficients at every position of the layer are
   masked by a quasi-Monte-Carlo design, put back into the layer (sum_r m_r u_r w_r) and run
   through the rest of the network; the Jansen estimator gives each concept's Sobol total-order
   index for the class score (``sobol``), averaged over the images.

Every step runs in batches through compiled functions (``split``); progress and cancel go through
``on_progress(done, total) -> True to stop`` (``AttributionCancelled``, as every costly method).

Example:
    >>> c = craft(model, "pool2", triangles_nhwc, target=2, n_concepts=10)
    >>> best = int(c.order[0]); c.importances[best], c.crops[best][0]   # (image index, (x0, y0, x1, y1))
    (0.61, (17, (24, 36, 40, 52)))
    >>> c.heatmaps(triangles_nhwc[:4]).shape
    (4, 10, 64, 64)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from vizcore.attribution.cost import pass_seconds
from vizcore.attribution.engines import forward
from vizcore.attribution.progress import Progress, advance, progress_to
from vizcore.cache import per_model
from vizcore.concepts import nmf, sobol, split
from vizcore.errors import ConceptError
from vizcore.models.batches import as_batch

CROPS_KEPT = 16  # most typical crops kept per concept
Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive


@dataclass(frozen=True, eq=False)
class Craft:
    """The concepts of one layer for one class.

    Attributes:
        layer: the layer's path.
        target: the class.
        patch: the crops' side in input pixels.
        importances: float64 (r,) Sobol total-order index of each concept for the class score.
        crops: per concept, (image index, box) of its most typical crops, most typical first.
        bank_w: float32 (r, k) the concepts over the layer's channels (W).
        crops_u: float32 (n_crops, r) each crop's coefficients (U): a crop's pooled activations ~ scale * U W.
        crop_image: int64 (n_crops,) the image of each crop; ``crop_box`` int64 (n_crops, 4) its box.
        error: relative reconstruction error of the crops' activations, ||A - U W|| / ||A||.
    """

    layer: str
    target: int
    patch: int
    importances: np.ndarray
    crops: tuple[tuple[tuple[int, Box], ...], ...]
    bank_w: np.ndarray
    crops_u: np.ndarray
    crop_image: np.ndarray
    crop_box: np.ndarray
    error: float
    factorization: nmf.Factorization
    model_ref: Callable[[], keras.Model | None]  # a weak reference: a result never keeps a dropped model alive

    @property
    def n_concepts(self) -> int:
        return len(self.importances)

    @property
    def order(self) -> np.ndarray:
        """Concept indices, most important first."""
        return np.argsort(-self.importances, kind="stable")

    def channels(self, concept: int, k: int = 8) -> np.ndarray:
        """The ``k`` channels of the layer that weigh most in a concept (largest W first)."""
        return np.argsort(-self.bank_w[concept], kind="stable")[:k]

    def _model(self) -> keras.Model:
        model = self.model_ref()
        if model is None:
            raise ConceptError("The model these concepts were found on is gone; run CRAFT again.")
        return model

    def presence(self, x_nhwc: np.ndarray) -> np.ndarray:
        """float32 (N, h, w, r): each concept's coefficient at every position of the layer."""
        model = self._model()
        acts = forward(model, as_batch(model, x_nhwc), self.layer)[0]
        return self.factorization.transform(acts.reshape(-1, acts.shape[-1])).reshape(*acts.shape[:3], -1)

    def heatmaps(self, x_nhwc: np.ndarray) -> np.ndarray:
        """float32 (N, r, H, W): each concept's coefficient at every position, resized to the input (bilinear)."""
        u = self.presence(x_nhwc)
        size = np.asarray(x_nhwc).shape[1:3]
        return np.transpose(tf.image.resize(u, size, method="bilinear").numpy(), (0, 3, 1, 2))


@dataclass(frozen=True)
class Cost:
    """What a CRAFT run puts through the model: crops and images (whole passes), masked layers (the part after it)."""

    crops: int
    images: int
    masked: int
    layer: str

    def __str__(self) -> str:
        return (
            f"{self.crops:,} crops and {self.images:,} images through the model, "
            f"{self.masked:,} masked copies of {self.layer} through the layers after it"
        )

    @property
    def steps(self) -> int:
        return self.crops + self.images + self.masked

    def seconds(self, per_pass: float, per_masked: float) -> float:
        return (self.crops + self.images) * per_pass + self.masked * per_masked


def _patch(model: keras.Model, layer: str, image_hw: tuple[int, int], patch: int | None) -> int:
    if patch is None:
        return split.fitted_patch(model, layer, image_hw)
    if not 2 <= int(patch) <= min(image_hw):
        raise ConceptError(f"patch must be between 2 and {min(image_hw)} pixels (the image side), got {patch}.")
    return int(patch)


def cost(
    model: keras.Model,
    layer: str,
    n_images: int,
    image_hw: tuple[int, int],
    *,
    n_concepts: int = 10,
    patch: int | None = None,
    nb_design: int = sobol.NB_DESIGN,
) -> Cost:
    """What ``craft`` with these arguments costs."""
    halves = split.split(model, layer)
    side = _patch(model, halves.layer, image_hw, patch)
    crops = n_images * len(split.crop_boxes(image_hw, side))
    return Cost(crops, n_images, n_images * nb_design * (n_concepts + 1), halves.layer)


def masked_seconds(model: keras.Model, layer: str) -> float:
    """Seconds of one masked evaluation of the layers after ``layer`` (measured once per model and layer)."""
    halves = split.split(model, layer)
    shape = tuple(d or 8 for d in halves.layer_shape[1:])

    def measure() -> float:
        a = tf.zeros((64, *shape), tf.float32)
        halves.h(a, training=False)
        start = time.perf_counter()
        halves.h(a, training=False)
        return (time.perf_counter() - start) / 64

    return per_model(model, ("concepts.masked_seconds", halves.layer), measure, limit=split.SPLITS_KEPT)


def estimate_seconds(model: keras.Model, c: Cost, image_hw: tuple[int, int]) -> float:
    """An estimate of a run's seconds on this machine from measured passes."""
    return c.seconds(pass_seconds(model, image_hw), masked_seconds(model, c.layer))


def _crop_activations(model: keras.Model, layer: str, x: np.ndarray, patch: int, per_image: int) -> np.ndarray:
    fn = split.crop_function(model, layer, x.shape[1:], patch)
    step = max(1, split.CROP_BATCH // per_image)
    parts = []
    for i in range(0, len(x), step):
        parts.append(np.asarray(fn(tf.constant(x[i : i + step]))))
        advance(len(x[i : i + step]) * per_image)
    return np.concatenate(parts)


def concept_importances(
    model: keras.Model,
    layer: str,
    u_nhwr: np.ndarray,
    w_rk: np.ndarray,
    target: int,
    *,
    nb_design: int = sobol.NB_DESIGN,
) -> np.ndarray:
    """Sobol total-order index of each concept for the class score, per image (N, r).

    Image i's coefficients ``u_nhwr[i]`` (at every position of the layer) are masked concept by
    concept, m_r * u_r, the layer is rebuilt as sum_r m_r u_r w_r and run through the rest of the
    network; the masks follow the replicated design of ``sobol.design``.
    """
    column = split.split(model, layer).column(target)
    n, h, w, r = u_nhwr.shape
    a, c = sobol.design(r, nb_design)
    masks = np.concatenate([a, c.reshape(-1, r)])  # (M, r), M = nb_design * (r + 1); B is never evaluated
    fn = split.masked_function(model, layer)
    rows = max(1, split.MASKED_BYTES // (h * w * w_rk.shape[1] * 4))  # masked activations per call
    wt, col = tf.constant(w_rk), tf.constant(column, tf.int32)
    scores = np.empty((n, len(masks)), np.float32)
    if rows >= len(masks):  # several images with every mask
        step = rows // len(masks)
        mt = tf.constant(masks)
        for i in range(0, n, step):
            scores[i : i + step] = fn(tf.constant(u_nhwr[i : i + step]), mt, wt, col)
            advance(len(u_nhwr[i : i + step]) * len(masks))
    else:  # one image, the masks in chunks
        for i in range(n):
            ui = tf.constant(u_nhwr[i : i + 1])
            for j in range(0, len(masks), rows):
                scores[i, j : j + rows] = fn(ui, tf.constant(masks[j : j + rows]), wt, col)[0]
                advance(len(masks[j : j + rows]))
    return sobol.jansen_total(scores[:, :nb_design], scores[:, nb_design:].reshape(n, r, nb_design))


def craft(
    model: keras.Model,
    layer: str,
    images: np.ndarray,
    target: int,
    *,
    n_concepts: int = 10,
    patch: int | None = None,
    seed: int = 0,
    on_progress: Progress | None = None,
    nb_design: int = sobol.NB_DESIGN,
) -> Craft:
    """Find ``n_concepts`` concepts of ``layer`` in images of class ``target`` and rank them for that class.

    Args:
        model: any single-input image model; never changed.
        layer: a layer with non-negative feature maps where the network can be cut (``craft_layers``).
        images: float32 (N, H, W, C) in the model's input range, ideally of the class.
        target: the class whose score the importances explain.
        n_concepts: r, the number of concepts.
        patch: the crops' side in pixels; None: fitted to the layer's receptive field (``fitted_patch``).
        seed: the factorization's seed (NNDSVDa needs none unless r exceeds the channels).
        on_progress: ``(done, total) -> True to cancel``; ``total`` is ``cost(...).steps``.
        nb_design: Sobol design points (Xplique's default 32).

    Raises:
        ConceptError: a layer that cannot be used, a bad target or patch, too few crops for r concepts.
        InputShapeError: images that do not fit the model.
        AttributionCancelled: ``on_progress`` returned True.
    """
    x = as_batch(model, images)
    halves = split.split(model, layer)
    halves.column(target)  # checked before any work
    if n_concepts < 1:
        raise ConceptError(f"n_concepts must be at least 1, got {n_concepts}.")
    if len(x) < 1:
        raise ConceptError("CRAFT needs at least one image.")
    hw = tuple(int(v) for v in x.shape[1:3])
    side = _patch(model, halves.layer, hw, patch)
    boxes = split.crop_boxes(hw, side)
    if len(x) * len(boxes) < n_concepts:
        raise ConceptError(
            f"{len(x) * len(boxes)} crops cannot make {n_concepts} concepts; give more images or fewer concepts."
        )
    total = cost(model, halves.layer, len(x), hw, n_concepts=n_concepts, patch=side, nb_design=nb_design).steps
    with progress_to(on_progress, total):
        acts = _crop_activations(model, halves.layer, x, side, len(boxes))
        if not acts.max() > 0:
            raise ConceptError(
                f"Layer '{halves.layer}' stays at zero on every crop of these images: there is no "
                "concept to find (an untrained network, or a layer too deep for them)."
            )
        if acts.min() < -1e-5 * float(acts.max()):
            raise ConceptError(
                f"Layer '{halves.layer}' has negative activations (down to {acts.min():.3g}); "
                "CRAFT factorizes non-negative maps: pick a layer after a ReLU."
            )
        fac = nmf.factorize(np.maximum(acts, 0.0), n_concepts, seed=seed)
        image_acts = forward(model, x, halves.layer)[0]
        u_img = fac.transform(np.maximum(image_acts, 0.0).reshape(-1, image_acts.shape[-1]))
        u_img = u_img.reshape(*image_acts.shape[:3], n_concepts)
        w_rk = fac.w * np.float32(fac.scale)  # back in the layer's units
        importances = concept_importances(model, halves.layer, u_img, w_rk, target, nb_design=nb_design).mean(axis=0)
    crop_image = np.repeat(np.arange(len(x)), len(boxes))
    crop_box = np.tile(boxes, (len(x), 1))
    typical = np.argsort(-fac.u, axis=0, kind="stable")[:CROPS_KEPT].T  # (r, kept)
    crops = tuple(tuple((int(crop_image[i]), tuple(int(v) for v in crop_box[i])) for i in rows) for rows in typical)
    return Craft(
        halves.layer,
        int(target),
        side,
        importances,
        crops,
        fac.w,
        fac.u,
        crop_image,
        crop_box,
        fac.error,
        fac,
        weakref.ref(model),
    )
