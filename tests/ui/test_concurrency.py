"""Three people on one server at once: one trains, two explore other models; nothing crosses over.

Starts its own fresh server (so the first page it opens is also a deep link on a fresh process) and
reports the server's resident memory before, at the peak and after the sessions close.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, EXCEPTION, SHOTS, _settled, start_server  # skips without chromium

SESSION_TTL = 5  # seconds until a closed tab's session is released (60 in the shipped config)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def fresh_server():
    proc, url, log = start_server(
        "--server.disconnectedSessionTTL", str(SESSION_TTL), log_name="server_concurrency.log"
    )
    yield url, proc.pid
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _sidebar(page) -> str:
    return page.get_by_test_id("stSidebar").inner_text()


def test_three_sessions_one_training_two_exploring(fresh_server):
    url, pid = fresh_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        trainer, explorer, explainer = (
            browser.new_context(viewport={"width": 1300, "height": 1000}).new_page() for _ in range(3)
        )

        # the very first request of this server process is a deep link
        explorer.goto(f"{url}/activations?model=bundled:mnist_cnn&layer=conv1")
        expect(explorer.get_by_text("Zoom on channel").first).to_be_visible(
            timeout=180_000
        )  # a layer's link opens its tab
        _settled(explorer)
        nav = explorer.get_by_test_id("stSidebarNav").inner_text()
        assert "Model" in nav and "Filters" in nav and "cache" not in nav  # the real menu, not the pages/ folder
        rss_before = _rss_mb(pid)

        trainer.goto(f"{url}/training?model=preset:lenet5")
        expect(trainer.get_by_text("Start training")).to_be_visible(timeout=120_000)
        _settled(trainer)
        trainer.get_by_label("Epochs", exact=True).fill("12")  # long enough to still run while the others explore
        trainer.get_by_label("Epochs", exact=True).press("Enter")
        _settled(trainer)
        trainer.get_by_role("button", name="Start training").click()
        expect(trainer.get_by_role("button", name="Stop")).to_be_visible(timeout=60_000)

        explainer.goto(f"{url}/attribution?model=bundled:shapes_cnn")
        answers = []
        for page, action, proof in (
            (explainer, lambda p: p.get_by_role("tab", name="Layer sweep").click(), "conv1_1"),
            (explorer, lambda p: p.get_by_role("tab", name="One layer").click(), "Sparsity per layer"),
            (explainer, lambda p: p.get_by_role("tab", name="Maps").click(), "Overlay PNG"),
        ):
            expect(page.get_by_text("Working model").first).to_be_visible(timeout=120_000)
            start = time.time()
            action(page)
            expect(page.get_by_text(proof).first).to_be_visible(timeout=60_000)
            answers.append(time.time() - start)
        assert not trainer.get_by_text("Training done").count(), (
            "training should still be running while the others explore"
        )

        expect(trainer.get_by_text("Training done after 12 epoch(s)")).to_be_visible(timeout=300_000)
        rss_peak = _rss_mb(pid)
        # no state crossed sessions
        assert "(trained here)" in _sidebar(trainer)
        assert "MNIST CNN" in _sidebar(explorer) and "trained here" not in _sidebar(explorer)
        assert "Shapes CNN" in _sidebar(explainer)
        for page in (trainer, explorer, explainer):
            assert page.locator(EXCEPTION).count() == 0
        explainer.screenshot(path=str(SHOTS / "concurrent_attribution.png"), full_page=True)
        for page in (trainer, explorer, explainer):
            page.context.close()
        browser.close()
    time.sleep(SESSION_TTL + 10)
    rss_after = _rss_mb(pid)
    report = (
        f"server RSS: {rss_before:.0f} MB after the first page, {rss_peak:.0f} MB with three sessions and a training, "
        f"{rss_after:.0f} MB after they closed; slowest answer while training: {max(answers):.1f} s"
    )
    (SHOTS / "memory.txt").write_text(report + "\n")
    print(report)
    assert max(answers) < 60
    assert rss_after < rss_before + 1500, report  # bounded: three sessions and a training leave < 1.5 GB behind
