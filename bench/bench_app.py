"""The app as a person meets it: cold start to the first page, and a page switch once models are cached.

Needs Debian's chromium (/usr/bin/chromium) and Playwright, like the browser test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, Row

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


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _import_tensorflow_ms() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow, keras"], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    return (time.perf_counter() - start) * 1000


def run() -> list[Row]:
    if not Path(CHROMIUM).exists():
        return [Row("app", "cold start / page switch", float("nan"), note="skipped: no /usr/bin/chromium")]
    from playwright.sync_api import expect, sync_playwright

    port = _port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            page.goto(url)
            expect(page.get_by_text("Parameters").first).to_be_visible(timeout=180_000)
            cold = (time.perf_counter() - start) * 1000

            def visit(label: str, marker: str) -> float:
                t0 = time.perf_counter()
                page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()
                expect(page.get_by_text(marker).first).to_be_visible(timeout=180_000)
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=180_000)
                return (time.perf_counter() - t0) * 1000

            first_act = visit("Activations", "Input →")
            visit("Kernels", "Conv layer")
            again_act = visit("Activations", "Input →")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [
        Row(
            "app",
            "cold start to the first page (server start, TF import, bundled model, browser render)",
            cold,
            "python -c 'import tensorflow, keras'",
            _import_tensorflow_ms(),
        ),
        Row(
            "app",
            "page switch to Activations, model and maps cached",
            again_act,
            "first visit of Activations (uncached)",
            first_act,
        ),
    ]
