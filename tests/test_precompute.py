"""Precompute once, serve many: the CLI saves what the Dataset view's functions return, and the page uses it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import featurevis as fv
from vizcore import models
from vizcore.data import datasets
from vizcore.featurevis import atlas
from vizcore.inspect import embedding, evaluation, examples
from vizcore.models import graph
from vizcore.precompute import store as precomputed
from vizcore.precompute import view
from vizcore.precompute.cli import main

N = 120  # images: evenly spaced over the 5,000 bundled digits
LAYER = "conv2"
DEFAULT_EMB = embedding.default_layer(models.open_bundled("mnist_cnn").model)  # the page's and the CLI's default
GRID, STEPS = atlas.defaults(models.open_bundled("mnist_cnn").spec)  # the atlas section's defaults


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The CLI run once on the bundled MNIST CNN into a fresh cache root; (store, loaded, x, y, pick)."""
    out = tmp_path_factory.mktemp("precomputed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fv.MAX_STEPS_ENV, "6")
        mp.setattr(view, "FV_BATCH", 24)  # 64 filters in three optimizations
        store = main(
            [
                "--model",
                "bundled:mnist_cnn",
                "--dataset",
                "mnist_sample",
                "--limit",
                str(N),
                "--layers",
                LAYER,
                "--out",
                str(out),
            ]
        )
    loaded = models.open_bundled("mnist_cnn")
    ds = datasets.load_mnist_sample()
    pick = np.linspace(0, len(ds) - 1, N).astype(int)  # the page's choice, written out here
    x = np.rint(np.asarray(ds.x_nhwc[pick]) * 255).astype(np.float32) / 255.0  # the 'unit' range of uint8 pixels
    return store, loaded, x, ds.y[pick], pick


def test_the_folder_is_keyed_as_the_page_keys_it(saved):
    store, loaded, *_ = saved
    assert store.path == precomputed.Store.folder("bundled:mnist_cnn", f"mnist_sample:{N}", store.path.parent.parent)
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["model"] == loaded.key and manifest["dataset"] == f"mnist_sample:{N}" and manifest["images"] == N
    kinds = sorted((e["kind"], tuple(sorted(e["params"].items()))) for e in manifest["artifacts"])
    assert kinds == [
        (
            "atlas",
            (
                ("grid", GRID),
                ("layer", DEFAULT_EMB),
                ("method", "PCA"),
                ("min_points", atlas.MIN_POINTS),
                ("steps", STEPS),
            ),
        ),
        ("embedding", (("layer", DEFAULT_EMB), ("method", "PCA"))),
        ("examples", (("layer", LAYER),)),
        ("featurevis", (("layer", LAYER),)),
        ("report", ()),
    ]
    assert "keras" in manifest["versions"]
    assert sorted(p.name for p in store.path.iterdir()) == sorted(
        ["manifest.json", *(e["file"] for e in manifest["artifacts"])]
    )


def test_saved_artifacts_equal_what_the_functions_return(saved):
    store, loaded, x, y, _ = saved
    again = precomputed.Store.find("bundled:mnist_cnn", f"mnist_sample:{N}", store.path.parent.parent)
    ex, want = again.get("examples", layer=LAYER), examples.top_examples(loaded.model, LAYER, x, k=9)
    for name in ("indices", "scores", "boxes", "positions"):
        np.testing.assert_array_equal(getattr(ex, name), getattr(want, name))
    assert ex.layer == want.layer == LAYER
    rep, direct = again.get("report"), evaluation.report(loaded.model, x, y, loaded.class_names)
    np.testing.assert_array_equal(rep.confusion, direct.confusion)
    np.testing.assert_allclose(rep.evaluation.probabilities, direct.evaluation.probabilities, rtol=1e-6)
    np.testing.assert_array_equal(rep.mistakes(), direct.mistakes())
    np.testing.assert_array_equal(rep.cell(4, 9), direct.cell(4, 9))
    assert rep.accuracy == direct.accuracy and rep.top_k == direct.top_k
    assert rep.evaluation.class_names == loaded.class_names
    np.testing.assert_array_equal(rep.precision, direct.precision)
    proj = again.get("embedding", layer=DEFAULT_EMB, method="PCA")
    feats = embedding.layer_features(loaded.model, DEFAULT_EMB, x)
    np.testing.assert_allclose(proj.xy, embedding.project(feats, "PCA"), rtol=1e-5, atol=1e-5)
    assert proj.features == feats.shape[1] > 2
    assert proj.variance == pytest.approx(float(embedding.explained_variance(feats).sum()))
    assert again.get("examples", layer="conv1") is None  # not asked for


def test_saved_atlas_equals_the_atlas_the_page_runs(saved, monkeypatch):
    store, loaded, x, y, _ = saved
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "6")
    xy = store.get("embedding", layer=DEFAULT_EMB, method="PCA").xy
    found = store.get("atlas", layer=DEFAULT_EMB, method="PCA", grid=GRID, min_points=atlas.MIN_POINTS, steps=STEPS)
    predicted = loaded.model.predict(x, verbose=0).argmax(axis=1)
    want = atlas.atlas(
        loaded,
        DEFAULT_EMB,
        x,
        grid=GRID,
        coords=xy,
        labels=y,
        predicted=predicted,
        class_names=loaded.class_names,
        steps=STEPS,
    )
    assert isinstance(found, atlas.Atlas) and found.layer == want.layer and found.grid == GRID
    assert found.class_names == loaded.class_names
    for name in ("cell_of", "rows", "cols", "counts", "dominant"):
        np.testing.assert_array_equal(getattr(found, name), getattr(want, name))
    np.testing.assert_allclose(found.correct, want.correct)
    np.testing.assert_allclose(found.images_nhwc.astype(int), want.images_nhwc.astype(int), atol=2)


