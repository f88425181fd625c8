"""Precompute once, serve many: the Dataset view's filter cards, evaluation, embedding and atlas of a model, headless.

    python -m vizcore.precompute --model bundled:mnist_cnn --dataset mnist_sample --limit 5000
    python -m vizcore.precompute --model my_model.keras --dataset photos.zip --out /srv/convlens/precomputed
    python -m vizcore.precompute --model bundled:mnist_cnn --dataset mnist_sample --workers 2
    python -m vizcore.precompute --model /shared/model.keras --dataset /shared/photos.zip --cluster tcp://sched:8786

Asks the Dataset view (``vizcore.precompute.view.DataView``) for each result the page shows and writes it to
``vizcore.precompute.store``'s folder for the model and dataset, under the keys the view reads, so the page
shows it at once. Each step of ``STEPS`` saves some kinds of artifact; a new view adds a step. With
``--workers`` or ``--cluster`` the view's pieces are computed on a Dask cluster (``vizcore.precompute.cluster``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vizcore.errors import ConvLensError, ShardError
from vizcore.featurevis import atlas
from vizcore.inspect import embedding
from vizcore.models import blocks
from vizcore.models.specs import DATASETS, MODEL_FORMS
from vizcore.precompute.store import Store
from vizcore.precompute.view import DataView


@dataclass
class Job:
    """What every step needs: the view (model, images, labels, store) and what to compute."""

    view: DataView
    layers: tuple[str, ...]
    embedding_layers: tuple[str, ...]
    projections: tuple[str, ...]
    log: Callable[[str], None]


def _save(job: Job, kind: str, **params):
    """``view.save(kind, **params)``, logged with its time; returns the value."""
    start = time.perf_counter()
    value = job.view.save(kind, **params)
    seconds = time.perf_counter() - start
    job.log("  " + " ".join([kind, *(f"{k}={v}" for k, v in params.items())]) + f" · {seconds:.1f} s")
    return value


def filter_cards(job: Job) -> None:
    """Each layer's top examples per filter, and every filter's gradient-ascent image."""
    for layer in job.layers:
        _save(job, "examples", layer=layer)
        _save(job, "featurevis", layer=layer)


def evaluate(job: Job) -> None:
    """Accuracy, per-class scores and confusion of the model on the images."""
    if not job.view.labels_fit:
        job.log("  skipped: the dataset's classes are not the model's")
        return
    _save(job, "report")


def embed(job: Job) -> None:
    """Each embedding layer's 2-D projections, and the Activation Atlas over each at the page's defaults."""
    grid, steps = atlas.defaults(job.view.loaded.spec)
    for layer in job.embedding_layers:
        for method in job.projections:
            _save(job, "embedding", layer=layer, method=method)
            try:
                _save(job, "atlas", layer=layer, method=method, grid=grid, min_points=atlas.MIN_POINTS, steps=steps)
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
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="start a local Dask cluster of this many worker processes")
    where.add_argument("--cluster", metavar="ADDRESS", help="join a running Dask cluster (tcp://host:8786)")
    p.add_argument("--shards", type=int, help="pieces of rows per result on a cluster (default: its threads)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Store:
    """Run the steps; the store written. Raises SystemExit with one sentence for a bad model, dataset or layer."""
    args = parse(argv)
    log = lambda text: print(text, flush=True)  # noqa: E731
    try:
        view = DataView.open(args.model, args.dataset, args.limit, base=args.out)
    except ConvLensError as err:
        raise SystemExit(str(err)) from None
    model = view.loaded.model
    cards, emb = blocks.cam_layers(model), embedding.embedding_layers(model)
    for asked, offered in ((args.layers, cards), (args.embedding_layers, emb)):
        wrong = [name for name in asked or () if name not in offered]
        if wrong:
            raise SystemExit(
                f"Layer {wrong[0]!r} is not offered by the Dataset view for this model; "
                f"choose from {', '.join(offered)}."
            )
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, not {args.workers}.")
    log(f"{view.loaded.label} ({view.loaded.key}) on {view.key}: {len(view):,} images…")
    store = view.create_store(command="python -m vizcore.precompute")
    job = Job(
        view,
        tuple(args.layers or cards),
        tuple(args.embedding_layers or (embedding.default_layer(model),)),
        tuple(args.projections),
        log,
    )
    with contextlib.ExitStack() as on_cluster:
        if args.workers or args.cluster:
            from vizcore.precompute import cluster  # Dask is imported only when a cluster is asked for

            runner = on_cluster.enter_context(cluster.connect(args.workers, args.cluster, shards=args.shards))
            log(f"Dask cluster {runner.client.scheduler.address}: {runner.shards} shards of rows per result")
            job.view = view.on(runner)
        try:
            for i, name in enumerate(args.steps, 1):
                log(f"[{i}/{len(args.steps)}] {name}")
                STEPS[name](job)
        except ShardError as err:
            raise SystemExit(f"{err} The store keeps the results written before it: {store.path}") from None
    log(f"Done: {store.path}")
    return view.store


if __name__ == "__main__":
    main(sys.argv[1:])
