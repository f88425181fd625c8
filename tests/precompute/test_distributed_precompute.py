"""Precompute on a Dask cluster (two local worker processes) writes what one process writes; a worker killed
in the middle is retried, and a shard that keeps failing is named while the store keeps only whole artifacts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from vizcore import featurevis as fv
from vizcore.featurevis import atlas
from vizcore.precompute import cluster
from vizcore.precompute import view as view_module
from vizcore.precompute.cli import main
from vizcore.precompute.view import DataView

N = 120  # images
LAYER = "conv2"
ARGS = ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--limit", str(N), "--layers", LAYER]
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault injectors below run in the workers


@pytest.fixture(scope="module")
def runner():
    """Two worker processes of one thread each, started as ``--workers 2`` starts them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fv.MAX_STEPS_ENV, "4")  # before the workers start: they inherit it
        with cluster.connect(workers=2) as found:
            yield found


@pytest.fixture(scope="module")
def both(runner, tmp_path_factory):
    """The same run in one process and on the cluster (joined by its address): the two cache roots."""
    roots = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fv.MAX_STEPS_ENV, "4")
        mp.setattr(view_module, "FV_BATCH", 32)  # two pieces of filters, one per worker
        for name, extra in (("one", []), ("two", ["--cluster", runner.client.scheduler.address])):
            roots[name] = tmp_path_factory.mktemp(name)
            main([*ARGS, "--out", str(roots[name]), *extra])
    return roots


def _view(root: Path) -> DataView:
    return DataView.open("bundled:mnist_cnn", "mnist_sample", N, base=root)


def _kinds(root: Path) -> list:
    manifest = json.loads((_view(root).store.path / "manifest.json").read_text())
    return sorted((e["kind"], json.dumps(e["params"], sort_keys=True)) for e in manifest["artifacts"])


def test_two_workers_write_the_artifacts_of_one_process(both):
    one, two = _view(both["one"]), _view(both["two"])
    assert _kinds(both["one"]) == _kinds(both["two"]) and len(_kinds(both["one"])) == 5
    a, b = one.stored("examples", layer=LAYER), two.stored("examples", layer=LAYER)
    for name in ("indices", "scores", "boxes", "positions"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    ra, rb = one.stored("report"), two.stored("report")
    np.testing.assert_array_equal(ra.confusion, rb.confusion)
    np.testing.assert_array_equal(ra.evaluation.probabilities, rb.evaluation.probabilities)
    assert ra.accuracy == rb.accuracy and ra.top_k == rb.top_k
    np.testing.assert_array_equal(one.stored("featurevis", layer=LAYER), two.stored("featurevis", layer=LAYER))
    layer = "fc"  # the default embedding layer
    ea, eb = one.stored("embedding", layer=layer, method="PCA"), two.stored("embedding", layer=layer, method="PCA")
    np.testing.assert_allclose(ea.xy, eb.xy, rtol=1e-5, atol=1e-5)
    grid, steps = atlas.defaults(one.loaded.spec)
    key = dict(layer=layer, method="PCA", grid=grid, min_points=atlas.MIN_POINTS, steps=steps)
    aa, ab = one.stored("atlas", **key), two.stored("atlas", **key)
    np.testing.assert_array_equal(aa.cell_of, ab.cell_of)
    np.testing.assert_array_equal(aa.counts, ab.counts)


def _kill_once(marker: str) -> None:
    """In a worker: the first piece of top examples any worker starts kills its process (os._exit), once."""

    real = DataView.part

    def part(self, kind, piece, **params):
        if kind == "examples":
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # one worker wins, once
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return real(self, kind, piece, **params)

    DataView.part = part


def _kill_first_shard_of(kind_to_kill: str) -> None:
    """In a worker: the first shard of ``kind_to_kill`` kills its process, every time."""
    real = DataView.part

    def part(self, kind, piece, **params):
        if kind == kind_to_kill and piece[0] == 0:
            os._exit(1)
        return real(self, kind, piece, **params)

    DataView.part = part


def test_a_worker_killed_in_the_middle_is_retried(runner, both, tmp_path):
    marker = tmp_path / "killed"
    runner.client.run(_kill_once, str(marker))
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", N).on(runner)
    found = view.compute("examples", layer=LAYER)
    assert marker.exists()  # a worker did die in the middle of a piece
    want = _view(both["one"]).stored("examples", layer=LAYER)
    np.testing.assert_array_equal(found.indices, want.indices)
    np.testing.assert_array_equal(found.scores, want.scores)


def test_a_shard_that_keeps_failing_is_named_and_nothing_half_written_stays(runner, tmp_path):
    out = tmp_path / "out"
    runner.client.wait_for_workers(2, timeout=120)  # a worker killed before is back: both get the fault
    runner.client.run(_kill_first_shard_of, "report")
    before = runner.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    runner.client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0))
    try:
        with pytest.raises(SystemExit) as err:
            main(
                [
                    *ARGS,
                    "--steps",
                    "cards",
                    "evaluation",
                    "--out",
                    str(out),
                    "--cluster",
                    runner.client.scheduler.address,
                ]
            )
    finally:
        runner.client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", before))
    message = str(err.value)
    assert message.startswith(f"Shard 1 of 2 of report (images 0 to {N // 2 - 1}) failed: KilledWorker"), message
    view = _view(out)
    assert [k for k, _ in _kinds(out)] == ["examples", "featurevis"]  # written before the failure, whole
    assert view.stored("examples", layer=LAYER).indices.shape == (64, 9)
    assert view.stored("featurevis", layer=LAYER).shape == (64, 28, 28, 1)
    assert view.stored("report") is None
    listed = {e["file"] for e in view.store.manifest["artifacts"]}
    assert sorted(p.name for p in view.store.path.iterdir()) == sorted(["manifest.json", *listed])  # no temp files
