"""The report opened in Debian's chromium with the network blocked: figures drawn, images whole, no error, and it
prints to one PDF page or more per section."""

from __future__ import annotations

from ui.chromium import SHOTS, chromium  # skips this module where /usr/bin/chromium is missing

from vizcore.report import SECTION_IDS


def test_the_file_opens_offline_draws_every_figure_and_prints(written):
    html_path = written[0]
    blocked, errors = [], []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 900})

        def route(r):
            if r.request.url.startswith(("file:", "data:")):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html_path.as_uri(), wait_until="load")
        divs = page.locator(".plotly-graph-div").count()
        page.wait_for_function(
            "n => [...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('svg.main-svg'))"
            ".length === n",
            arg=divs,
            timeout=30_000,
        )
        traces = page.eval_on_selector_all(
            ".plotly-graph-div", "ds => ds.map(d => d.querySelectorAll('.trace, .hm, .heatmaplayer image').length)"
        )
        pictures = page.eval_on_selector_all("img", "is => is.map(i => [i.complete, i.naturalWidth, i.alt])")
        boxes = page.locator("section#architecture svg.diagram rect").count()
        page.screenshot(path=str(SHOTS / "report_mnist_cnn.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=True)
    assert not blocked and not errors, (blocked, errors)
    assert divs == 4 and all(n > 0 for n in traces), traces  # confusion, faithfulness, weights, robustness
    assert len(pictures) > 20 and all(done and width > 0 for done, width, _ in pictures), pictures
    assert boxes == 10  # input and the MNIST CNN's 9 layers
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages >= len(SECTION_IDS)  # a page break before each section
