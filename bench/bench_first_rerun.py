"""`python -m bench first_rerun`: the FIRST rerun of each page on MobileNetV2 224, in Chromium, warmed and not.

For each page a fresh server and one tab open the page on ``app:MobileNetV2:none``; once it has drawn,
the bench waits until the server is quiet (the user reading; a warm-up, when on, runs then), makes the
page's first change (a new photo, another layer, a toggle: ``PAGES``) and times it from the click
until the browser receives the run's ``script_finished`` (wall), with the server's CPU time until it
is quiet again. The baseline is the same with warming off (``CONVLENS_WARM=0``), a server of its
own, taken in turns with the warmed one page by page.

Each page costs two fresh servers (about 20-40 s each on 2 cores). All nine pages take about 6 min;
``CONVLENS_BENCH_PAGES=model,kernels,activations python -m bench first_rerun`` runs a group (three
groups of three, each under 3 min).
"""

from __future__ import annotations

import os
import re
import sys
import time

from bench.bench_rerun import ARGS, CHROMIUM, quiet
from bench.common import Row, serve

LINK = "app:MobileNetV2:none"
# page -> (what the first change is, how to make it: (kind, label[, option]))
PAGES = {
    "model": ("toggle 'One box per block' on the Architecture tab", ("toggle", "One box per block", "Architecture")),
    "kernels": ("the next conv layer", ("select", "Conv layer")),
    "activations": ("the next sample photo", ("select", "Photo")),
    "attribution": ("the next sample photo", ("select", "Photo")),
    "filters": ("the next layer", ("select", "Layer")),
    "dataset": ("the next filter", ("plus", "Filter (channel)")),
    "robustness": ("the next sample photo", ("select", "Photo")),
    "concepts": ("the TCAV view", ("radio", "Test a concept (TCAV)")),
    "teach": ("the working model as the base", ("radio", "The working model")),
}
CHOSEN = [p.strip() for p in os.environ.get("CONVLENS_BENCH_PAGES", ",".join(PAGES)).split(",") if p.strip()]
OFF = {"CONVLENS_WARM": "0"}


def _prepare_change(page, how: tuple[str, ...]):
    """Ready the page's first change and return the one action that makes it (timed from there): the next
    option of a selectbox (opened and moved to, then Enter), a number's "+", a toggle (on a tab), or a radio option."""
    kind, label = how[0], how[1]
    if kind == "toggle":
        if len(how) > 2:  # a tab that shows without a rerun
            page.get_by_role("tab", name=how[2]).click()
        target = page.get_by_test_id("stCheckbox").filter(has_text=label).first.locator("label")
        target.wait_for()
        return target.click
    if kind == "plus":
        target = page.get_by_test_id("stNumberInput").filter(has_text=label).first.get_by_test_id("stNumberInputStepUp")
        target.wait_for()
        return target.click
    if kind == "radio":
        target = page.get_by_test_id("stRadio").get_by_text(label, exact=True).first
        target.wait_for()
        return target.click
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(re.compile(f"^{re.escape(label)}$")))
    box.first.locator("input").click()
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)  # the list is open on the next option
    return lambda: page.keyboard.press("Enter")


def first_rerun(browser, name: str, env: dict) -> tuple[float, float]:
    """(wall s, server CPU s) of the first change on a fresh server's page, after it drew and went quiet."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    events: list[tuple[float, str]] = []  # (time, 'new_session' | 'done' | 'other_end') as the browser receives them

    def on_frame(payload) -> None:
        if isinstance(payload, bytes):
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                events.append((time.perf_counter(), kind))
            elif kind == "script_finished":
                ok = msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
                events.append((time.perf_counter(), "done" if ok else "other_end"))

    proc, url = serve(env)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
        page.goto(f"{url}/{name}?model={LINK}")
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:  # drawn: a full run finished and nothing new for 2 s
            page.wait_for_timeout(200)
            if events and events[-1][1] == "done" and time.perf_counter() - events[-1][0] > 2.0:
                break
        else:
            raise RuntimeError(f"{name} did not finish drawing")
        change = _prepare_change(page, PAGES[name][1])
        c0 = quiet(proc.pid, cap=30.0)  # the user reads; a warm-up runs now
        seen = len(events)
        t0 = time.perf_counter()
        change()
        finished = None
        while finished is None and time.perf_counter() - t0 < 120:
            page.wait_for_timeout(10)
            kinds = events[seen:]
            start = next((i for i, (_, k) in enumerate(kinds) if k == "new_session"), None)
            finished = None if start is None else next((t for t, k in kinds[start:] if k == "done"), None)
        if finished is None:
            raise RuntimeError(f"the first change on {name} never finished a run")
        wall = finished - t0
        cpu = quiet(proc.pid) - c0
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"an exception on {name}")
        page.close()
        return wall, cpu
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run() -> list[Row]:
    from playwright.sync_api import sync_playwright

    unknown = [p for p in CHOSEN if p not in PAGES]
    if unknown:
        raise ValueError(f"unknown pages {unknown}; choose from {', '.join(PAGES)}")
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for i, name in enumerate(CHOSEN):
            order = [("off", OFF), ("on", {})] if i % 2 == 0 else [("on", {}), ("off", OFF)]  # in turns
            got = {label: first_rerun(browser, name, env) for label, env in order}
            (wall_on, cpu_on), (wall_off, cpu_off) = got["on"], got["off"]
            print(
                f"# {name}: first rerun wall {wall_off:.2f} -> {wall_on:.2f} s, "
                f"server CPU {cpu_off:.2f} -> {cpu_on:.2f} s",
                file=sys.stderr,
                flush=True,
            )
            rows.append(
                Row(
                    "first_rerun",
                    f"{name.title()}, MobileNetV2 224: first rerun ({PAGES[name][0]}), warmed while the page is read",
                    wall_on * 1000,
                    "no warming (CONVLENS_WARM=0), same page, fresh server",
                    wall_off * 1000,
                    note=f"click to script_finished; server CPU {cpu_on * 1000:.0f} ms against {cpu_off * 1000:.0f} ms",
                )
            )
        browser.close()
    return rows
