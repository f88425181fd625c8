"""The Dataset view in the engine: DataView computes what the store lacks, reads what it holds, under the
command line's keys; sharded pieces merge to exactly one pass."""

from __future__ import annotations

import numpy as np
import pytest

from vizcore import featurevis as fv
from vizcore.data import datasets
from vizcore.errors import SpecError
from vizcore.inspect import embedding, evaluation, examples
from vizcore.precompute import store as precomputed
from vizcore.precompute import view as view_module
from vizcore.precompute.cli import main
from vizcore.precompute.view import DataView

N = 90  # images, evenly spaced over the 5,000 bundled digits
LAYER = "conv2"


class Counting:
    """Counts the view's computations (every kind goes through ``DataView.compute``)."""

    def __init__(self, monkeypatch) -> None:
        self.kinds: list[str] = []
        real = DataView.compute

        def compute(view, kind, **params):
            self.kinds.append(kind)
            return real(view, kind, **params)

        monkeypatch.setattr(DataView, "compute", compute)


class Sequential:
    """A runner that computes ``shards`` pieces one after another here: the cluster's split, without a cluster."""

    def __init__(self, shards: int) -> None:
        self.shards, self.pieces = shards, []

    def map(self, view, kind, pieces, params):
        self.pieces.append((kind, tuple(pieces)))
        return [view.part(kind, p, **params) for p in pieces]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """The command line's store of the MNIST CNN on N digits: examples, filters and report of conv2."""
    out = tmp_path_factory.mktemp("precomputed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fv.MAX_STEPS_ENV, "4")
        argv = ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--limit", str(N)]
        store = main([*argv, "--layers", LAYER, "--steps", "cards", "evaluation", "--out", str(out)])
    return store, out


def test_the_view_is_the_pages_choice_of_images_keys_and_labels():
    ds = datasets.load_mnist_sample()
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", N)
    assert view.key == f"mnist_sample:{N}" and view.name == "mnist_sample" and len(view) == N and view.total == len(ds)
    np.testing.assert_array_equal(view.pick, np.linspace(0, len(ds) - 1, N).astype(int))
    np.testing.assert_array_equal(view.y, ds.y[view.pick])  # the bundled CNN's classes are the digits
    x = np.rint(np.asarray(ds.x_nhwc[view.pick]) * 255).astype(np.float32) / 255.0  # 'unit' range of uint8 pixels
    np.testing.assert_array_equal(view.x_nhwc, x)
    assert view.opened_from == ("bundled:mnist_cnn", "mnist_sample", N) and view.k == 9
    photos = DataView.open(view.loaded, "photos", 10)
    assert not photos.labels_fit and photos.class_names == photos.dataset.class_names  # not the model's classes
    with pytest.raises(SpecError, match="not the model's"):
        photos.get("report")
    with pytest.raises(SpecError, match="Unknown dataset"):
        DataView.open(view.loaded, "imagenet", 10)


def test_get_computes_when_the_store_is_empty(tmp_path, monkeypatch):
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", N, base=tmp_path)
    assert view.store is None
    counted = Counting(monkeypatch)
    ex = view.get("examples", layer=LAYER)
    want = examples.top_examples(view.loaded.model, LAYER, view.x_nhwc, k=9)  # the function, called directly
    for name in ("indices", "scores", "boxes", "positions"):
        np.testing.assert_array_equal(getattr(ex, name), getattr(want, name))
    rep = view.get("report")
    direct = evaluation.report(view.loaded.model, view.x_nhwc, view.y, view.loaded.class_names)
    np.testing.assert_array_equal(rep.confusion, direct.confusion)
    assert rep.top_k == direct.top_k
    assert counted.kinds == ["examples", "report"]
    assert view.store is None  # get writes nothing
    view.get("report")
    assert counted.kinds == ["examples", "report", "report"]  # nothing stored: computed again


def test_get_reads_the_store_when_it_holds_the_result(tmp_path, monkeypatch):
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", N, base=tmp_path)
    saved = view.save("examples", layer=LAYER)
    assert view.store.has("examples", layer=LAYER)
    counted = Counting(monkeypatch)
    again = DataView.open("bundled:mnist_cnn", "mnist_sample", N, base=tmp_path)
    found = again.get("examples", layer=LAYER)
    assert counted.kinds == []  # read, not computed
    np.testing.assert_array_equal(found.indices, saved.indices)
    np.testing.assert_array_equal(found.scores, saved.scores)
    other = DataView.open("bundled:mnist_cnn", "mnist_sample", N - 1, base=tmp_path)  # other images: other key
    other.get("examples", layer=LAYER)
    assert counted.kinds == ["examples"]


def test_the_view_reads_what_the_command_line_wrote_under_the_same_keys(cli_store, monkeypatch):
    store, out = cli_store
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", N, base=out)
    assert view.store.path == store.path == precomputed.Store.folder("bundled:mnist_cnn", f"mnist_sample:{N}", out)
    kinds = sorted((e["kind"], tuple(sorted(e["params"].items()))) for e in store.manifest["artifacts"])
    assert kinds == [("examples", (("layer", LAYER),)), ("featurevis", (("layer", LAYER),)), ("report", ())]
    counted = Counting(monkeypatch)
    for kind, params in kinds:
        assert view.get(kind, **dict(params)) is not None
    assert counted.kinds == []
    np.testing.assert_array_equal(view.get("featurevis", layer=LAYER), store.get("featurevis", layer=LAYER))
    assert view.get("report").accuracy == store.get("report").accuracy


def test_sharded_pieces_merge_to_exactly_one_pass(monkeypatch):
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "3")
    monkeypatch.setattr(view_module, "FV_BATCH", 24)
    one = DataView.open("bundled:mnist_cnn", "mnist_sample", N)
    runner = Sequential(shards=4)
    sharded = one.on(runner)
    assert len(sharded.rows(0, 5)) == 5
    for kind in ("examples", "features"):
        a, b = one.compute(kind, layer=LAYER), sharded.compute(kind, layer=LAYER)
        for name in ("indices", "scores", "boxes", "positions") if kind == "examples" else ():
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        if kind == "features":
            np.testing.assert_array_equal(a, b)
    a, b = one.compute("report"), sharded.compute("report")
    np.testing.assert_array_equal(a.confusion, b.confusion)
    np.testing.assert_array_equal(a.evaluation.probabilities, b.evaluation.probabilities)
    np.testing.assert_array_equal(a.mistakes(), b.mistakes())
    parts = [one.part("report", p) for p in runner.pieces[-1][1]]
    np.testing.assert_array_equal(sum(p.confusion for p in parts), a.confusion)  # confusion counts add
    bounds = runner.pieces[0][1]
    assert len(bounds) == 4 and bounds[0][0] == 0 and bounds[-1][1] == N  # four shards of rows, end to end
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])) and {hi - lo for lo, hi in bounds} == {22, 23}
    fa, fb = one.compute("featurevis", layer=LAYER), sharded.compute("featurevis", layer=LAYER)
    assert fb.shape == (64, 28, 28, 1) and runner.pieces[-1][1] == ((0, 24), (24, 48), (48, 64))
    np.testing.assert_array_equal(fa, fb)
    pa, pb = one.compute("embedding", layer="fc", method="PCA"), sharded.compute("embedding", layer="fc", method="PCA")
    feats = embedding.layer_features(one.loaded.model, "fc", one.x_nhwc)
    np.testing.assert_allclose(pa.xy, embedding.project(feats, "PCA"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pb.xy, pa.xy, rtol=1e-5, atol=1e-5)


def test_merged_top_k_breaks_ties_as_one_pass_does():
    view = DataView.open("bundled:mnist_cnn", "mnist_sample", 30)
    x = np.concatenate([view.x_nhwc, view.x_nhwc])  # every image twice: each score is tied with its twin's
    model = view.loaded.model
    whole = examples.top_examples(model, LAYER, x, k=9)
    assert np.any(np.isin(whole.indices, np.arange(30, 60)))  # some twins make the top 9 too
    for cut in (7, 30, 41):
        parts = [examples.top_examples(model, LAYER, x[:cut], k=9), examples.top_examples(model, LAYER, x[cut:], k=9)]
        merged = examples.merge(parts, [0, cut], 9)
        for name in ("indices", "scores", "boxes", "positions"):
            np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    ties = whole.scores[:, :-1] == whole.scores[:, 1:]
    assert ties.any() and np.all(whole.indices[:, :-1][ties] < whole.indices[:, 1:][ties])  # the lower index first
