"""pages/_warm: a warm-up runs once per model and purpose, one at a time, off with CONVLENS_WARM=0, and never raises."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from pages import _warm


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv(_warm.OFF_ENV, raising=False)
    monkeypatch.setattr(_warm, "_DONE", type(_warm._DONE)())
    yield
    for t in threading.enumerate():
        if t.name.startswith("convlens-warm-"):
            t.join(timeout=10)


def _wait_idle() -> None:
    for t in threading.enumerate():
        if t.name.startswith("convlens-warm-"):
            t.join(timeout=10)
    assert not _warm._BUSY.is_set()


def test_a_warm_up_runs_once_per_model_and_purpose_outside_the_caller():
    calls = []
    loaded = SimpleNamespace(key="model-a")
    assert _warm.after_draw(loaded, "activations", lambda: calls.append(threading.current_thread().name))
    _wait_idle()
    assert calls == ["convlens-warm-activations"]  # in its own thread
    assert not _warm.after_draw(loaded, "activations", lambda: calls.append("again"))
    assert _warm.after_draw(SimpleNamespace(key="model-b"), "activations", lambda: calls.append("b"))
    _wait_idle()
    assert calls == ["convlens-warm-activations", "b"]


def test_one_warm_up_at_a_time_and_a_failing_one_is_quiet():
    release, calls = threading.Event(), []
    loaded = SimpleNamespace(key="model-c")
    assert _warm.after_draw(loaded, "slow", lambda: release.wait(10))
    assert not _warm.after_draw(loaded, "other", lambda: calls.append("other"))  # dropped while one runs
    release.set()
    _wait_idle()
    assert _warm.after_draw(loaded, "other", lambda: calls.append("other"))  # not marked done when dropped
    _wait_idle()
    assert calls == ["other"]

    def fails():
        raise RuntimeError("no trace today")

    assert _warm.after_draw(loaded, "failing", fails)
    _wait_idle()  # no exception escapes, and the next warm-up may start


def test_off_with_the_environment_variable(monkeypatch):
    monkeypatch.setenv(_warm.OFF_ENV, "0")
    assert not _warm.after_draw(SimpleNamespace(key="model-d"), "activations", lambda: None)
