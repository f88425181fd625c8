"""Bring your own model in a real browser: Teachable Machine's converted_keras.zip, its class names, Grad-CAM.

Debian's /usr/bin/chromium through Playwright (never a downloaded browser); screenshots go to
tests/artifacts/ or $CONVLENS_SCREENSHOTS (byom_model.png, byom_attribution.png).
"""

from __future__ import annotations

import time

import pytest
from chromium import EXCEPTION, SHOTS, served  # skips without chromium (an error in CI)
from helpers import FIXTURES
from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def server():
    with served(log_name="server_byom.log") as url:
        yield url


def _settled(page: Page) -> None:
    """Wait until the script run has finished: no running indicator, and no element of the last run
    left greyed (stale)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=90_000)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=120_000)


def test_bring_your_own_teachable_machine_model(server, browser):
    """Upload Teachable Machine's converted_keras.zip, see its class names, and Grad-CAM on a sample photo."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    expect(page.get_by_text("Parameters").first).to_be_visible(timeout=120_000)
    _settled(page)
    page.get_by_text("Upload a file").click()
    _settled(page)
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="A model:")
    start = time.perf_counter()
    uploader.locator('input[type="file"]').set_input_files(str(FIXTURES / "tm_converted_keras.zip"))
    expect(page.get_by_text("Loaded tm_converted_keras.zip.")).to_be_visible(timeout=120_000)
    _settled(page)
    options = page.get_by_test_id("stExpander").filter(has_text="Input range and class names")
    expect(options).to_have_count(1)
    print(f"\nbrowser: tm_converted_keras.zip loaded and the Model page shown in {time.perf_counter() - start:.1f} s")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("3 classes")
    expect(page.get_by_text("input range: symmetric").first).to_be_visible()
    options.get_by_text("Input range and class names").click()
    expect(page.get_by_label("Class names (3; one per line, or comma separated)")).to_have_value("cat\ndog\nteapot")
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "byom_model.png"), full_page=True)

    page.get_by_test_id("stSidebarNav").get_by_text("Attribution", exact=True).click()
    expect(page.get_by_text("Explain the class").first).to_be_visible(timeout=120_000)
    _settled(page)
    page.get_by_text("Sample photos", exact=True).click()
    _settled(page)
    caption = page.get_by_text("Grad-CAM · ", exact=False).filter(has_text="sequential_1/mobilenetv2_0.35_224/out_relu")
    expect(caption.first).to_be_visible(timeout=120_000)
    _settled(page)
    image = page.get_by_test_id("stImage").filter(has_text="Grad-CAM · ").locator("img").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") >= 224
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "byom_attribution.png"), full_page=True)
    page.close()
