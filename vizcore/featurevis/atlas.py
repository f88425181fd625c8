"""Activation Atlas (Carter et al., 2019) of the user's model: feature visualizations laid on a grid over the embedding.

A layer's pooled activations over a dataset (``embedding.layer_features``) are projected to 2-D
(``embedding.project``); a ``grid`` x ``grid`` lattice over that plane bins the points; each cell with
at least ``min_points`` points gets the image that maximizes the cell's mean activation vector
(``featurevis.Direction``), all cells optimized as one batch, and the cell's dominant class.

Example:
    >>> result = atlas(models.open_bundled("mnist_cnn"), "fc", x_nhwc, labels=y)
    >>> result.images_nhwc.shape, result.to_image().dtype
    ((37, 28, 28, 1), dtype('uint8'))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizcore import featurevis as fv
from vizcore.errors import AtlasError, InputShapeError
from vizcore.inspect import embedding
from vizcore.models import graph
from vizcore.present import render

GRID = 8
MIN_POINTS = 8
LARGE_SIDE = 96  # above: a large network (224 px), where a cell-step costs ~50 ms on 2 cores
LARGE_GRID, LARGE_STEPS = 6, 64
Progress = Callable[[str, int, int], None]  # (stage "features" or "images", done, total)
# Tableau 10: the border colour of a cell's dominant class (class index modulo 10); grey: no labels
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ],
    np.uint8,
)
NO_CLASS = np.array((170, 170, 170), np.uint8)


@dataclass(frozen=True, eq=False)  # eq=False: arrays inside
class Atlas:
    """The kept cells of the grid, row-major, and one synthesized image per cell.

    Attributes:
        layer: the layer path.
        grid: cells per side; row 0 is the top (largest y), column 0 the left (smallest x).
        coords: float32 (N, 2), the 2-D points binned.
        cell_of: int (N,), each point's cell as row * grid + col.
        rows, cols, counts: int (K,), each kept cell's place and number of points.
        directions: float32 (K, D), each kept cell's mean activation vector.
        dominant: int (K,), the most frequent class (-1: no labels); ``share`` its fraction of the cell.
        correct: float32 (K,), fraction of the cell's points predicted right (NaN without both labels and predictions).
        images_nhwc: uint8 (K, H, W, C), the feature visualization of each cell's direction.
        start, reached: float32 (K,), the Direction objective on the start and final images.
        class_names: names for ``dominant`` (indices as text when not given).
    """

    layer: str
    grid: int
    coords: np.ndarray
    cell_of: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    directions: np.ndarray
    dominant: np.ndarray
    share: np.ndarray
    correct: np.ndarray
    images_nhwc: np.ndarray
    start: np.ndarray
    reached: np.ndarray
    class_names: tuple[str, ...] = ()

    def class_name(self, k: int) -> str:
        """The dominant class of kept cell ``k`` as text ('' without labels)."""
        c = int(self.dominant[k])
        if c < 0:
            return ""
        return self.class_names[c] if c < len(self.class_names) else str(c)

    def to_image(self, *, tile: int = 64, pad: int = 2, border: int = 3, legend: bool = True) -> np.ndarray:
        """uint8 (H, W, 3): the images on the grid (empty cells white), each framed in its dominant class's colour
        with the class written in its corner, and a legend of the colours below.
        """
        pitch = tile + pad
        side = self.grid * pitch - pad
        out = np.full((side, side, 3), 255, np.uint8)
        inner = tile - 2 * border
        for k in range(len(self.rows)):
            y, x = int(self.rows[k]) * pitch, int(self.cols[k]) * pitch
            out[y : y + tile, x : x + tile] = self._colour(k)
            out[y + border : y + tile - border, x + border : x + tile - border] = render.resize(
                render.to_rgb(self.images_nhwc[k]), (inner, inner)
            )
        pil = Image.fromarray(out)
        draw = ImageDraw.Draw(pil)
        font = ImageFont.load_default()
        for k in range(len(self.rows)):
            name = self.class_name(k)
            if name:
                y, x = int(self.rows[k]) * pitch, int(self.cols[k]) * pitch
                box = draw.textbbox((x + border, y + border), name, font=font)
                draw.rectangle(box, fill=tuple(int(v) for v in self._colour(k)))
                draw.text((x + border, y + border), name, fill=(255, 255, 255), font=font)
        out = np.asarray(pil)
        return np.concatenate([out, self._legend(side, font)]) if legend and (self.dominant >= 0).any() else out

    def _colour(self, k: int) -> np.ndarray:
        c = int(self.dominant[k])
        return PALETTE[c % len(PALETTE)] if c >= 0 else NO_CLASS

    def _legend(self, width: int, font: Any) -> np.ndarray:
        """A white strip with a swatch and the name of each dominant class, wrapped over lines."""
        classes = sorted(set(int(c) for c in self.dominant if c >= 0))
        names = {c: self.class_name(int(np.flatnonzero(self.dominant == c)[0])) for c in classes}
        line, x, y, pos = 16, 4, 4, []
        for c in classes:
            w = 16 + int(font.getlength(names[c])) + 12
            if x + w > width and x > 4:
                x, y = 4, y + line
            pos.append((c, x, y))
            x += w
        pil = Image.new("RGB", (width, y + line + 4), (255, 255, 255))
        draw = ImageDraw.Draw(pil)
        for c, x, y in pos:
            draw.rectangle((x, y + 2, x + 11, y + 13), fill=tuple(int(v) for v in PALETTE[c % len(PALETTE)]))
            draw.text((x + 16, y + 2), names[c], fill=(0, 0, 0), font=font)
        return np.asarray(pil)


def defaults(spec: graph.InputSpec) -> tuple[int, int]:
    """(grid, steps) for a model's input: 8x8 and featurevis's own steps up to 96 px (a few seconds for
    the bundled models); 6x6 and 64 steps for larger inputs, whose 36 x 256 cell-steps would take minutes.
    """
    steps = fv.default_settings(spec).steps
    if min(spec.height or 224, spec.width or 224) > LARGE_SIDE:
        return LARGE_GRID, min(steps, LARGE_STEPS)
    return GRID, steps


def bin_points(coords: np.ndarray, grid: int) -> np.ndarray:
    """int (N,): each 2-D point's cell (row * grid + col) on a grid x grid lattice spanning the points.

    Each axis is cut into ``grid`` equal bins between its minimum and maximum (the maximum falls in
    the last bin); rows count from the top, the largest y, as the scatter plot shows it.
    """
    xy = np.asarray(coords, np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    bins = np.clip(np.floor((xy - lo) / span * grid), 0, grid - 1).astype(int)  # (N, 2): column, bin of y
    return (grid - 1 - bins[:, 1]) * grid + bins[:, 0]


def _dominant(values: np.ndarray, members: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(class, share) of the most frequent value in each group of point indices (ties: the smaller class)."""
    found = [np.bincount(values[m]) for m in members]
    return (
        np.array([int(f.argmax()) for f in found]),
        np.array([f.max() / max(f.sum(), 1) for f in found], np.float32),
    )


