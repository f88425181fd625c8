"""Two replicas of the app (two ``streamlit run`` processes, as behind a sticky load balancer) show a deep link alike.

Each replica keeps per-user state in its own Streamlit sessions and caches only read-only models and
what is computed from them, so a link opened on either replica must show the same widget values, the
same images (byte for byte), the same figures and the same pixels (up to anti-aliasing). Uses Debian's chromium like
tests/test_browser.py, and skips (outside CI) where it is missing, like it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from chromium import EXCEPTION, SHOTS, start_server  # skips without chromium
from PIL import Image
from playwright.sync_api import Page, expect  # noqa: E402
from test_browser import _settled

LINK = "/kernels?model=bundled:lenet5&kernels.layer=conv2&kernels.filter=3"
MAIN = '[data-testid="stMain"]'


@pytest.fixture(scope="module")
def replicas():
    started = []
    try:
        for i in (1, 2):
            started.append(start_server(log_name=f"replica{i}.log"))
        yield [url for _, url, _ in started]
    finally:
        for proc, _, log in started:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def shown(page: Page) -> dict:
    """What the Kernels page shows: widget values, image bytes, figure data, text and a screenshot."""
    main = page.locator(MAIN)
    images = []
    for img in main.locator("img").all():
        src = img.get_attribute("src")
        images.append(page.request.get(src).body() if src and not src.startswith("data:") else src)
    return {
        "layer": page.get_by_role("combobox", name="Conv layer").input_value(),
        "filter": page.get_by_role("spinbutton", name="Filter").input_value(),
        "radios": {
            r.get_attribute("aria-label") or r.evaluate("e => e.closest('label').innerText"): r.is_checked()
            for r in main.get_by_role("radio").all()
        },
        "sliders": [s.get_attribute("aria-valuenow") for s in main.get_by_role("slider").all()],
        "images": images,
        "figures": page.evaluate(
            "() => [...document.querySelectorAll('.js-plotly-plot')]"
            ".map(g => JSON.stringify({data: g.data, layout: g.layout}))"
        ),
        "text": main.inner_text(),
        "pixels": np.asarray(Image.open(io.BytesIO(main.screenshot(animations="disabled"))).convert("RGB")),
    }


def open_link(browser, url: str) -> tuple[Page, dict]:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url + LINK)
    expect(page.get_by_text("Conv layer").first).to_be_visible(timeout=120_000)
    _settled(page)
    expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=60_000)
    page.wait_for_timeout(1000)  # let Plotly finish drawing
    return page, shown(page)


def test_two_replicas_serve_the_same_deep_link_identically(replicas, browser):
    first_url, second_url = replicas
    assert first_url != second_url
    page_a, a = open_link(browser, first_url)
    page_b, b = open_link(browser, second_url)
    for page in (page_a, page_b):
        assert page.locator(EXCEPTION).count() == 0
    # the link was followed (not two identical default views)
    assert (a["layer"], a["filter"]) == ("conv2", "3")
    assert "Filter 3, input channel 0: weights" in a["text"] and "16 filters of 5×5×6" in a["text"]
    assert [k for k in ("layer", "filter", "radios", "sliders", "text") if a[k] != b[k]] == []
    assert len(a["images"]) >= 1 and all(isinstance(x, bytes) and len(x) > 100 for x in a["images"])
    assert a["images"] == b["images"], "the kernel gallery's PNG bytes differ between the replicas"
    assert len(a["figures"]) == 3 and a["figures"] == b["figures"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a["pixels"]).save(SHOTS / "replica1.png")
    Image.fromarray(b["pixels"]).save(SHOTS / "replica2.png")
    assert a["pixels"].shape == b["pixels"].shape
    # chromium anti-aliases the radio buttons' circles a level apart from one page to the next; any
    # different content (a tile, a bar, a letter) is many levels apart
    step = np.abs(a["pixels"].astype(int) - b["pixels"].astype(int)).max()
    assert step <= 2, f"the main areas differ by up to {step} levels (see {SHOTS}/replica1.png and replica2.png)"
    page_a.close()
    page_b.close()
