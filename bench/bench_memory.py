"""`python -m bench memory`: the server's RSS through three walks, per profile.

Each walk gets a fresh server (``CONVLENS_PROFILE=default``, then ``hosted``), driven by Debian's
/usr/bin/chromium through Playwright; after each step the server's VmRSS is read from /proc, and at the
end VmHWM (the highest RSS at any moment):

* ``tour``: one tab through the app: the home page, Activations and Attribution on the MNIST CNN, then
  Model, Kernels, Activations and Attribution on MobileNetV2 and on ResNet50 (untrained), back to the
  MNIST CNN, and one training of LeNet-5 (one epoch);
* ``walk``: eleven deep links opened one after another, each by a new visitor (a new browser session,
  closed when the next opens, as a class following a shared link): the MNIST CNN's Model, Activations
  and Attribution, MobileNetV2 on Model, Kernels, Activations and Attribution, ResNet50 on Model,
  Activations and Attribution, then the MNIST CNN's Activations again;
* ``together``: three visitors at once on three networks (MNIST CNN, MobileNetV2, ResNet50), each
  through Model, Kernels, Activations and Attribution by deep links, their requests sent together.

``CONVLENS_BENCH_WALKS=walk,together`` picks walks, ``CONVLENS_BENCH_PROFILES=hosted`` profiles. The
tables go to stdout and bench/results/memory.md.
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
WALKS = tuple(os.environ.get("CONVLENS_BENCH_WALKS", "tour,walk,together").split(","))
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


def _settled(page) -> None:
    """Wait until the page's script run ended; raise on an exception shown on the page."""
    from playwright.sync_api import expect

    page.wait_for_timeout(400)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(600)
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(
            f"an exception on the page: {page.locator('[data-testid=stException]').first.inner_text()[:500]}"
        )


def tour(page, url: str, measure) -> None:
    """The issue's tour in one tab; ``measure(step)`` after each step."""
    from playwright.sync_api import expect

    def settled():
        _settled(page)

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


# --------------------------------------------------------------------------- deep links: many visitors

MNIST, MOBILENET, RESNET = "bundled:mnist_cnn", "app:MobileNetV2:none", "app:ResNet50:none"
MARKERS = {"": "Parameters", "kernels": "Conv layer", "activations": "Overview", "attribution": "Explain the class"}
WALK = (  # eleven deep links, each opened by a new visitor (a new browser session) once the one before closed
    *((MNIST, p) for p in ("", "activations", "attribution")),
    *((MOBILENET, p) for p in ("", "kernels", "activations", "attribution")),
    *((RESNET, p) for p in ("", "activations", "attribution")),
    (MNIST, "activations"),
)
TOGETHER = (MNIST, MOBILENET, RESNET)  # three visitors at once, each on its own network
TOGETHER_PAGES = ("", "kernels", "activations", "attribution")
NAMES = {MNIST: "MNIST CNN", MOBILENET: "MobileNetV2", RESNET: "ResNet50"}


def _open(browser, url: str, model: str, path: str):
    """A new visitor (its own browser context: a new session) on a deep link; returns (context, page)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/{path}?model={model}")
    expect(page.get_by_text(MARKERS[path]).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    return context, page


def walk(browser, url: str, measure) -> None:
    """The eleven deep links one after another, each a new session whose tab closes when the next opens."""
    for model, path in WALK:
        context, page = _open(browser, url, model, path)
        _settled(page)
        measure(f"new session: {NAMES[model]}, {(path or 'model').title()}")
        context.close()


def together(browser, url: str, measure) -> None:
    """Three visitors at once, each on its own network, through Model, Kernels, Activations and Attribution."""
    from playwright.sync_api import expect

    visitors = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in TOGETHER]
    pages = [v.new_page() for v in visitors]
    try:
        for path in TOGETHER_PAGES:
            for page, model in zip(pages, TOGETHER):  # all three requests go out before any is awaited
                page.goto(f"{url}/{path}?model={model}", wait_until="commit")
            for page in pages:
                expect(page.get_by_text(MARKERS[path]).first).to_be_visible(timeout=STEP_TIMEOUT_MS)
                _settled(page)
            measure(f"three at once: {(path or 'model').title()}")
    finally:
        for v in visitors:
            v.close()


def _tour(browser, url: str, measure) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        tour(page, url, measure)
    finally:
        page.screenshot(path=str(ROOT / "bench" / "results" / "memory_tour_last.png"), full_page=True)
        page.close()


RUNS = {"tour": _tour, "walk": walk, "together": together}


def reset_peak(pid: int) -> bool:
    """Start the process's VmHWM again from its current RSS (``5`` into /proc/PID/clear_refs); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


HIGHEST = "highest at any moment (VmHWM: the peaks inside steps too)"


def measure_profile(browser, profile: str, name: str = "tour") -> list[tuple[str, float, float]]:
    """One fresh server through the walk ``name``: [(step, RSS MB after it, highest RSS MB during it)], then the
    highest of all (VmHWM, read again from each step's start where /proc/PID/clear_refs allows it)."""
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    proc, url = start_server(profile, out / f"memory_{name}_{profile}.log")
    rows = []
    per_step = reset_peak(proc.pid)

    def measure(step: str) -> None:
        rows.append((step, rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")))
        print(f"# {name}, {profile}: {step}: {rows[-1][1]:.0f} MB (inside: {rows[-1][2]:.0f})", file=sys.stderr)
        reset_peak(proc.pid)

    try:
        RUNS[name](browser, url, measure)
        highest = max([rss_mb(proc.pid, "VmHWM")] + ([r[2] for r in rows] if per_step else []))
        rows.append((HIGHEST, highest, highest))
        print(f"# {name}, {profile}: {HIGHEST}: {highest:.0f} MB", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def table(results: dict[str, list[tuple[str, float, float]]]) -> str:
    """A Markdown table: one row per step, per profile the RSS after it and the highest during it, and each
    profile's peak after a step."""
    names = list(results)
    steps = [row[0] for row in max(results.values(), key=len)]
    lines = [
        "| step | " + " | ".join(f"{n} RSS after (MB) | {n} highest inside" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    for i, step in enumerate(steps):
        cells = [f"{results[n][i][1]:.0f} | {results[n][i][2]:.0f}" if i < len(results[n]) else " | " for n in names]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    peaks = [
        f"**{max(r[1] for r in results[n] if r[0] != HIGHEST):.0f}** (budget {BUDGET_MB.get(n, '?')}) | " for n in names
    ]
    lines.insert(-1, "| peak after a step | " + " | ".join(peaks) + " |")
    return "\n".join(lines)


def run() -> list:
    """Measure every profile; print and save the table. Returns no timing rows (the figures are MB, not ms)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (apt-get install chromium)")
    tables = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for name in WALKS:
                results = {profile: measure_profile(browser, profile, name) for profile in PROFILES}
                tables.append(f"### {name}\n\n{table(results)}")
        finally:
            browser.close()
    text = "\n\n".join(tables)
    print(text)
    (ROOT / "bench" / "results" / "memory.md").write_text(f"{os.cpu_count()} cores\n\n{text}\n")
    return []


if __name__ == "__main__":
    run()
