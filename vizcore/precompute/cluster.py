"""Precompute on a Dask cluster: the Dataset view's pieces computed by workers, merged by the client.

``python -m vizcore.precompute --workers N`` starts a local cluster of N worker processes (one thread each);
``--cluster tcp://host:8786`` joins a running one (``dask scheduler`` / ``dask worker``, dask-kubernetes,
dask-jobqueue: docs/distributed_precompute.md). The client hands each worker the view's specs (the model and
dataset as text, never a pickled Keras model); a worker opens the view once (``open_on_worker``: the model
loaded once per worker process) and computes pieces of it: shards of rows for top examples, the evaluation
and the features, ranges of filters for gradient ascent. The client merges them (``DataView.merge``: top-k
exactly, confusion counts add, features concatenate before the one projection) and writes the store as one
process does. A worker that dies is retried by Dask (``distributed.scheduler.allowed-failures``); past that the
run stops with a ``ShardError`` naming the shard, and the store holds only whole artifacts (atomic writes).

Example (in a script, under ``if __name__ == "__main__":``: local workers are spawned processes that import
the main module again):
    >>> with connect(workers=2) as runner:
    ...     view = DataView.open("bundled:mnist_cnn", "mnist_sample", 5000).on(runner)
    ...     view.save("examples", layer="conv2")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from distributed import Client, LocalCluster, wait

from vizcore.errors import ShardError, SpecError
from vizcore.precompute.view import DataView, Piece

_VIEWS: dict[tuple[str, str, int], DataView] = {}  # in a worker process: the view it opened (one model at a time)


def open_on_worker(opened_from: tuple[str, str, int]) -> DataView:
    """The view of these specs in this process, opened on first use: each worker loads the model once."""
    view = _VIEWS.get(opened_from)
    if view is None:
        _VIEWS.clear()  # a worker serves one run's model at a time
        view = _VIEWS[opened_from] = DataView.open(*opened_from)
    return view


def part_on_worker(opened_from: tuple[str, str, int], kind: str, piece: Piece, params: dict):
    """One piece of ``kind``, computed in a worker (``DataView.part``)."""
    return open_on_worker(opened_from).part(kind, piece, **params)


class DaskRunner:
    """Computes a view's pieces on a Dask cluster; ``shards`` pieces of rows (default: the cluster's threads)."""

    def __init__(self, client: Client, shards: int | None = None) -> None:
        self.client = client
        self.shards = int(shards or max(1, sum(client.nthreads().values())))

    def map(self, view: DataView, kind: str, pieces: Sequence[Piece], params: dict) -> list:
        """``view.part(kind, piece, **params)`` of each piece, computed by the workers, in order.

        Raises:
            ShardError: a piece failed (its worker died more often than Dask retries, or it raised).
        """
        if view.opened_from is None:
            raise SpecError(
                "A cluster opens the model and dataset from their specs; this view was opened from objects."
            )
        futures = [
            self.client.submit(part_on_worker, view.opened_from, kind, piece, params, pure=False) for piece in pieces
        ]
        wait(futures)
        for i, (future, (lo, hi)) in enumerate(zip(futures, pieces), 1):
            if future.status != "finished":
                what = "filters" if kind == "featurevis" else "images"
                about = "".join(f", {k}={v}" for k, v in params.items())
                error = future.exception()
                for other in futures:
                    other.cancel()
                raise ShardError(
                    f"Shard {i} of {len(pieces)} of {kind} ({what} {lo} to {hi - 1}{about}) failed: "
                    f"{type(error).__name__}: {error}"
                )
        return self.client.gather(futures)


@contextmanager
def connect(
    workers: int | None = None, address: str | None = None, *, shards: int | None = None
) -> Iterator[DaskRunner]:
    """A runner on a cluster: joined at ``address``, or ``workers`` local processes started (and stopped after).

    Each local worker has one thread and TensorFlow's threads are shared out between the workers.
    """
    if address:
        with Client(address) as client:
            yield DaskRunner(client, shards)
        return
    threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": threads}
    with (
        LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never collide with a cluster already on 8787
            env=env,
            silence_logs=logging.ERROR,  # a worker stopped at the end is no news; a lost shard raises
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskRunner(client, shards)
