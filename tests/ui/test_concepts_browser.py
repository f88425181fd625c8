"""The Concepts page in a real browser: Run CRAFT, then a click on the atlas's second row opens that concept."""

from __future__ import annotations

import numpy as np
from chromium import EXCEPTION, SHOTS, served  # noqa: I001 (skips without chromium)
from playwright.sync_api import expect  # noqa: E402
from test_browser import _choose, _settled  # noqa: E402

from vizcore import concepts, models  # noqa: E402
from vizcore.data import datasets  # noqa: E402
from vizcore.inspect import evaluation  # noqa: E402
from vizcore.precompute import store as precomputed  # noqa: E402
from vizcore.present import figures  # noqa: E402

N, IMAGES = 600, 60  # the page's "Images (at most)" and "Images of the class (at most)"
TRIANGLE = 2


def _expected():
    """What the page finds: CRAFT on the first 60 triangles of its 600 shapes, called directly."""
    loaded = models.open_bundled("shapes_cnn")
    ds = datasets.make_shapes(3000, seed=1)
    pick = precomputed.pick(len(ds), ds.image_shape, loaded.spec, N)
    x = evaluation.prepare(loaded, ds.x_nhwc[pick]).x_nhwc
    idx = np.flatnonzero(ds.y[pick] == TRIANGLE)[:IMAGES]
    return concepts.craft(loaded.model, "pool2", x[idx], TRIANGLE)


def _fill(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settled(page)


def test_run_craft_and_open_a_concept_from_the_atlas(browser):
    want = _expected()
    with served(log_name="server_concepts.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/concepts?model=bundled:shapes_cnn")
        expect(page.get_by_text("Discover concepts (CRAFT)").first).to_be_visible(timeout=120_000)
        _settled(page)
        _fill(page, "Images (at most)", N)
        _choose(page, "Class", "triangle")
        _fill(page, "Images of the class (at most)", IMAGES)
        page.get_by_role("button", name="Run CRAFT").click()
        best = int(want.order[0])
        expect(page.get_by_text(f"Concept {best}: importance {want.importances[best]:.3f} (rank 1)")).to_be_visible(
            timeout=120_000
        )
        _settled(page)
        chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Concept atlas").first
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        plot = chart.locator(".js-plotly-plot").first
        shape = plot.evaluate("gd => [gd._fullLayout.yaxis.range, gd._fullLayout.xaxis.range]")
        height, width = round(shape[0][0] + 0.5), round(shape[1][1] + 0.5)
        ys, xs = figures.tile_points((height, width), want.n_concepts * 8, columns=8, pad=2)
        at = plot.evaluate(
            """(gd, p) => { const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
               return [r.left + xa._offset + xa.l2p(p[0]), r.top + ya._offset + ya.l2p(p[1])]; }""",
            [float(xs[8 + 3]), float(ys[8 + 3])],
        )  # a crop in the second row: the second most important concept
        page.mouse.click(*at)
        second = int(want.order[1])
        heading = page.get_by_text(f"Concept {second}: importance {want.importances[second]:.3f} (rank 2)")
        expect(heading).to_be_visible(timeout=60_000)
        _settled(page)
        assert page.locator(EXCEPTION).count() == 0
        page.screenshot(path=str(SHOTS / "concepts_page.png"), full_page=True)
        page.close()
