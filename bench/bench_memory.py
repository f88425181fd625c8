"""`python -m bench memory`: the server's RSS through one browser session's tour, per profile.

A fresh server (``CONVLENS_PROFILE=default``, then ``hosted``) and one Chromium tab (Debian's
/usr/bin/chromium, driven by Playwright): the home page, Activations and Attribution on the MNIST
CNN, then Model, Kernels, Activations and Attribution on MobileNetV2 and on ResNet50 (untrained),
back to the MNIST CNN, and one training of LeNet-5 (one epoch). After each step the server's VmRSS is read
from /proc. The table goes to stdout and bench/results/memory.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.common import ROOT, serve

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROFILES = tuple(os.environ.get("CONVLENS_BENCH_PROFILES", "default,hosted").split(","))
BUDGET_MB = {"default": 2000, "hosted": 1000}
STEP_TIMEOUT_MS = 180_000


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (``VmRSS`` from /proc, or ``VmHWM``: its highest so far; no psutil)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def start_server(profile: str, log_path: Path):
    """The app under ``CONVLENS_PROFILE=profile``, once it answers /_stcore/health."""
    return serve({"CONVLENS_PROFILE": profile}, log_path=log_path)


def tour(page, url: str, measure) -> None:
    """The issue's tour in one tab; ``measure(step)`` after each step."""
    from playwright.sync_api import expect

    def settled():
        page.wait_for_timeout(400)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=STEP_TIMEOUT_MS)
        page.wait_for_timeout(600)
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(
                f"an exception on the page: {page.locator('[data-testid=stException]').first.inner_text()[:500]}"
            )

    def nav(label: str, marker: str):
        page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()
        expect(page.get_by_text(marker).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
        settled()

    def choose(label: str, option: str):
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        page.get_by_role("option", name=option).first.click()
        settled()

    page.goto(url)
    expect(page.get_by_text("Parameters").first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    settled()
    measure("home (Model page, MNIST CNN)")
    for label, marker in (("Activations", "Overview"), ("Attribution", "Explain the class")):
        nav(label, marker)
        measure(f"{label}, MNIST CNN")
    for network in ("MobileNetV2", "ResNet50"):
        nav("Model", "Source")
        page.get_by_test_id("stRadioGroup").get_by_text("keras.applications", exact=True).click()
        settled()
        choose("Network", network)
        page.get_by_test_id("stRadioGroup").get_by_text("untrained", exact=True).click()
        settled()
        page.get_by_role("button", name="Load network").click()
        expect(page.get_by_test_id("stSidebar")).to_contain_text(network, timeout=STEP_TIMEOUT_MS)
        settled()
        measure(f"Model, {network}")
        for label, marker in (
            ("Kernels", "Conv layer"),
            ("Activations", "Overview"),
            ("Attribution", "Explain the class"),
        ):
            nav(label, marker)
            measure(f"{label}, {network}")
    nav("Model", "Source")
    page.get_by_test_id("stRadioGroup").get_by_text("Bundled (trained)", exact=True).click()
    settled()
    choose("Bundled model", "MNIST CNN")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("MNIST CNN", timeout=STEP_TIMEOUT_MS)
    nav("Activations", "Overview")
    measure("back to the MNIST CNN (Activations)")
    nav("Model", "Source")
    page.get_by_test_id("stRadioGroup").get_by_text("Preset (untrained)", exact=True).click()
    settled()
    choose("Preset", "LeNet-5")
    nav("Training", "Start training")
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("1")
    epochs.press("Enter")
    settled()
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Training done after 1 epoch(s)")).to_be_visible(timeout=3 * STEP_TIMEOUT_MS)
    settled()
    measure("trained LeNet-5 (1 epoch, MNIST sample)")


def measure_profile(browser, profile: str) -> list[tuple[str, float]]:
    """One fresh server and one tab through the tour: [(step, RSS MB)]."""
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    proc, url = start_server(profile, out / f"memory_{profile}.log")
    rows = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def measure(step: str) -> None:
            rows.append((step, rss_mb(proc.pid)))
            print(f"# {profile}: {step}: {rows[-1][1]:.0f} MB", file=sys.stderr, flush=True)

        try:
            tour(page, url, measure)
            rows.append(("highest at any moment (VmHWM: the peaks inside steps too)", rss_mb(proc.pid, "VmHWM")))
            print(f"# {profile}: {rows[-1][0]}: {rows[-1][1]:.0f} MB", file=sys.stderr, flush=True)
        finally:
            page.screenshot(path=str(out / f"memory_{profile}_last.png"), full_page=True)
            page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def table(results: dict[str, list[tuple[str, float]]]) -> str:
    """A Markdown table: one row per step, one RSS column per profile, and each profile's peak."""
    names = list(results)
    steps = [s for s, _ in max(results.values(), key=len)]
    lines = ["| step | " + " | ".join(f"{n} RSS (MB)" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for i, step in enumerate(steps):
        cells = [f"{results[n][i][1]:.0f}" if i < len(results[n]) else "" for n in names]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    peaks = [
        f"**{max(mb for s, mb in results[n] if not s.startswith('highest')):.0f}** (budget {BUDGET_MB.get(n, '?')})"
        for n in names
    ]
    lines.insert(-1, "| peak after a step | " + " | ".join(peaks) + " |")
    return "\n".join(lines)


def run() -> list:
    """Measure every profile; print and save the table. Returns no timing rows (the figures are MB, not ms)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (apt-get install chromium)")
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for profile in PROFILES:
                results[profile] = measure_profile(browser, profile)
        finally:
            browser.close()
    text = table(results)
    print(text)
    (ROOT / "bench" / "results" / "memory.md").write_text(f"{os.cpu_count()} cores\n\n{text}\n")
    return []


if __name__ == "__main__":
    run()
