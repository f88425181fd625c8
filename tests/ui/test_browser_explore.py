"""Click to explore in a real browser: a click on the Convolution page's feature map picks that position."""

from __future__ import annotations

from test_browser import CHROMIUM, CHROMIUM_ARGS, EXCEPTION, SHOTS, _settled, start_server  # skips without chromium

from playwright.sync_api import expect, sync_playwright  # noqa: E402 (after the chromium check)


def test_clicking_the_feature_map_picks_the_position():
    proc, url, log = start_server(log_name="server_explore.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{url}/convolution?conv.layer=conv1")
            expect(page.get_by_text("value in the feature map").first).to_be_visible(timeout=120_000)
            _settled(page)
            chart = page.get_by_test_id("stPlotlyChart").first
            drag = chart.locator(".nsewdrag").first  # the plot area: x from -0.5 to 25.5, y from -0.5 (top) to 25.5
            drag.scroll_into_view_if_needed()
            box = drag.bounding_box()
            side = 26  # conv1 of the MNIST CNN: 28 - 3 + 1
            row, col = 19, 6
            page.mouse.click(box["x"] + (col + 0.5) / side * box["width"], box["y"] + (row + 0.5) / side * box["height"])
            _settled(page)
            expect(page.get_by_role("heading").filter(has_text=f"output ({row}, {col})")).to_be_visible(timeout=60_000)
            assert page.get_by_label("Row").input_value() == str(row)
            assert page.get_by_label("Column").input_value() == str(col)
            assert page.locator(EXCEPTION).count() == 0
            page.screenshot(path=str(SHOTS / "convolution_click.png"), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
