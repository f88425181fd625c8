"""One runner for costly work: run it with progress and Cancel, keep the result until an input changes.

Every page asks the runner instead of keeping results itself::

    heat = _runner.run("attr.run.Score-CAM", (loaded, picked.key, target), compute,
                       ask=_runner.Ask("Score-CAM", "65 forward passes, about 2.1 s"))

``compute(sink)`` gets a progress callback ``sink(done, total)`` (None when no bar is shown) and
returns the result. The result is keyed on ``key`` and the fingerprint of ``inputs``
(``fingerprint``: numbers, strings, tuples, arrays by content, a ``LoadedModel`` by its key, other
objects by identity); it is handed back on every rerun until an input changes. Two stores, one interface:

- ``scope="session"``: this session's result of each key, in ``st.session_state`` (a new input replaces it);
- ``scope="server"``: results shared by every session, at most ``limit`` inputs per key (the oldest go
  first), thread-safe.

With ``ask`` the work waits for a Run button (its cost said beside it); while it runs, a Cancel
button stops it (a click reruns the page, which ends the run, and the next run says so). With
``heavy`` it holds one of the server's heavy slots (``_heavy.slot``). A ``ConvLensError`` is said in
one sentence; ``AttributionCancelled`` (a progress callback that asked to stop) as a cancellation.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from pages import _heavy
from vizcore.errors import AttributionCancelled, ConvLensError
from vizcore.models import LoadedModel

T = TypeVar("T")
SESSION, SERVER = "session", "server"
STATE = "_runner"  # session state: the session store
RUNNING = "_runner.running"  # session state: {key: inputs} of runs that started and have not finished
SERVER_LIMIT = 8  # results kept per key in the server store, unless the caller says otherwise
_MISSING = object()


@dataclass(frozen=True)
class Ask:
    """Wait for a button before computing: ``Run <what>`` (or ``label``), with ``note`` (the cost) beside it."""

    what: str
    note: str = ""
    label: str | None = None  # the button's text; default "Run <what>"
    key: str | None = None  # the button's widget key; default "<run key>.run"
    primary: bool = False
    help: str | None = "Costly: runs only when you ask"
    cancel: bool = True  # a Cancel button while it runs


@dataclass(frozen=True)
class Kept:
    """A result and the fingerprint of the inputs it was computed for."""

    inputs: Hashable
    value: Any


class _Same:
    """An object keyed by identity (it is held, so its id cannot be reused while the key lives)."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"<{type(self.obj).__name__} at {id(self.obj):#x}>"


def fingerprint(value) -> Hashable:
    """A hashable stand-in for ``value`` that is equal exactly when the inputs are the same.

    Numbers and strings stand for themselves; tuples, lists, dicts and sets by their items; NumPy arrays by
    shape, dtype and content; a ``LoadedModel`` by its key (weights, range and class names included); other
    hashable objects (frozen dataclasses) by their own hash and equality; anything else by identity.
    """
    if value is None or isinstance(value, (str, bytes, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return tuple(fingerprint(v) for v in value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(k), fingerprint(v)) for k, v in value.items()), key=lambda kv: kv[0])))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(fingerprint(v) for v in value))
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return ("ndarray", data.shape, data.dtype.str, hashlib.sha1(data.view(np.uint8).data).hexdigest())
    if isinstance(value, LoadedModel):
        return ("model", value.key)
    try:
        hash(value)
    except TypeError:
        return _Same(value)
    return value


class SessionStore:
    """This session's results: one per key, replaced when its inputs change."""

    def __init__(self) -> None:
        self._kept: dict[str, Kept] = {}

    def get(self, key: str, inputs: Hashable):
        found = self._kept.get(key)
        return found.value if found is not None and found.inputs == inputs else _MISSING

    def put(self, key: str, inputs: Hashable, value, *, limit: int = 1) -> None:
        self._kept[key] = Kept(inputs, value)

    def drop(self, key: str, inputs: Hashable | None = None) -> None:
        """Forget ``key``'s result (only when it was computed for ``inputs``, if given)."""
        found = self._kept.get(key)
        if found is not None and (inputs is None or found.inputs == inputs):
            del self._kept[key]

    def kept(self, key: str) -> Kept | None:
        """The result kept for ``key`` and its inputs, whatever they are (None: nothing kept)."""
        return self._kept.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._kept


class ServerStore:
    """Results shared by every session of this server: at most ``limit`` inputs per key, the oldest go first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, OrderedDict] = {}

    def get(self, key: str, inputs: Hashable):
        with self._lock:
            found = self._kept.get(key)
            if found is None or inputs not in found:
                return _MISSING
            found.move_to_end(inputs)
            return found[inputs]

    def put(self, key: str, inputs: Hashable, value, *, limit: int = SERVER_LIMIT) -> None:
        with self._lock:
            found = self._kept.setdefault(key, OrderedDict())
            found[inputs] = value
            found.move_to_end(inputs)
            while len(found) > max(1, limit):
                found.popitem(last=False)

    def drop(self, key: str, inputs: Hashable | None = None) -> None:
        with self._lock:
            if inputs is None:
                self._kept.pop(key, None)
            else:
                self._kept.get(key, {}).pop(inputs, None)

    def count(self, key: str) -> int:
        """How many results ``key`` keeps."""
        with self._lock:
            return len(self._kept.get(key, ()))


@st.cache_resource(show_spinner=False)
def server_store() -> ServerStore:
    """The server's one store of shared results (bounded per key)."""
    return ServerStore()


