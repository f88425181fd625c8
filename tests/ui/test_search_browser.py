"""A hyperparameter search in a real browser: start a tiny Optuna study, Stop it, resume it, start another.

Debian's /usr/bin/chromium through Playwright; the screenshot goes to tests/artifacts/ or
$CONVLENS_SCREENSHOTS (search_study.png).
"""

from __future__ import annotations

import re

import pytest
from chromium import EXCEPTION, SHOTS, served  # skips without chromium (an error in CI)
from playwright.sync_api import Locator, Page, expect


@pytest.fixture(scope="module")
def server():
    with served(log_name="server_search.log") as url:
        yield url


def _settled(page: Page) -> None:
    """Wait until the script run has finished (Streamlit shows a running indicator meanwhile)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=90_000)


def _fill(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settled(page)


def _column(page: Page, column: int) -> Locator:
    """The cells of one column of the trial table (glide's accessible grid inside its canvas)."""
    return page.get_by_test_id("stDataFrame").first.locator(f'td[aria-colindex="{column + 1}"]')


def _cells(page: Page, column: int) -> list[str]:
    return [c.inner_text().strip() for c in _column(page, column).all()]


def _stop(page: Page, expected: str) -> None:
    page.get_by_role("button", name="Stop the search").click()
    expect(page.get_by_test_id("stProgress").first).to_contain_text(expected, timeout=120_000)
    expect(page.get_by_role("button", name="Stop the search")).to_have_count(0, timeout=30_000)
    _settled(page)


def test_a_search_starts_stops_keeps_its_trials_and_frees_the_slot(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(f"{server}/training?model=preset:lenet5")
    expect(page.get_by_text("Start training")).to_be_visible(timeout=120_000)
    _settled(page)
    page.get_by_text("Hyperparameter search (Optuna)").click()
    _fill(page, "Number of trials", 3)
    _fill(page, "Epochs per trial", 1)
    page.get_by_role("button", name="Start a new search").click()
    progress = page.get_by_test_id("stProgress").first
    expect(progress).to_contain_text("running", timeout=60_000)

    # the live table shows a finished trial while the next one runs; Stop ends the study there
    expect(progress).to_contain_text(re.compile(r"running · [1-9] trial\(s\) finished"), timeout=180_000)
    expect(_column(page, 1).filter(has_text=re.compile(r"^complete$"))).not_to_have_count(0, timeout=30_000)
    _stop(page, "stopped")
    expect(_column(page, 1).filter(has_text="running")).to_have_count(
        0, timeout=30_000
    )  # the table redraws after the run
    states = _cells(page, 1)
    assert states[0] == "complete" and "running" not in states and len(states) in (2, 3), states
    assert states.count("complete") >= 1 and float(_cells(page, 2)[0]) > 0.1  # trial 0 learnt something in 1 epoch
    complete = [float(v) for state, v in zip(states, _cells(page, 2)) if state == "complete"]
    best = page.get_by_test_id("stMetric").filter(has_text="Best validation accuracy")  # the saved study's summary
    expect(best).to_be_visible(timeout=60_000)
    shown = float(re.search(r"([\d.]+)%", best.inner_text()).group(1)) / 100
    assert abs(shown - max(complete)) < 6e-4, (shown, complete)
    assert page.locator(EXCEPTION).count() == 0
    for label, typed in (("Number of trials", "3"), ("Epochs per trial", "1")):  # the form keeps what was typed
        expect(page.get_by_label(label, exact=True)).to_have_value(typed, timeout=15_000)  # (once seen redrawn late)
    page.screenshot(path=str(SHOTS / "search_study.png"), full_page=True)

    # the study gave its training slot back: Resume runs, and after a second Stop so does a new search
    # (the server trains two models at a time, so a leaked slot per study would refuse the third start)
    _fill(page, "Number of trials", 10)  # more than the study holds, so Resume has trials to run
    page.get_by_role("button", name="Resume this search").click()
    expect(progress).to_contain_text("running", timeout=60_000)
    _stop(page, "stopped")
    page.get_by_role("button", name="Start a new search").click()
    expect(progress).to_contain_text("running", timeout=60_000)
    assert page.get_by_text("this server trains two models at a time").count() == 0
    _stop(page, "stopped")
    assert page.locator(EXCEPTION).count() == 0
    page.close()
