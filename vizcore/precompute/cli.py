"""Precompute once, serve many: the Dataset view's filter cards, evaluation, embedding and atlas of a model, headless.

    python -m vizcore.precompute --model bundled:mnist_cnn --dataset mnist_sample --limit 5000
    python -m vizcore.precompute --model my_model.keras --dataset photos.zip --out /srv/convlens/precomputed

Runs the functions the Dataset page calls (``examples.top_examples``, ``featurevis.optimize``,
``evaluation.report``, ``embedding.layer_features`` and ``project``, ``atlas.atlas``) and writes what they return to
``vizcore.precompute.store``'s folder for the model and dataset, under the keys the app uses, so the page
shows it at once. Each step of ``STEPS`` computes one kind of artifact; a new view adds a step.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vizcore import featurevis as fv
from vizcore import models
from vizcore.data import archive, datasets
from vizcore.errors import ConvLensError
from vizcore.featurevis import atlas
from vizcore.inspect import embedding, evaluation, examples
from vizcore.models import blocks
from vizcore.precompute.store import SHAPES, K, Projection, Store, pick, sample_photos

FV_BATCH = 64  # filters optimized together (a 224x224 network's 1,280 at once would not fit)
MODEL_FORMS = "a model file, bundled:NAME, preset:NAME or app:NAME:imagenet"
DATASETS = ("mnist_sample", "shapes", "photos", *(f"keras:{n}" for n in datasets.KERAS_DATASETS))


def open_model(text: str) -> models.LoadedModel:
    """A model by path (keyed as the app keys an upload of the same bytes) or by the app's link name."""
    path = Path(text)
    if path.is_file():
        data = path.read_bytes()
        return models.open_upload(data, path.name, "upload:" + hashlib.sha1(data).hexdigest()[:12])
    kind, _, rest = text.partition(":")
    name, _, weights = rest.partition(":")
    if kind == "bundled" and name in models.list_bundled() or kind == "" and text in models.list_bundled():
        return models.open_bundled(name or text)
    if kind == "preset" and name in models.presets.PRESETS:
        return models.open_preset(name)
    if kind == "app" and name in models.applications.APPLICATIONS and weights in ("imagenet", "none", ""):
        return models.open_application(name, weights=None if weights == "none" else "imagenet")
    raise SystemExit(f"Unknown model {text!r}: give {MODEL_FORMS} (bundled: {', '.join(models.list_bundled())}).")


def open_dataset(text: str, limit: int) -> tuple[datasets.ImageDataset, str]:
    """A dataset as the Dataset page loads it, and the name the page keys it by."""
    if text == "mnist_sample":
        return datasets.load_mnist_sample(), text
    if text == "shapes":
        return datasets.make_shapes(SHAPES["n"], seed=SHAPES["seed"]), text
    if text == "photos":
        return sample_photos(), text
    if text.startswith("keras:") and text.split(":", 1)[1] in datasets.KERAS_DATASETS:
        full = datasets.load_keras_dataset(text.split(":", 1)[1], split="train")
        return full.subset(np.arange(min(limit, len(full)))), text
    if Path(text).is_file() and text.lower().endswith(".zip"):
        data = Path(text).read_bytes()
        return archive.load_image_zip(data, name="upload"), f"zip:{hashlib.sha1(data).hexdigest()[:12]}"
    raise SystemExit(f"Unknown dataset {text!r}: give one of {', '.join(DATASETS)} or a .zip of class folders.")


@dataclass
class Job:
    """What every step needs: the model, the prepared images and their labels (None: not the model's classes)."""

    loaded: models.LoadedModel
    x_nhwc: np.ndarray
    y: np.ndarray | None
    labels: np.ndarray  # the atlas's classes: ``y``, else the dataset's own
    class_names: tuple[str, ...]
    store: Store
    layers: tuple[str, ...]
    embedding_layers: tuple[str, ...]
    projections: tuple[str, ...]
    log: Callable[[str], None]


def _timed(job: Job, kind: str, compute, **params):
    """``compute()``, saved as ``kind`` with ``params`` and logged with its time; returns the value."""
    start = time.perf_counter()
    value = compute()
    seconds = time.perf_counter() - start
    job.store.put(kind, value, seconds=seconds, **params)
    job.log("  " + " ".join([kind, *(f"{k}={v}" for k, v in params.items())]) + f" · {seconds:.1f} s")
    return value


def filter_cards(job: Job) -> None:
    """Each layer's top examples per filter, and every filter's gradient-ascent image."""
    model = job.loaded.model
    for layer in job.layers:
        ex = _timed(
            job,
            "examples",
            lambda: examples.top_examples(model, layer, job.x_nhwc, k=min(K, len(job.x_nhwc))),
            layer=layer,
        )
        _timed(job, "featurevis", lambda: _synthesize(job.loaded, layer, ex.channels), layer=layer)


def _synthesize(loaded, layer: str, channels: int) -> np.ndarray:
    """uint8 (channels, H, W, C): every filter's gradient-ascent image, ``FV_BATCH`` filters per optimization."""
    parts = []
    for lo in range(0, channels, FV_BATCH):  # seeded per filter: the same images as one at a time
        found = fv.optimize(loaded, fv.Channel(layer), range(lo, min(lo + FV_BATCH, channels)), seed=0)
        parts.append(fv.to_uint8(found.images_nhwc, found.input_range))
    return np.concatenate(parts)


