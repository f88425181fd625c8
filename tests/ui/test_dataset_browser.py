"""The Dataset view in a real browser: a click on a confusion cell opens its images with both Grad-CAMs,
a click on a point of the embedding shows that image."""

from __future__ import annotations

import numpy as np
from chromium import EXCEPTION, SHOTS, served  # noqa: I001 (skips without chromium)
from playwright.sync_api import expect  # noqa: E402
from test_browser import _settled  # noqa: E402

from vizcore import models  # noqa: E402
from vizcore.data import datasets  # noqa: E402
from vizcore.inspect import evaluation  # noqa: E402

N = 300  # images the page uses (its own "Images (at most)" box)


def _page_images():
    """The page's N images (evenly spaced over the bundled digits) and what the model makes of them."""
    loaded = models.open_bundled("mnist_cnn")
    full = datasets.load_mnist_sample()
    pick = np.linspace(0, len(full) - 1, N).astype(int)
    x = evaluation.prepare(loaded, full.x_nhwc[pick]).x_nhwc
    y = evaluation.labels_for(full.class_names, loaded.class_names, full.y[pick])
    return loaded, pick, evaluation.report(loaded.model, x, y, loaded.class_names)


def _screen_xy(chart, cell: tuple[int, int] | None = None):
    """Screen coordinates of a category cell (column, row) or of every point of every trace, from Plotly's own axes."""
    return chart.locator(".js-plotly-plot").first.evaluate(
        """(gd, cell) => { const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
           const at = (x, y) => [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)];
           if (cell) return at(cell[0], cell[1]);
           return gd._fullData.map(t => Array.from(t.x, (x, i) => at(xa.d2l(x), ya.d2l(t.y[i])))); }""",
        cell,
    )


def _idle(page) -> None:
    """The script run is over: no running indicator and no element left stale from the run before."""
    _settled(page)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=90_000)
    _settled(page)


def test_confusion_cell_and_embedding_point(browser):
    loaded, pick, rep = _page_images()
    names = loaded.class_names
    off = rep.confusion - np.diag(np.diag(rep.confusion))
    t, p = np.unravel_index(np.argmax(off), off.shape) if off.any() else (0, 0)  # the cell with most mistakes
    count, shown = int(rep.confusion[t, p]), min(6, int(rep.confusion[t, p]))
    assert count > 0
    with served(log_name="server_dataset.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/dataset?model=bundled:mnist_cnn&dataset.view=Evaluate")
        expect(page.get_by_text("Confusion matrix").first).to_be_visible(timeout=120_000)
        _settled(page)
        box = page.get_by_label("Images (at most)")
        box.fill(str(N))
        box.press("Enter")
        expect(page.get_by_text(f"{N} images of 5,000").first).to_be_visible(timeout=60_000)
        _idle(page)  # the confusion matrix of these N images, not the one before

        chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Confusion matrix").first
        chart.scroll_into_view_if_needed()
        x, y = _screen_xy(chart, cell=(int(p), int(t)))
        page.mouse.click(x, y)
        caption = f"{count} image(s) of {names[t]} predicted as {names[p]}"
        expect(page.get_by_text(caption).first).to_be_visible(timeout=60_000)
        _idle(page)
        cams = page.get_by_test_id("stImageCaption")
        expect(cams.filter(has_text=f"Grad-CAM {names[p]}")).to_have_count(shown, timeout=60_000)
        expect(cams.filter(has_text=f"Grad-CAM {names[t]}")).to_have_count(shown)
        first = rep.cell(int(t), int(p))[0]  # the most confident of them comes first
        expect(cams.filter(has_text=f"#{pick[first]} · p=").first).to_be_visible()
        assert page.locator(EXCEPTION).count() == 0
        cams.filter(has_text=f"Grad-CAM {names[p]}").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "dataset_confusion_click.png"), full_page=True)

        page.get_by_test_id("stRadio").filter(has_text="View").get_by_text("Embedding").click()
        expect(page.get_by_text("Click a point to see its image").first).to_be_visible(timeout=60_000)
        _idle(page)
        chart = page.get_by_test_id("stPlotlyChart").filter(has_text="PCA of").first
        expect(chart).to_be_visible(timeout=60_000)
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        traces = _screen_xy(chart)
        xy = np.array([pt for tr in traces for pt in tr])
        where = [(c, i) for c, tr in enumerate(traces) for i in range(len(tr))]
        gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
        lone = int(np.argmax(gaps.min(axis=1)))  # the point farthest from any other: a click cannot miss it
        assert gaps[lone].min() > 6, "no point stands alone enough to click"
        hover = chart.locator(".js-plotly-plot").first.evaluate(
            "(gd, [c, i]) => gd._fullData[c].text[i]", list(where[lone])
        )
        page.mouse.click(*xy[lone])
        expect(cams.filter(has_text=hover)).to_have_count(1, timeout=60_000)  # that one image, captioned
        index = int(hover.split(" ")[0][1:])
        assert hover.split(" · ")[1] == names[datasets.load_mnist_sample().y[index]]
        assert page.locator(EXCEPTION).count() == 0
        cams.filter(has_text=hover).scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "dataset_embedding_click.png"), full_page=True)
        page.close()