def test_batched_synthesis_equals_the_pages_one_filter_at_a_time(saved, monkeypatch):
    store, loaded, *_ = saved
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "6")
    images = store.get("featurevis", layer=LAYER)
    assert images.shape == (64, 28, 28, 1) and images.dtype == np.uint8
    for ch in (5, 50):  # in the first and the third optimization
        one = fv.optimize(loaded, fv.Channel(LAYER), [ch], seed=0)  # what the page's button computes
        np.testing.assert_allclose(
            images[ch].astype(int), fv.to_uint8(one.images_nhwc, one.input_range)[0].astype(int), atol=2
        )


def test_pick_is_evenly_spaced_and_bounded_by_memory():
    spec = models.open_bundled("mnist_cnn").spec
    np.testing.assert_array_equal(precomputed.pick(5000, (28, 28, 1), spec, N), np.linspace(0, 4999, N).astype(int))
    np.testing.assert_array_equal(precomputed.pick(50, (28, 28, 1), spec, N), np.arange(50))
    most = int(precomputed.MEMORY_BUDGET // (224 * 224 * 3 * 5))  # float32 for the model + uint8 for display
    assert len(precomputed.pick(50_000, (32, 32, 3), graph.InputSpec(224, 224, 3), 20_000)) == most
    assert (
        len(precomputed.pick(50_000, (224, 224, 3), graph.InputSpec(None, None, 3), 20_000)) == most
    )  # any size: the images' own


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "report.npz"
    precomputed.write_atomic(target, b"old")

    def refuse(src, dst):
        assert os.path.getsize(src) == 3  # the new bytes were written, to a temporary file
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        precomputed.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.npz"]


def test_a_damaged_artifact_reads_as_missing(saved, tmp_path):
    store = precomputed.Store.create("bundled:mnist_cnn", "mnist_sample:10", tmp_path)
    path = store.put("report", saved[0].get("report"))
    assert store.get("report").accuracy == saved[0].get("report").accuracy
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a full disk outside write_atomic
    assert store.has("report") and store.get("report") is None  # the page computes it instead


def test_an_artifact_that_fails_to_encode_writes_nothing(tmp_path):
    store = precomputed.Store.create("bundled:mnist_cnn", "mnist_sample:10", tmp_path)

    def broken(_value):
        raise ValueError("cannot encode")

    precomputed.register(precomputed.Kind("broken", broken, dict))
    try:
        with pytest.raises(ValueError):
            store.put("broken", object(), layer="x")
    finally:
        del precomputed.KINDS["broken"]
    assert not store.has("broken", layer="x")
    assert sorted(p.name for p in store.path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--model", "bundled:mnist_cnn", "--dataset", "imagenet"],
            "Unknown dataset 'imagenet': give one of mnist_sample, shapes, photos, "
            "keras:mnist, keras:fashion_mnist, keras:cifar10 "
            "or a .zip of class folders.",
        ),
        (["--model", "bundled:nope", "--dataset", "mnist_sample"], "Unknown model 'bundled:nope': give a model file"),
        (
            ["--model", "bundled:mnist_cnn", "--dataset", "mnist_sample", "--layers", "dense"],
            "Layer 'dense' is not offered by the Dataset view for this model",
        ),
    ],
)
def test_bad_arguments_exit_with_one_sentence(argv, message, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path)])
    assert str(exc.value).startswith(message)
    assert str(exc.value).count(". ") == 0 and str(exc.value).endswith(".")
    assert not any(tmp_path.iterdir())  # nothing written


