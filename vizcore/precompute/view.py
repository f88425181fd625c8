"""The Dataset view of a model over a dataset: which images, their keys, preparation and labels, and every
result the view shows, read from the precomputed store when it holds it, else computed.

The Dataset page, ``python -m vizcore.precompute`` and ``python -m vizcore.report`` all ask a ``DataView``;
none of them computes a dataset result itself. Kinds (the store's, plus ``features``):

=============  ========================================  ===========================================
kind           params                                    value
=============  ========================================  ===========================================
examples       layer                                     ``examples.TopExamples`` (k = min(K, N))
featurevis     layer                                     uint8 (channels, H, W, C) gradient ascent
report         (none; needs labels of the model's)       ``evaluation.Report``
features       layer                                     float32 (N, D), not stored
embedding      layer, method                             ``store.Projection``
atlas          layer, method, grid, min_points, steps    ``atlas.Atlas``
=============  ========================================  ===========================================

Row kinds (examples, report, features) are computed per shard of rows and merged, and featurevis per
range of filters: ``part`` computes one piece, ``merge`` joins them (top-k merges exactly, confusion counts
add, features concatenate). Here, in one process, a view computes one piece of rows; given a ``runner``
(``vizcore.precompute.cluster``) it hands the pieces to a cluster's workers, which open the same view
from ``opened_from``. Embedding and atlas are computed once, from merged results.

Example:
    >>> view = DataView.open("bundled:mnist_cnn", "mnist_sample", 1000)
    >>> view.key, len(view), view.get("report").accuracy
    ('mnist_sample:1000', 1000, 0.992)
    >>> view.get("examples", layer="conv2").indices.shape   # read from the store when precomputed
    (64, 9)
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vizcore import featurevis as fv
from vizcore.data.datasets import ImageDataset
from vizcore.errors import SpecError
from vizcore.featurevis import atlas
from vizcore.inspect import embedding, evaluation, examples
from vizcore.models import LoadedModel, graph, specs
from vizcore.precompute.store import K, Projection, Store, pick

FV_BATCH = 64  # filters optimized together (a 224x224 network's 1,280 at once would not fit)
ROW_KINDS = ("examples", "report", "features")  # computed per shard of rows, then merged
KINDS = ("examples", "featurevis", "report", "features", "embedding", "atlas")
Piece = tuple[int, int]  # rows (or filters) lo..hi
Progress = Callable[[int, int], Any]


class Runner(Protocol):
    """Computes a view's pieces somewhere else (``cluster.DaskRunner``): ``map`` returns ``view.part(kind,
    piece, **params)`` of each piece, in order."""

    shards: int

    def map(self, view: DataView, kind: str, pieces: Sequence[Piece], params: dict) -> list: ...


def split(n: int, shards: int) -> tuple[Piece, ...]:
    """``shards`` contiguous pieces of ``range(n)``, as even as can be, none empty."""
    bounds = np.linspace(0, n, max(1, min(int(shards), n)) + 1).astype(int)
    return tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))


@dataclass(frozen=True, eq=False)
class DataView:
    """A model over the images of a dataset the Dataset view uses, and the results it shows.

    Attributes:
        loaded: the model.
        name: the dataset's name as the app keys it ('mnist_sample', 'keras:cifar10', 'zip:<sha1>').
        key: the key of these images ('mnist_sample:5000'): the precomputed store's folder.
        total: images in the whole dataset.
        pick: int64 (N,) indices of the images used, into the whole dataset (evenly spaced: every class).
        dataset: the images used, with the dataset's own labels and class names.
        y: int64 (N,) the model's class of each image, or None when the dataset's classes are not the model's.
        base: the store's root (None: ``store.root()``).
        opened_from: (model, dataset, limit) as text when the view was opened from specs: how a worker opens it too.
        runner: where pieces are computed (None: here).
    """

    loaded: LoadedModel
    name: str
    key: str
    total: int
    pick: np.ndarray
    dataset: ImageDataset
    y: np.ndarray | None
    base: Path | None = None
    opened_from: tuple[str, str, int] | None = None
    runner: Runner | None = None
    memo: dict = field(default_factory=dict, repr=False)  # the last features computed (embedding, atlas reuse them)

    @classmethod
    def open(
        cls,
        model: LoadedModel | specs.Spec | str,
        source: ImageDataset | specs.DatasetSpec | str,
        limit: int | None = None,
        *,
        name: str | None = None,
        base: Path | None = None,
    ) -> DataView:
        """The view of ``model`` over at most ``limit`` images of ``source`` (None: all that fit in memory).

        Args:
            model: a LoadedModel, or a spec ('bundled:mnist_cnn', a file path: ``specs.parse_spec``).
            source: an ImageDataset, or a dataset spec ('mnist_sample', 'keras:cifar10', a ZIP's path).
            name: an ImageDataset's name in the app ('zip:<sha1>'); default its own ``name``.
        Raises:
            SpecError: a model or dataset spec that names nothing.
        """
        text_model = None if isinstance(model, LoadedModel) else (model if isinstance(model, str) else model.text)
        text_data = None if isinstance(source, ImageDataset) else (source if isinstance(source, str) else source.text)
        loaded = model if isinstance(model, LoadedModel) else specs.open_spec(model)
        if isinstance(source, ImageDataset):
            full, name = source, name or source.name
        else:
            full, name = specs.open_dataset(source, 20_000 if limit is None else int(limit))
        chosen = pick(len(full), full.image_shape, loaded.spec, len(full) if limit is None else int(limit))
        ds = full.subset(chosen) if len(chosen) < len(full) else full
        y = None if ds.name == "photos" else evaluation.labels_for(ds.class_names, loaded.class_names, ds.y)
        both = text_model is not None and text_data is not None
        return cls(
            loaded,
            name,
            f"{name}:{len(chosen)}",
            len(full),
            chosen,
            ds,
            y,
            None if base is None else Path(base),
            (text_model, text_data, len(full) if limit is None else int(limit)) if both else None,
        )

    def on(self, runner: Runner | None) -> DataView:
        """The same view, computing its pieces with ``runner`` (None: here)."""
        return dataclasses.replace(self, runner=runner, memo={})

    # ------------------------------------------------------------------ images and labels

    def __len__(self) -> int:
        return len(self.pick)

    @functools.cached_property
    def prepared(self) -> evaluation.Prepared:
        """The images prepared for the model (read-only), made on first use."""
        prepared = evaluation.prepare(self.loaded, self.dataset.x_nhwc)
        prepared.x_nhwc.setflags(write=False)
        prepared.display_nhwc.setflags(write=False)
        return prepared

    @property
    def x_nhwc(self) -> np.ndarray:
        """float32 (N, H, W, C) in the model's input range."""
        return self.prepared.x_nhwc

    @property
    def display_nhwc(self) -> np.ndarray:
        """uint8 (N, H, W, C), the same pixels for people."""
        return self.prepared.display_nhwc

    @property
    def labels_fit(self) -> bool:
        """Whether the dataset's classes are the model's (then the view can evaluate)."""
        return self.y is not None

    @property
    def labels(self) -> np.ndarray:
        """int64 (N,): the model's classes when they fit, else the dataset's own."""
        return self.y if self.y is not None else self.dataset.y

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names of ``labels``."""
        return tuple(self.loaded.class_names if self.y is not None else self.dataset.class_names)

    @property
    def k(self) -> int:
        """Examples per filter: ``store.K``, at most the images."""
        return min(K, len(self))

    @property
    def store(self) -> Store | None:
        """The precomputed results of this model on these images, or None."""
        return Store.find(self.loaded.key, self.key, self.base)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """float32 (hi - lo, H, W, C): prepared images lo..hi (only those are prepared when the rest are not)."""
        if "prepared" in self.__dict__:
            return self.x_nhwc[lo:hi]
        return evaluation.prepare(self.loaded, self.dataset.x_nhwc[lo:hi]).x_nhwc

    # ------------------------------------------------------------------ pieces

    def pieces(self, kind: str, shards: int = 1, **params) -> tuple[Piece, ...]:
        """How ``kind`` splits: row kinds into ``shards`` pieces of rows, featurevis into ``FV_BATCH`` filters."""
        if kind in ROW_KINDS:
            return split(len(self), shards)
        if kind == "featurevis":
            model = self.loaded.model
            channels = int(graph.trace(model)[graph.resolve_layer(model, params["layer"])].output.shape[-1])
            return tuple((lo, min(lo + FV_BATCH, channels)) for lo in range(0, channels, FV_BATCH))
        raise ValueError(f"{kind!r} is computed once from merged results, not in pieces.")

    def part(self, kind: str, piece: Piece, *, on_progress: Progress | None = None, **params):
        """One piece of ``kind``: an ``Evaluation`` (report), ``TopExamples`` with the piece's own row
        indices (examples), features, or uint8 images of filters lo..hi (featurevis)."""
        lo, hi = piece
        model = self.loaded.model
        if kind == "featurevis":  # seeded per filter: the same images as one at a time
            found = fv.optimize(self.loaded, fv.Channel(params["layer"]), range(lo, hi), seed=0)
            return fv.to_uint8(found.images_nhwc, found.input_range)
        x = self.rows(lo, hi)
        if kind == "examples":
            return examples.top_examples(model, params["layer"], x, k=self.k, on_progress=on_progress)
        if kind == "features":
            return embedding.layer_features(model, params["layer"], x, on_progress=on_progress)
        if kind == "report":
            names = tuple(self.loaded.class_names)
            return evaluation.evaluate(model, ImageDataset(x, self.y[lo:hi], names, "evaluation"))
        raise ValueError(f"{kind!r} is computed once from merged results, not in pieces.")

    def merge(self, kind: str, parts: Sequence, pieces: Sequence[Piece], **params):
        """The value of ``kind`` from its pieces' parts, as one pass over all of it gives."""
        if kind == "examples":
            return examples.merge(parts, [lo for lo, _ in pieces], self.k)
        if kind in ("features", "featurevis"):
            return np.concatenate(parts)
        if kind == "report":  # probabilities concatenate; the confusion is the sum of the shards'
            probs = np.concatenate([p.probabilities for p in parts])
            return evaluation.report_of(evaluation.evaluation_of(probs, self.y, tuple(self.loaded.class_names)))
        raise ValueError(f"{kind!r} is computed once from merged results, not in pieces.")

    # ------------------------------------------------------------------ results

    def compute(self, kind: str, *, on_progress: Progress | None = None, **params):
        """``kind`` computed now (by the runner's workers when there is one), whatever the store holds."""
        if kind not in KINDS:
            raise ValueError(f"The Dataset view has no result {kind!r}; it has {', '.join(KINDS)}.")
        if kind == "report" and self.y is None:
            raise SpecError(f"The classes of '{self.name}' are not the model's, so there is nothing to score.")
        if kind == "embedding":
            feats = self.get("features", layer=params["layer"], on_progress=on_progress)
            method = params["method"]
            share = float(embedding.explained_variance(feats).sum()) if method == "PCA" else float("nan")
            return Projection(embedding.project(feats, method, seed=0), int(feats.shape[1]), share)
        if kind == "atlas":
            layer, method = params["layer"], params["method"]
            feats = self.get("features", layer=layer)
            predicted = self.get("report").evaluation.predicted if self.y is not None else None
            return atlas.atlas(
                self.loaded,
                layer,
                self.x_nhwc,
                grid=params["grid"],
                min_points=params["min_points"],
                coords=self.get("embedding", layer=layer, method=method).xy,
                features=feats,
                labels=self.labels,
                predicted=predicted,
                class_names=self.class_names,
                steps=params["steps"],
            )
        pieces = self.pieces(kind, self.runner.shards if self.runner is not None else 1, **params)
        if self.runner is None:
            parts = [self.part(kind, p, on_progress=on_progress, **params) for p in pieces]
        else:
            parts = self.runner.map(self, kind, pieces, params)
        return self.merge(kind, parts, pieces, **params)

    def stored(self, kind: str, **params):
        """``kind`` as the store holds it for these params, or None (also for examples of another k)."""
        store = self.store
        found = store.get(kind, **params) if store is not None else None
        if kind == "examples" and found is not None and found.k != self.k:
            return None
        return found

    def get(self, kind: str, *, on_progress: Progress | None = None, **params):
        """``kind`` from the store when it holds it, else computed (features: kept for the next ask)."""
        found = self.stored(kind, **params) if kind != "features" else self.memo.get(params["layer"])
        if found is not None:
            return found
        value = self.compute(kind, on_progress=on_progress, **params)
        if kind == "features":
            self.memo.clear()  # one layer's features at a time: (N, D) can be large
            self.memo[params["layer"]] = value
        return value

    def save(self, kind: str, **params):
        """``kind`` computed and written to the store (atomically, then listed); the value."""
        start = time.perf_counter()
        value = self.compute(kind, **params)
        store = self.store or Store.create(self.loaded.key, self.key, self.base)
        store.put(kind, value, seconds=time.perf_counter() - start, **params)
        return value

    def create_store(self, **about) -> Store:
        """The store of this view, made (or kept) for writing, with ``about`` in its manifest."""
        return Store.create(self.loaded.key, self.key, self.base, label=self.loaded.label, images=len(self), **about)
