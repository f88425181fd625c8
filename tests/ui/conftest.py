"""Fixtures of the browser tests: one headless Debian chromium per test module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def browser():
    from chromium import chromium  # imported here: the AppTest modules of this folder need no browser

    with chromium() as b:
        yield b
