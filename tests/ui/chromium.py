"""The real browser for the UI tests: Debian's chromium through Playwright, and the app on a loopback port.

Playwright never downloads a browser. Without /usr/bin/chromium the importing test module is skipped
on a laptop; in CI (``CI=true``) that is an error. Fixtures ``server`` and ``browser`` are shared by
tests/ui/conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("CONVLENS_SCREENSHOTS", ROOT / "tests" / "artifacts"))
EXCEPTION = '[data-testid="stException"]'

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run must apt-get install chromium")
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install chromium fonts-noto-color-emoji)", allow_module_level=True
    )

from playwright.sync_api import sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra: str, log_name: str = "server.log"):
    """Start the app on a free loopback port; return (process, url, log file) once it is healthy."""
    port = free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS / log_name, "w")
    proc = subprocess.Popen(
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
            "--browser.gatherUsageStats",
            "false",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url, log
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the app did not answer /_stcore/health within 90 s")


@contextmanager
def chromium():
    """A headless Debian chromium, closed on exit."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def served(*extra: str, log_name: str = "server.log"):
    """The app running on a free loopback port for the ``with`` block; yields its URL."""
    proc, url, log = start_server(*extra, log_name=log_name)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
