"""Teach in a real browser: two classes by upload, train, the curves, then explore the taught model.

Debian's /usr/bin/chromium through Playwright; screenshots go to tests/artifacts/ or $CONVLENS_SCREENSHOTS
(teach_trained.png, teach_explored.png). The base is the working model (the bundled MNIST CNN): this
machine has no ImageNet weights, which the page says before offering the bases at hand.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from chromium import EXCEPTION, SHOTS, served  # skips without chromium (an error in CI)
from PIL import Image
from playwright.sync_api import Page, expect

from vizcore.data import datasets


@pytest.fixture(scope="module")
def server():
    with served(log_name="server_teach.log") as url:
        yield url


def _settled(page: Page) -> None:
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=90_000)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=120_000)


def _digit_files(folder, digit: int, n: int = 12) -> list[str]:
    ds = datasets.load_mnist_sample()
    paths = []
    for k, i in enumerate(np.flatnonzero(ds.y == digit)[:n]):
        path = folder / f"digit{digit}_{k}.png"
        Image.fromarray(ds.pixels(int(i))[..., 0]).save(path)
        paths.append(str(path))
    return paths


def test_two_classes_by_upload_train_see_the_curves_and_explore(server, browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/teach")
    expect(page.get_by_text("1 · Classes")).to_be_visible(timeout=120_000)
    _settled(page)
    uploaders = page.get_by_test_id("stFileUploader").filter(has_text="Upload images")
    expect(uploaders).to_have_count(2)
    for card, digit in ((0, 0), (1, 1)):
        uploaders.nth(card).locator('input[type="file"]').set_input_files(_digit_files(tmp_path, digit))
        _settled(page)
    expect(page.get_by_text("12 images")).to_have_count(2, timeout=60_000)
    page.get_by_test_id("stRadioGroup").get_by_text("The working model", exact=True).click()
    _settled(page)
    start = time.perf_counter()
    page.get_by_role("button", name="🎓 Train").click()
    expect(page.get_by_text("Validation accuracy").first).to_be_visible(timeout=180_000)
    _settled(page)
    print(f"\nbrowser: taught 2 classes of 12 digits on the MNIST CNN in {time.perf_counter() - start:.1f} s")
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.filter(has_text="Loss")).to_have_count(1)
    expect(charts.filter(has_text="Accuracy").first).to_be_visible()
    expect(charts.filter(has_text="Confusion matrix")).to_have_count(1)
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "teach_trained.png"), full_page=True)

    page.get_by_role("button", name="🔍 Explore this model").click()
    expect(page.get_by_text("is now the working model on every page")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("taught on")
    page.get_by_test_id("stSidebarNav").get_by_text("Activations", exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("taught on", timeout=120_000)
    expect(page.get_by_role("tab", name="Overview")).to_be_visible(timeout=120_000)  # its feature maps computed
    _settled(page)
    assert page.locator(EXCEPTION).count() == 0
    page.screenshot(path=str(SHOTS / "teach_explored.png"), full_page=True)
    page.close()
