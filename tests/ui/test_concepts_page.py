"""AppTest of the Concepts page on the shapes CNN: what it shows against direct calls of vizcore.concepts."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image
from streamlit.testing.v1 import AppTest

from vizcore import concepts, models
from vizcore.data import archive, datasets
from vizcore.inspect import evaluation
from vizcore.models import blocks
from vizcore.precompute import store as precomputed

TIMEOUT = 240
N = 600  # images the page takes: evenly spaced over the 3,000 shapes it generates (seed 1)
TRIANGLE = 2


@pytest.fixture(scope="module")
def page_data():
    """The shapes CNN and the page's images in its range, their labels and dataset indices."""
    loaded = models.open_bundled("shapes_cnn")
    ds = datasets.make_shapes(3000, seed=1)
    pick = precomputed.pick(len(ds), ds.image_shape, loaded.spec, N)
    return loaded.model, evaluation.prepare(loaded, ds.x_nhwc[pick]).x_nhwc, ds.y[pick], pick


def _open() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "bundled:shapes_cnn"})
    at.switch_page("pages/concepts.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="concepts.limit").set_value(N).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _figure(at: AppTest, key_part: str) -> dict:
    """The Plotly spec of the chart whose element id names ``key_part``."""
    chart = next(c for c in at.get("plotly_chart") if key_part in c.proto.id)
    return json.loads(chart.proto.spec)


def _values(v) -> np.ndarray:
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def test_discover_shows_what_a_direct_craft_call_finds(page_data):
    model, x, y, pick = page_data
    at = _open()
    assert at.selectbox(key="concepts.layer").value == "pool2"  # the deepest non-negative layer
    at.selectbox(key="concepts.class").set_value(TRIANGLE)
    at.number_input(key="concepts.images").set_value(60)
    at.slider(key="concepts.n").set_value(5).run()
    assert not at.get("plotly_chart"), "CRAFT ran before Run was pressed"
    assert any("CRAFT: 1,500 crops and 60 images" in c.value for c in at.caption)  # the cost, stated before
    at.button(key="concepts.craft.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    idx = np.flatnonzero(y == TRIANGLE)[:60]
    want = concepts.craft(model, "pool2", x[idx], TRIANGLE, n_concepts=5)
    bars = _figure(at, "concepts.bars")["data"][0]
    np.testing.assert_allclose(_values(bars["x"]), want.importances[want.order], rtol=1e-4, atol=1e-6)
    best = int(want.order[0])
    assert at.selectbox(key="concepts.concept").value == best
    caption = next(c for img in at.get("image") for c in img.captions if "best first: " in c)
    shown = caption.split("best first: ", 1)[1].split(",")
    assert [int(s.strip().lstrip("#")) for s in shown] == [int(pick[idx[i]]) for i, _ in want.crops[best]]
    links = [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert ("filters", "fv.layer=conv2_2") in links  # pool2's channels are conv2_2's
    top = [q for page, q in links if page == "dataset"]
    assert top == [f"layer=pool2&ch={int(k)}" for k in want.channels(best, 3)]
    second = int(want.order[1])
    at.selectbox(key="concepts.concept").set_value(second).run()  # open another concept
    assert at.subheader[0].value.startswith(f"Concept {second}: importance {want.importances[second]:.3f} (rank 2)")
    assert {b.proto.label for b in at.get("download_button")} == {"Concepts (CSV)", "Atlas (PNG)", "Heatmaps (PNG)"}


def test_test_a_concept_shows_what_a_direct_tcav_sweep_gives(page_data):
    model, x, y, _ = page_data
    at = _open()
    at.radio(key="concepts.view").set_value("test").run()
    at.radio(key="concepts.concept_source").set_value("class").run()
    at.selectbox(key="concepts.concept_class").set_value(TRIANGLE)
    at.number_input(key="concepts.concept_n").set_value(30)
    at.number_input(key="concepts.random").set_value(60)
    at.number_input(key="concepts.per_class").set_value(30)
    at.slider(key="concepts.runs").set_value(5).run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="concepts.tcav.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    used = np.flatnonzero(y == TRIANGLE)[:30]
    pool = np.setdiff1d(np.arange(N), used)
    xr = x[np.sort(np.random.default_rng(0).choice(pool, 60, replace=False))]
    sets = [np.setdiff1d(np.flatnonzero(y == c), used)[:30] for c in range(3)]
    layer = blocks.default_target_layer(model)
    want = concepts.sweep(model, [layer], x[used], xr, [x[s] for s in sets], [0, 1, 2], runs=5)[layer]
    text = "\n".join(m.value for m in at.markdown)
    for name, t in zip(("circle", "square", "triangle"), want):
        verdict = "significant" if t.significant else "not significant"
        assert f"**{name}**: TCAV {t.score:.2f} against random {np.mean(t.random_scores):.2f}" in text
        assert f"{verdict} (p = {t.p_value:.2g}" in text
    assert want[2].score == 1.0 and want[2].significant  # triangles as the concept, for triangle
    spec = _figure(at, "concepts.per_class_result")
    concept_trace = next(tr for tr in spec["data"] if tr["name"] == "concept")
    np.testing.assert_allclose(_values(concept_trace["y"]), np.concatenate([t.scores for t in want]))
    at.selectbox(key="concepts.sweep_class").set_value(TRIANGLE)
    at.button(key="concepts.sweep.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sweep = concepts.sweep(model, list(blocks.block_outputs(model)), x[used], xr, [x[sets[2]]], [TRIANGLE], runs=5)
    text = "\n".join(m.value for m in at.markdown)
    for layer_name, (t,) in sweep.items():
        assert f"**{layer_name}**: TCAV {t.score:.2f} against random {np.mean(t.random_scores):.2f}" in text


def _triangles_zip(n: int = 40) -> bytes:
    """A ZIP of n triangle PNGs (shapes of another seed than the page's), in a folder named after the concept."""
    shapes = datasets.make_shapes(4 * n, seed=9)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, i in enumerate(np.flatnonzero(shapes.y == TRIANGLE)[:n]):
            png = io.BytesIO()
            Image.fromarray(shapes.pixels(int(i))).save(png, format="PNG")
            zf.writestr(f"triangles/{k:03d}.png", png.getvalue())
    return buf.getvalue()


def test_a_zip_of_concept_images_gives_a_significant_score(page_data):
    model, x, y, _ = page_data
    data = _triangles_zip()
    at = _open()
    at.radio(key="concepts.view").set_value("test").run()
    at.file_uploader(key="concepts.concept_zip").set_value(("triangles.zip", data, "application/zip")).run()
    at.number_input(key="concepts.random").set_value(60)
    at.number_input(key="concepts.per_class").set_value(20)
    at.slider(key="concepts.runs").set_value(5).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("40 concept images ('triangles')" in c for img in at.get("image") for c in img.captions)
    at.button(key="concepts.tcav.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    loaded = models.open_bundled("shapes_cnn")
    concept = evaluation.prepare(loaded, archive.load_images_zip(data).x_nhwc).x_nhwc
    xr = x[np.sort(np.random.default_rng(0).choice(N, 60, replace=False))]
    sets = [x[np.flatnonzero(y == c)[:20]] for c in range(3)]
    layer = blocks.default_target_layer(model)
    want = concepts.sweep(model, [layer], concept, xr, sets, [0, 1, 2], runs=5)[layer]
    assert want[TRIANGLE].score >= 0.9 and want[TRIANGLE].significant
    text = "\n".join(m.value for m in at.markdown)
    for name, t in zip(("circle", "square", "triangle"), want):
        assert f"**{name}**: TCAV {t.score:.2f} against random {np.mean(t.random_scores):.2f}" in text
    line = text.split("**triangle**", 1)[1].split("\n")[0]
    assert "significant (p = " in line and "not significant" not in line