def evaluate(job: Job) -> None:
    """Accuracy, per-class scores and confusion of the model on the images."""
    if job.y is None:
        job.log("  skipped: the dataset's classes are not the model's")
        return
    _timed(job, "report", lambda: evaluation.report(job.loaded.model, job.x_nhwc, job.y, job.loaded.class_names))


def embed(job: Job) -> None:
    """Each embedding layer's 2-D projections, and the Activation Atlas over each at the page's defaults."""
    grid, steps = atlas.defaults(job.loaded.spec)
    predicted = None
    if job.y is not None:
        rep = job.store.get("report") or evaluation.report(job.loaded.model, job.x_nhwc, job.y, job.loaded.class_names)
        predicted = rep.evaluation.predicted
    for layer in job.embedding_layers:
        feats = embedding.layer_features(job.loaded.model, layer, job.x_nhwc)
        for method in job.projections:
            share = float(embedding.explained_variance(feats).sum()) if method == "PCA" else float("nan")
            proj = _timed(
                job,
                "embedding",
                lambda: Projection(embedding.project(feats, method, seed=0), int(feats.shape[1]), share),
                layer=layer,
                method=method,
            )
            try:
                _timed(
                    job,
                    "atlas",
                    lambda: atlas.atlas(
                        job.loaded,
                        layer,
                        job.x_nhwc,
                        grid=grid,
                        min_points=atlas.MIN_POINTS,
                        coords=proj.xy,
                        features=feats,
                        labels=job.labels,
                        predicted=predicted,
                        class_names=job.class_names,
                        steps=steps,
                    ),
                    layer=layer,
                    method=method,
                    grid=grid,
                    min_points=atlas.MIN_POINTS,
                    steps=steps,
                )
            except ConvLensError as err:  # e.g. too few images for any cell
                job.log(f"  atlas skipped: {err}")


STEPS: dict[str, Callable[[Job], None]] = {
    "cards": filter_cards,
    "evaluation": evaluate,
    "embedding": embed,
}  # name -> step


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vizcore.precompute", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help=MODEL_FORMS)
    p.add_argument("--dataset", required=True, help=f"{', '.join(DATASETS)}, or a .zip of class folders")
    p.add_argument(
        "--limit", type=int, default=5000, help="images at most, as the page's 'Images (at most)' (default 5000)"
    )
    p.add_argument("--layers", nargs="+", help="layers of the filter cards (default: every layer the page offers)")
    p.add_argument("--embedding-layers", nargs="+", help="layers of the embedding (default: the page's default layer)")
    p.add_argument("--projections", nargs="+", default=["PCA"], choices=embedding.PROJECTIONS)
    p.add_argument(
        "--steps", nargs="+", default=list(STEPS), choices=list(STEPS), help="what to compute (default: all)"
    )
    p.add_argument("--out", type=Path, help="cache root (default: $CONVLENS_PRECOMPUTED or precomputed/)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Store:
    """Run the steps; the store written. Raises SystemExit with one sentence for a bad model, dataset or layer."""
    args = parse(argv)
    log = lambda text: print(text, flush=True)  # noqa: E731
    try:
        loaded = open_model(args.model)
        full, ds_name = open_dataset(args.dataset, args.limit)
    except ConvLensError as err:
        raise SystemExit(str(err)) from None
    chosen = pick(len(full), full.image_shape, loaded.spec, args.limit)
    ds = full.subset(chosen) if len(chosen) < len(full) else full
    ds_key = f"{ds_name}:{len(chosen)}"
    cards, emb = blocks.cam_layers(loaded.model), embedding.embedding_layers(loaded.model)
    for asked, offered in ((args.layers, cards), (args.embedding_layers, emb)):
        wrong = [name for name in asked or () if name not in offered]
        if wrong:
            raise SystemExit(
                f"Layer {wrong[0]!r} is not offered by the Dataset view for this model; "
                f"choose from {', '.join(offered)}."
            )
    log(f"{loaded.label} ({loaded.key}) on {ds_key}: preparing {len(ds):,} images…")
    x = evaluation.prepare(loaded, ds.x_nhwc).x_nhwc
    y = None if ds.name == "photos" else evaluation.labels_for(ds.class_names, loaded.class_names, ds.y)
    store = Store.create(
        loaded.key, ds_key, args.out, label=loaded.label, images=len(ds), command="python -m vizcore.precompute"
    )
    labels, names = (y, loaded.class_names) if y is not None else (ds.y, ds.class_names)
    job = Job(
        loaded,
        x,
        y,
        labels,
        tuple(names),
        store,
        tuple(args.layers or cards),
        tuple(args.embedding_layers or (embedding.default_layer(loaded.model),)),
        tuple(args.projections),
        log,
    )
    for i, name in enumerate(args.steps, 1):
        log(f"[{i}/{len(args.steps)}] {name}")
        STEPS[name](job)
    log(f"Done: {store.path}")
    return store


if __name__ == "__main__":
    main(sys.argv[1:])