def atlas(
    model: Any,
    layer: str,
    x_nhwc: np.ndarray,
    *,
    grid: int = GRID,
    min_points: int = MIN_POINTS,
    coords: np.ndarray | None = None,
    features: np.ndarray | None = None,
    projection: str = "PCA",
    labels: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    steps: int | None = None,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> Atlas:
    """The activation atlas of ``layer`` over the images, as one batched gradient ascent over the kept cells.

    Args:
        model: a keras.Model or a LoadedModel (whose preprocess sets the input range).
        layer: a layer whose output is a feature map (averaged over positions) or a vector.
        x_nhwc: the images, in the model's input range.
        grid: cells per side (at most grid * grid images are optimized).
        min_points: cells with fewer points are left empty.
        coords: (N, 2) points to bin, e.g. the embedding the page shows; None: ``projection`` of the features.
        features: (N, D) the layer's pooled activations when already computed; None: computed here.
        projection: one of ``embedding.PROJECTIONS`` when ``coords`` is None.
        labels, predicted: int (N,) true and predicted classes; the dominant class is of ``labels``,
            else of ``predicted``.
        class_names: names of the classes, for the legend.
        steps: gradient-ascent steps (capped by $CONVLENS_MAX_STEPS); None: ``defaults(spec)``.
        seed: seeds the start images.
        on_progress: ``on_progress(stage, done, total)``, stage "features" (images) then "images" (steps).

    Raises:
        InputShapeError: the layer is neither a feature map nor a vector, or the images do not fit.
        AtlasError: no cell holds ``min_points`` points, or the inputs disagree in length.
    """
    keras_model = model if isinstance(model, keras.Model) else model.model
    path = graph.resolve_layer(keras_model, layer)
    rank = len(graph.trace(keras_model)[path].output.shape)
    if rank not in (2, 4):
        raise InputShapeError(
            f"Layer '{path}' outputs rank-{rank} tensors; an atlas needs a feature map or a vector layer."
        )
    if grid < 1 or min_points < 1:
        raise AtlasError(
            f"The grid needs at least one cell and one point per cell (grid={grid}, min_points={min_points})."
        )
    if features is None:
        tell = (lambda done, total: on_progress("features", done, total)) if on_progress else None
        features = embedding.layer_features(keras_model, path, x_nhwc, on_progress=tell)
    features = np.asarray(features, np.float32)
    xy = embedding.project(features, projection, seed=seed) if coords is None else np.asarray(coords, np.float32)
    n = len(features)
    for name, a in (("coords", xy), ("labels", labels), ("predicted", predicted)):
        if a is not None and len(a) != n:
            raise AtlasError(f"{name} has {len(a)} rows for {n} images.")
    if n < min_points:
        raise AtlasError(
            f"{n} images are fewer than the {min_points} points a cell needs; use more images or a smaller minimum."
        )

    cell_of = bin_points(xy, grid)
    cells, counts = np.unique(cell_of, return_counts=True)
    keep = counts >= min_points
    cells, counts = cells[keep], counts[keep]
    if not len(cells):
        raise AtlasError(
            f"No cell of the {grid}x{grid} grid holds {min_points} of the {n} points; "
            "use a coarser grid or more images."
        )
    members = [np.flatnonzero(cell_of == c) for c in cells]
    directions = np.stack([features[m].mean(axis=0) for m in members]).astype(np.float32)

    ref = labels if labels is not None else predicted
    dominant, share = (
        _dominant(np.asarray(ref, int), members)
        if ref is not None
        else (np.full(len(cells), -1), np.zeros(len(cells), np.float32))
    )
    correct = np.full(len(cells), np.nan, np.float32)
    if labels is not None and predicted is not None:
        right = np.asarray(labels) == np.asarray(predicted)
        correct = np.array([right[m].mean() for m in members], np.float32)

    spec = graph.input_spec(keras_model)
    settings = dataclasses.replace(
        fv.default_settings(spec), fit_receptive_field=False
    )  # the embedding pools the whole image
    steps = defaults(spec)[1] if steps is None else steps
    tell = (lambda done, total, _preview: on_progress("images", done, total)) if on_progress else None
    result = fv.optimize(
        model,
        fv.Direction(path, tuple(map(tuple, directions.tolist()))),
        range(len(cells)),
        settings=settings,
        steps=steps,
        seed=seed,
        on_progress=tell,
        preview=False,
    )
    return Atlas(
        layer=path,
        grid=grid,
        coords=xy,
        cell_of=cell_of,
        rows=cells // grid,
        cols=cells % grid,
        counts=counts,
        directions=directions,
        dominant=dominant,
        share=share,
        correct=correct,
        images_nhwc=fv.to_uint8(result.images_nhwc, result.input_range),
        start=result.start,
        reached=result.reached,
        class_names=tuple(str(c) for c in class_names),
    )