def session_store() -> SessionStore:
    """This session's store of results."""
    return st.session_state.setdefault(STATE, SessionStore())


def store(scope: str):
    if scope == SESSION:
        return session_store()
    if scope == SERVER:
        return server_store()
    raise ValueError(f"scope must be {SESSION!r} or {SERVER!r}, not {scope!r}")


def kept(key: str, inputs, *, scope: str = SESSION):
    """The result ``run`` keeps for ``key`` when it was computed for these ``inputs``; else None (nothing runs)."""
    value = store(scope).get(key, fingerprint(inputs))
    return None if value is _MISSING else value


def keep(key: str, inputs, value, *, scope: str = SESSION, limit: int = SERVER_LIMIT) -> None:
    """Keep ``value`` as ``key``'s result for ``inputs`` (a result found elsewhere, e.g. precomputed)."""
    store(scope).put(key, fingerprint(inputs), value, limit=limit)


def drop(key: str, *, scope: str = SESSION) -> None:
    """Forget every result of ``key`` (a Clear button)."""
    store(scope).drop(key)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{s / 60:.1f} min"


def about(seconds: float) -> str:
    """An estimate in words: 'about 2.1 s on this machine'."""
    return f"about {_seconds(seconds)} on this machine"


def run(
    key: str,
    inputs,
    compute: Callable[[Callable | None], T],
    *,
    scope: str = SESSION,
    heavy: bool = True,
    ask: Ask | None = None,
    bar: bool | None = None,
    what: str | None = None,
    unit: str = "steps",
    limit: int = SERVER_LIMIT,
) -> T | None:
    """``compute(sink)``'s result for these ``inputs``, computed once and kept until an input changes.

    Args:
        key: names the result (and, with ``.run``/``.cancel``, its buttons).
        inputs: what the result depends on (see ``fingerprint``).
        compute: ``compute(sink)``; ``sink(done, total)`` or ``sink(done, total, stage)`` moves the bar
            (None when there is no bar); raising ``AttributionCancelled`` cancels.
        scope: "session" (this session only) or "server" (every session; at most ``limit`` per key).
        heavy: hold one of the server's heavy slots while computing.
        ask: wait for a button; None computes at once.
        bar: show a progress bar (default: with ``ask``).
        what: the work's name in the bar and the notes (default ``ask.what``, else ``key``).
        unit: what ``done`` counts, in the bar's text.

    Returns:
        The result, or None while it waits for the button, or when it was cancelled or failed.
    """
    fp = fingerprint(inputs)
    results = store(scope)
    slot = st.empty()  # the button, the bar and Cancel; there on every run, so later elements keep their place
    found = results.get(key, fp)
    if found is not _MISSING:
        return found
    if scope == SESSION:
        results.drop(key)  # an input changed: the old result goes
    what = what or (ask.what if ask else key)
    running = st.session_state.setdefault(RUNNING, {})
    stopped = running.pop(key, None) == fp  # a click (Cancel, or any other) reran the page while it ran
    box = slot.container()
    with box:
        if stopped:
            st.info(f"{what} was stopped before it finished.")
        if ask is not None:
            c1, c2 = st.columns([1, 3], vertical_alignment="center") if ask.note else (st, None)
            go = c1.button(
                ask.label or f"Run {what}",
                key=ask.key or f"{key}.run",
                type="primary" if ask.primary else "secondary",
                help=ask.help,
            )
            if c2 is not None:
                c2.caption(ask.note)
            if not go:
                return None
        progress = st.progress(0.0, text=f"{what}…") if (ask is not None if bar is None else bar) else None
        if ask is not None and ask.cancel:
            st.button("Cancel", key=f"{key}.cancel", help="Stop the run; nothing is kept")

    def sink(done: int, total: int, stage: str | None = None) -> None:
        text = f"{what}: {done:,} of {total:,} {unit}"
        if stage:  # a stage name of its own: "Explaining… (step 3 of 7)"
            text = f"{stage}… (step {min(done + 1, total)} of {total})"
        progress.progress(min(1.0, done / max(1, total)), text=text)

    running[key] = fp
    try:
        with box, _heavy.slot() if heavy else contextlib.nullcontext():  # what compute shows goes with the slot
            result = compute(sink if progress is not None else None)
    except AttributionCancelled:  # the button stays for another try
        running.pop(key, None)
        box.info(f"{what} cancelled.")
        return None
    except ConvLensError as err:  # a request the method cannot honour: one sentence
        running.pop(key, None)
        box.error(str(err))
        return None
    except Exception:
        running.pop(key, None)
        raise
    # a rerun or a stop is not an Exception: the mark stays, and the next run says the work was stopped
    running.pop(key, None)
    slot.empty()
    results.put(key, fp, result, limit=limit)
    return result
