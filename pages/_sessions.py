"""A session's end: callbacks when it goes (``on_session_end``), and closed tabs released sooner than Streamlit does.

``on_session_end(fn)`` runs ``fn`` when Streamlit drops the session (a training it started stops, the
networks it used are released).

Closed tabs (the hosted profile's ``closed_session_s``):

Streamlit keeps a disconnected session for ``server.disconnectedSessionTTL`` (60 s in
.streamlit/config.toml), so that a reload or a short network cut finds it again; a class that
follows a shared link leaves one such session per closed tab, each holding its last page run (its
network, its arrays). The server's TTL is fixed when the server starts, before any page runs, so
``release_closed_sooner`` closes them itself: every ``every_s`` on Streamlit's event loop (where
Streamlit touches its session storage), a session whose tab has been gone for ``after_s`` is closed
with the session manager's own ``close_session``, which also drops its uploaded files. Before a large
network is built, ``release_closed_now`` closes every closed tab's session at once, so that the network
a closed tab still held is gone before the next one is built.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

import streamlit as st
from streamlit.logger import get_logger

LOG = get_logger(__name__)


class _SessionEnd:
    """Lives in session state; when Streamlit drops the session, its finalizer runs the callbacks."""

    def __init__(self) -> None:
        self.callbacks: list = []
        weakref.finalize(self, _run_all, self.callbacks)


def _run_all(callbacks: list) -> None:
    for fn in callbacks:
        fn()


def on_session_end(fn) -> None:
    """Call ``fn`` when this session ends (its tab closed and the reconnect window passed)."""
    st.session_state.setdefault("_session_end", _SessionEnd()).callbacks.append(fn)


class ClosedSessionReaper:
    """Close the sessions of a session manager whose tab has been gone ``after_s`` (checked on each ``reap``)."""

    def __init__(self, manager, after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.manager, self.after_s, self.clock = manager, after_s, clock
        self._gone_since: dict[str, float] = {}

    def reap(self, *, force: bool = False) -> list[str]:
        """Close the sessions gone for ``after_s`` or more (``force``: every session whose tab is closed); their ids."""
        now, closed, seen = self.clock(), [], set()
        for info in self.manager.list_sessions():
            sid = info.session.id
            seen.add(sid)
            if self.manager.is_active_session(sid):
                self._gone_since.pop(sid, None)
                continue
            since = self._gone_since.setdefault(sid, now)
            if force or now - since >= self.after_s:
                self.manager.close_session(sid)
                self._gone_since.pop(sid, None)
                closed.append(sid)
                LOG.info("released the session of a tab closed %.0f s ago", now - since)
        for sid in [s for s in self._gone_since if s not in seen]:  # gone by other means (Streamlit's own TTL)
            del self._gone_since[sid]
        return closed


def release_closed_sooner(after_s: float, *, every_s: float = 2.0) -> bool:
    """Close a closed tab's session ``after_s`` after it went (0: leave it to Streamlit); True when it runs.

    Call once per server process (``_router.startup``); on another Streamlit version whose runtime
    lacks the parts used here it does nothing and returns False.
    """
    if after_s <= 0:
        return False
    from pages import _compat

    found = _compat.session_manager()
    if found is None:
        return False
    manager, loop = found
    reaper = ClosedSessionReaper(manager, after_s)
    _RUNNING.update(reaper=reaper, loop=loop)

    def tick() -> None:
        try:
            reaper.reap()
        finally:
            if not loop.is_closed():
                loop.call_later(every_s, tick)

    loop.call_soon_threadsafe(tick)
    return True


_RUNNING: dict = {}  # "reaper", "loop": the process's reaper, once release_closed_sooner started it


def release_closed_now(timeout_s: float = 5.0) -> int:
    """Close every session whose tab is closed, now (before a large network is built: their networks go first).

    Returns how many were closed; 0 where ``release_closed_sooner`` is not running (the default profile).
    """
    reaper, loop = _RUNNING.get("reaper"), _RUNNING.get("loop")
    if reaper is None or loop is None or loop.is_closed():
        return 0
    done, closed = threading.Event(), []

    def run() -> None:
        try:
            closed.extend(reaper.reap(force=True))
        finally:
            done.set()

    loop.call_soon_threadsafe(run)
    done.wait(timeout_s)
    return len(closed)
