"""Every use of Streamlit's internals, in one module, for the Streamlit pinned in requirements.txt.

Streamlit offers no public API for what these shims do; each reaches into a private part of the
version it was written for (``WRITTEN_FOR``) and does nothing, returning a neutral value, where that
part is missing. ``tests/ui/test_compat.py`` fails loudly when the installed Streamlit is another
version, and exercises every shim, so that an upgrade re-reads this file instead of finding out in
production that a shim quietly stopped working.

The shims:
    - ``session_id()``: the id of the session whose script runs now (``get_script_run_ctx``).
    - ``forget_stale_widgets()``: drop the metadata of widgets gone from the page (widget state internals).
    - ``leave_legacy_pages_mode()``: leave the ``pages/`` folder mode (``PagesManager``).
    - ``replace_after_run_cleanup(fn)``: replace ``script_runner._clean_problem_modules``, which calls
      ``keras.backend.clear_session()`` after every run.
    - ``session_manager()``: the runtime's session manager and event loop (the closed-session reaper).

Example:
    >>> from pages import _compat
    >>> _compat.supported()
    True
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

WRITTEN_FOR = "1.67.0"  # the Streamlit of requirements.txt that every shim below was written for and tested on


def supported() -> bool:
    """Whether the installed Streamlit is the one these shims were written for."""
    return st.__version__ == WRITTEN_FOR


def session_id() -> str:
    """The id of the session whose script runs in this thread; "bare" outside a session (bare mode, a thread)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else "bare"


def forget_stale_widgets() -> int:
    """Drop the metadata Streamlit keeps for widgets no longer on the page; returns how many went.

    Streamlit removes a stale widget's value but keeps its metadata, whose ``format_func`` and
    callbacks hold the globals of the page run that made it: that run's model and arrays stay
    alive until the same widget is drawn again (a dropped 224x224 network kept for the whole tour).
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    try:
        state = ctx.session_state._state  # noqa: SLF001 (no public API for this)
        widgets, old = state._new_widget_state, state._old_state  # noqa: SLF001
    except AttributeError:  # no session (bare mode) or another Streamlit version: nothing to do
        return 0
    stale = [k for k in widgets.widget_metadata if k not in widgets.states and k not in old]  # no value left anywhere
    for k in stale:
        del widgets.widget_metadata[k]
    return len(stale)


def leave_legacy_pages_mode() -> bool:
    """Leave Streamlit's legacy ``pages/`` folder mode; True when it was on (the page then runs under app.py).

    Streamlit runs the first script of a process in that mode when a ``pages/`` folder exists (AppTest
    does so on every run): a deep link such as ``/training`` then executes the page file directly.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return False
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        return True
    return False


def replace_after_run_cleanup(fn: Callable[[], None]) -> bool:
    """Make ``fn`` Streamlit's clean-up after every script run (instead of one that clears the Keras session).

    Returns False, changing nothing, on a Streamlit without ``script_runner._clean_problem_modules``.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    script_runner._clean_problem_modules = fn  # noqa: SLF001 (looked up by name after every run)
    return True


def after_run_cleanup() -> Callable[[], None] | None:
    """The function Streamlit calls after every script run (None on a Streamlit without it)."""
    from streamlit.runtime.scriptrunner import script_runner

    return getattr(script_runner, "_clean_problem_modules", None)


def session_manager():
    """``(manager, event loop)`` of the running server's sessions, or None (no server, or another Streamlit).

    The manager offers ``list_sessions()``, ``is_active_session(id)`` and ``close_session(id)``; touch it
    on the event loop only.
    """
    try:
        from streamlit.runtime import Runtime

        runtime = Runtime.instance()
        manager = runtime._session_mgr  # noqa: SLF001 (no public accessor)
        loop = runtime._get_async_objs().eventloop  # noqa: SLF001
    except (ImportError, RuntimeError, AttributeError):
        return None
    if not all(hasattr(manager, m) for m in ("list_sessions", "is_active_session", "close_session")):
        return None
    return manager, loop
