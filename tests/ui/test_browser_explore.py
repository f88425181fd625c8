"""Click to explore in a real browser: a click on the Convolution page's feature map picks that position."""

from __future__ import annotations

from chromium import EXCEPTION, SHOTS, start_server  # noqa: I001 (skips without chromium)
from playwright.sync_api import expect  # noqa: E402
from test_browser import _settled  # noqa: E402


def test_clicking_the_feature_map_picks_the_position(browser):
    proc, url, log = start_server(log_name="server_explore.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/convolution?conv.layer=conv1")
        expect(page.get_by_text("value in the feature map").first).to_be_visible(timeout=120_000)
        _settled(page)
        chart = page.get_by_test_id("stPlotlyChart").first
        chart.scroll_into_view_if_needed()
        before = page.get_by_role("heading").filter(has_text="output (").first.inner_text()
        row, col = 19, 6  # a cell of conv1's 26x26 map, away from the starting position
        assert f"output ({row}, {col})" not in before
        # the cell's centre on screen, from Plotly's own axes (data -> pixels)
        x, y = chart.locator(".js-plotly-plot").first.evaluate(
            "(gd, [row, col]) => { const r = gd.getBoundingClientRect(), "
            """xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
               return [r.left + xa._offset + xa.l2p(col), r.top + ya._offset + ya.l2p(row)]; }""",
            [row, col],
        )
        page.mouse.click(x, y)
        _settled(page)
        expect(page.get_by_role("heading").filter(has_text=f"output ({row}, {col})")).to_be_visible(timeout=60_000)
        assert page.get_by_label("Row", exact=True).input_value() == str(row)
        assert page.get_by_label("Column", exact=True).input_value() == str(col)
        assert page.locator(EXCEPTION).count() == 0
        page.screenshot(path=str(SHOTS / "convolution_click.png"), full_page=True)
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_a_click_on_the_image_occludes_a_square(browser):
    proc, url, log = start_server(log_name="server_occlude.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/attribution")
        expect(page.get_by_text("Explain the class").first).to_be_visible(timeout=120_000)
        _settled(page)
        page.get_by_role("tab", name="Occlude by hand").click()
        _settled(page)
        metric = page.get_by_test_id("stMetric").filter(has_text="P(")
        expect(metric).to_be_visible(timeout=60_000)
        chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Click or drag").first
        chart.scroll_into_view_if_needed()
        x, y = chart.locator(".js-plotly-plot").first.evaluate(
            """(gd) => { const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
               return [r.left + xa._offset + xa.l2p(14), r.top + ya._offset + ya.l2p(14)]; }"""
        )
        page.mouse.click(x, y)
        _settled(page)
        expect(chart).to_contain_text("rows 12–15, columns 12–15", timeout=60_000)  # a 4-pixel square around (14, 14)
        assert page.locator(EXCEPTION).count() == 0
        page.screenshot(path=str(SHOTS / "attribution_occlude.png"), full_page=True)
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