def proj_features(store) -> int:
    return store.get("embedding", layer=DEFAULT_EMB, method="PCA").features


def test_the_page_shows_the_precomputed_galleries_without_computing(saved, monkeypatch):
    store, loaded, x, y, pick = saved
    monkeypatch.setenv(precomputed.ROOT_ENV, str(store.path.parent.parent))

    def refuse(*_args, **_kwargs):
        raise AssertionError("computed although precomputed")

    for module, name in (
        (examples, "top_examples"),
        (evaluation, "report"),
        (embedding, "layer_features"),
        (fv, "optimize"),
        (atlas, "atlas"),
    ):
        monkeypatch.setattr(module, name, refuse)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.query_params.update({"model": "bundled:mnist_cnn", "layer": LAYER, "ch": "5"})
    at.switch_page("pages/dataset.py")
    at.session_state["dataset.limit"] = N
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    note = f"Precomputed on {store.created} by python -m vizcore.precompute."
    assert [c.value for c in at.caption].count(note) == 1  # once, for the examples and the synthesis
    ex = store.get("examples", layer=LAYER)
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("Images: #" + f"{pick[ex.indices[5][0]]} ") for c in captions)
    assert "Gradient ascent" in captions  # the saved synthesis, no button
    at.radio(key="dataset.view").set_value("evaluate").run()
    assert not at.exception, [e.value for e in at.exception]
    assert note in [c.value for c in at.caption]
    accuracy = float(np.mean(loaded.model.predict(x, verbose=0).argmax(axis=1) == y))
    assert next(m for m in at.metric if m.label == "Accuracy").value == f"{accuracy:.2%}"
    at.radio(key="dataset.view").set_value("embedding").run()
    assert not at.exception, [e.value for e in at.exception]
    assert note in [c.value for c in at.caption]
    shown = [c for img in at.get("image") for c in img.captions if c.startswith("Activation atlas")]
    cells = len(
        store.get("atlas", layer=DEFAULT_EMB, method="PCA", grid=GRID, min_points=atlas.MIN_POINTS, steps=STEPS).rows
    )
    assert shown and shown[0].startswith(
        f"Activation atlas of {DEFAULT_EMB}: {cells} cells of {GRID}×{GRID}"
    )  # no Run pressed
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"].startswith(
        f"PCA of {DEFAULT_EMB} ({proj_features(store)} features)"
    )
