"""`python -m bench rerun`: one rerun of Attribution and Activations in Chromium, as a person clicks Example "+".

For each page and model (MobileNetV2 224 untrained, the MNIST CNN), a fresh server and one tab: after
three warm presses, each press of the Example "+" is timed from the click until the browser receives
the run's ``script_finished`` message (wall), and the server's CPU time (utime + stime from /proc) from
before the click until the server is quiet again, so Streamlit's after-run clean-up counts too.
The baseline is a server with Streamlit's own clean-up (``CONVLENS_STREAMLIT_CLEANUP=1`` and
``--runner.postScriptGC true``: a ``keras.backend.clear_session()`` and two full garbage collections
after every run), in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from bench.common import Row, serve

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
PRESSES = int(os.environ.get("CONVLENS_BENCH_RERUN_PRESSES", "7"))
CASES = (
    ("attribution", "app:MobileNetV2:none", "MobileNetV2 224"),
    ("activations", "app:MobileNetV2:none", "MobileNetV2 224"),
    ("attribution", "bundled:mnist_cnn", "MNIST CNN"),
    ("activations", "bundled:mnist_cnn", "MNIST CNN"),
)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def quiet(pid: int, gap: float = 0.4, cap: float = 15.0) -> float:
    """Wait until the server uses under 0.05 s of CPU in ``gap`` seconds; returns its CPU time then."""
    start, last = time.perf_counter(), cpu_s(pid)
    while time.perf_counter() - start < cap:
        time.sleep(gap)
        now = cpu_s(pid)
        if now - last < 0.05:
            return now
        last = now
    return cpu_s(pid)


BASELINE = ({"CONVLENS_STREAMLIT_CLEANUP": "1"}, ("--runner.postScriptGC", "true"))


def presses(browser, page_name: str, link: str, env: dict, args: tuple[str, ...] = ()) -> tuple[float, float]:
    """Median (wall s, server CPU s) of the Example "+" presses on a fresh server."""
    from playwright.sync_api import expect
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    events: list[tuple[float, str]] = []  # (time, 'new_session' | 'script_finished') as the browser receives them

    def on_frame(payload) -> None:
        if isinstance(payload, bytes):
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") in ("new_session", "script_finished"):
                events.append((time.perf_counter(), msg.WhichOneof("type")))

    proc, url = serve(env, args)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
        page.goto(f"{url}/{page_name}?model={link}")
        expect(page.get_by_text("Example (of").first).to_be_visible(timeout=240_000)
        plus = page.get_by_test_id("stNumberInput").filter(has_text="Example (of").get_by_test_id("stNumberInputStepUp")
        for _ in range(3):
            page.wait_for_timeout(400)
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=240_000)
            plus.click()
        walls, cpus = [], []
        for _ in range(PRESSES):
            c0 = quiet(proc.pid)
            seen = len(events)
            t0 = time.perf_counter()
            plus.click()
            finished = None
            while finished is None and time.perf_counter() - t0 < 120:
                page.wait_for_timeout(10)
                kinds = events[seen:]
                start = next((i for i, (_, k) in enumerate(kinds) if k == "new_session"), None)
                finished = (
                    None if start is None else next((t for t, k in kinds[start:] if k == "script_finished"), None)
                )
            walls.append((finished or time.perf_counter()) - t0)
            cpus.append(quiet(proc.pid) - c0)
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"an exception on {page_name}")
        page.close()
        return statistics.median(walls), statistics.median(cpus)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run() -> list[Row]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for page_name, link, model in CASES:
            before = presses(browser, page_name, link, *BASELINE)
            after = presses(browser, page_name, link, {})
            print(
                f"# {page_name}, {model}: wall {before[0]:.2f} -> {after[0]:.2f} s, "
                f"server CPU {before[1]:.2f} -> {after[1]:.2f} s",
                file=sys.stderr,
                flush=True,
            )
            rows.append(
                Row(
                    "rerun",
                    f'{page_name.title()}, {model}: Example "+" until the run ends (Chromium)',
                    after[0] * 1000,
                    "Streamlit's clear_session and full GCs after every run",
                    before[0] * 1000,
                    note=f"server CPU per rerun {after[1] * 1000:.0f} ms against {before[1] * 1000:.0f} ms",
                )
            )
        browser.close()
    return rows
