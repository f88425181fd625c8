"""A closed tab's session under the hosted profile: closed ``after_s`` after its tab went, or at once when asked."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pages._sessions import ClosedSessionReaper


@dataclass
class _Session:
    id: str


@dataclass
class _Info:
    session: _Session


class Manager:
    """The three methods of Streamlit's SessionManager the reaper uses, over a set of live and closed tabs."""

    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.disconnected: set[str] = set()
        self.closed: list[str] = []

    def list_sessions(self):
        return [_Info(_Session(s)) for s in sorted(self.connected | self.disconnected)]

    def is_active_session(self, sid: str) -> bool:
        return sid in self.connected

    def close_session(self, sid: str) -> None:
        self.connected.discard(sid)
        self.disconnected.discard(sid)
        self.closed.append(sid)

    def close_tab(self, sid: str) -> None:
        self.connected.discard(sid)
        self.disconnected.add(sid)

    def reconnect(self, sid: str) -> None:
        self.disconnected.discard(sid)
        self.connected.add(sid)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_closed_tab_is_released_after_its_time_and_an_open_one_never():
    manager, clock = Manager(), Clock()
    manager.connected |= {"open", "leaving", "back"}
    reaper = ClosedSessionReaper(manager, 10.0, clock)
    assert reaper.reap() == []
    manager.close_tab("leaving")
    manager.close_tab("back")
    clock.now = 1.0
    assert reaper.reap() == []  # first seen closed at 1 s
    clock.now = 8.0
    manager.reconnect("back")  # a reload within the time keeps its session
    assert reaper.reap() == []
    clock.now = 11.0
    assert reaper.reap() == ["leaving"] and manager.closed == ["leaving"]
    clock.now = 100.0
    assert reaper.reap() == [] and manager.connected == {"open", "back"}


def test_forced_every_closed_tab_goes_at_once():
    manager, clock = Manager(), Clock()
    manager.connected |= {"a", "b", "c"}
    reaper = ClosedSessionReaper(manager, 60.0, clock)
    manager.close_tab("a")
    manager.close_tab("b")
    assert reaper.reap() == []
    assert reaper.reap(force=True) == ["a", "b"] and manager.connected == {"c"}


def test_a_hosted_server_releases_a_closed_tabs_session(browser, monkeypatch):
    """The reaper on a real server (Streamlit's own session manager and event loop): a closed tab's session goes."""
    from chromium import SHOTS, served

    monkeypatch.setenv("CONVLENS_PROFILE", "hosted")
    monkeypatch.setenv("CONVLENS_CLOSED_SESSION_S", "1")
    log = SHOTS / "closed_sessions_server.log"
    with served(log_name=log.name) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/?model=bundled:mnist_cnn")
        page.get_by_text("Parameters").first.wait_for(timeout=120_000)
        assert "released the session" not in log.read_text()
        context.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "released the session" not in log.read_text():
            time.sleep(0.5)
        assert "released the session of a tab closed" in log.read_text()
