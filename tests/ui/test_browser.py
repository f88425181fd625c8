"""A real browser (Debian chromium, driven by Playwright) against the running app.

Screenshots go to tests/artifacts/ (or $CONVLENS_SCREENSHOTS). Chromium is Debian's
/usr/bin/chromium; Playwright never downloads a browser. In CI a missing chromium is a failure.
"""

from __future__ import annotations

import urllib.parse

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, EXCEPTION, SHOTS, chromium, served, start_server  # noqa: E402,F401  (skips without chromium)
from playwright.sync_api import Page, expect  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with served() as url:
        yield url


def _settled(page: Page) -> None:
    """Wait until the script run has finished (Streamlit shows a running indicator meanwhile)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=90_000)


def _choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option).first.click()
    _settled(page)


def test_model_page_switch_and_bad_upload(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    expect(page.get_by_text("Parameters").first).to_be_visible(timeout=120_000)
    _settled(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("MNIST CNN")
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "model_page.png"), full_page=True)

    page.get_by_text("Preset (untrained)").click()
    _settled(page)
    _choose(page, "Preset", "LeNet-5")
    expect(page.get_by_test_id("stMetric").filter(has_text="Parameters")).to_contain_text("61,706", timeout=60_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("LeNet-5")
    page.get_by_role("tab", name="Architecture").click()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SHOTS / "model_architecture.png"), full_page=True)
    assert page.locator(EXCEPTION).count() == 0

    page.get_by_text("Upload a file").click()
    _settled(page)
    page.get_by_test_id("stFileUploader").filter(has_text="A model:").locator('input[type="file"]').set_input_files(
        files=[{"name": "notes.keras", "mimeType": "application/octet-stream", "buffer": b"not a model, just text"}]
    )
    expect(page.get_by_test_id("stAlert").filter(has_text="not a Keras model file")).to_be_visible(timeout=60_000)
    _settled(page)
    assert page.locator(EXCEPTION).count() == 0
    expect(page.get_by_test_id("stSidebar")).to_contain_text("LeNet-5")  # the working model is kept
    page.screenshot(path=str(SHOTS / "model_bad_upload.png"), full_page=True)
    page.close()


PAGES = [  # (navigation label, text that proves the page rendered, one interaction)
    ("Builder", "Before building", lambda page: page.get_by_role("button", name="Add", exact=True).click()),
    ("Kernels", "Conv layer", lambda page: page.get_by_text("Mean over input channels").click()),
    ("Activations", "Overview", lambda page: page.get_by_role("tab", name="One layer").click()),
    ("Convolution", "value in the feature map", None),
    ("Attribution", "Explain the class", lambda page: page.get_by_role("tab", name="Layer sweep").click()),
    ("Robustness", "Perturbation ×", lambda page: page.get_by_role("tab", name="Over a dataset").click()),
    (
        "Filters",
        "Maximize",
        lambda page: (
            page.get_by_role("button", name="Visualize").click(),
            expect(page.get_by_text("Row by row").first).to_be_visible(timeout=120_000),
        ),
    ),
]


def open_page(page: Page, label: str, tries: int = 3) -> None:
    """Click a page in the sidebar menu until the address shows it (a click during a rerun can be lost)."""
    path = "/" + label.lower().replace(" ", "_")
    for _ in range(tries):
        page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()
        try:
            page.wait_for_url(lambda url: urllib.parse.urlparse(url).path.endswith(path), timeout=20_000)
            return
        except PlaywrightTimeout:
            _settled(page)
    raise AssertionError(f"the menu did not open {label} after {tries} clicks")


def test_tour_of_the_explorer_pages(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    expect(page.get_by_text("Parameters").first).to_be_visible(timeout=120_000)
    _settled(page)
    for label, marker, interact in PAGES:
        open_page(page, label)
        expect(page.get_by_text(marker).first).to_be_visible(timeout=120_000)
        _settled(page)
        if interact is not None:
            interact(page)
            _settled(page)
        assert page.locator(EXCEPTION).count() == 0, f"exception on the {label} page"
        page.screenshot(path=str(SHOTS / f"{label.lower()}_page.png"), full_page=True)
    page.close()


def _progress_text(page: Page) -> str:
    bar = page.get_by_test_id("stProgress")
    return bar.first.inner_text() if bar.count() else ""


def test_training_survives_widget_changes_and_stop_keeps_weights(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/training?model=preset:lenet5")
    expect(page.get_by_text("Start training")).to_be_visible(timeout=120_000)
    _settled(page)
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Enter")
    _settled(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_test_id("stProgress").first).to_be_visible(timeout=60_000)
    # touch a widget while training runs: a full rerun of the page
    page.wait_for_timeout(1500)
    page.get_by_text("Log scale for the loss").click()
    page.wait_for_timeout(1500)
    expect(page.get_by_text("Training done after 2 epoch(s)")).to_be_visible(timeout=240_000)
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "training_page.png"), full_page=True)

    # a second run, stopped early: the weights trained so far are kept
    page.get_by_label("Epochs", exact=True).fill("20")
    page.get_by_label("Epochs", exact=True).press("Enter")
    _settled(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Training stopped after")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("(trained here)")
    assert page.locator(EXCEPTION).count() == 0
    page.close()


def test_a_copied_link_reproduces_the_view_and_drawing_works(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/kernels")
    expect(page.get_by_text("Conv layer").first).to_be_visible(timeout=120_000)
    _settled(page)
    _choose(page, "Conv layer", "conv2")
    page.get_by_text("Global (all conv layers)").click()
    _settled(page)
    link = page.url
    assert "kernels.layer=conv2" in link and "kernels.scale=Global" in link  # page-specific names (Streamlit binding)
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # a stranger opening the link
    other.goto(link)
    expect(other.get_by_text("Conv layer").first).to_be_visible(timeout=120_000)
    _settled(other)
    expect(other.get_by_role("combobox", name="Conv layer")).to_have_value("conv2")
    assert other.get_by_role("radio", name="Global (all conv layers)").is_checked()
    assert other.locator(EXCEPTION).count() == 0

    # draw a "1" on the Activations page's canvas and get a prediction for it
    other.get_by_test_id("stSidebarNav").get_by_text("Activations", exact=True).click()
    expect(other.get_by_text("Input", exact=True).first).to_be_visible(timeout=120_000)
    _settled(other)
    other.get_by_text("Draw", exact=True).click()
    _settled(other)
    canvas = other.locator("canvas").first
    expect(canvas).to_be_visible(timeout=60_000)
    box = canvas.bounding_box()
    other.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    other.mouse.down()
    for i in range(1, 11):
        other.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.07 * i))
    other.mouse.up()
    expect(other.get_by_text("your drawing").first).to_be_visible(timeout=60_000)
    _settled(other)
    assert other.locator(EXCEPTION).count() == 0
    other.screenshot(path=str(SHOTS / "drawing.png"), full_page=True)
    page.close()
    other.close()
