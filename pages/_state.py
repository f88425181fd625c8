"""A page's state: widget values bound to the URL, kept across pages, reset when what they depend on changes.

One binder for every page:

- ``linked(key, default, options)``: keyword arguments for a widget whose value lives in the URL as
  ``?<key>=…`` (Streamlit's own ``bind="query-params"``), with a notice for a link value that is not
  available and links made before the binding (``legacy``).
- ``keep(key, default, param=...)``: for the few widgets Streamlit cannot bind (a label that changes
  between runs) or that need no URL: the value survives page switches, and with ``param`` is in the URL.
- ``put(key, value)``: set such a widget's value from code (a recipe button).
- ``reset_when(key, *deps)``: a widget starts again at its default (or ``to``) when ``deps`` change,
  e.g. ``reset_when("attr.target", picked.key)``: a new input starts at its top class.
- ``changed(name, value)``: whether ``value`` differs from the one seen on the last run (a new click).
- ``take_link(short, key, value_of)``: a short link value from another page (``?layer=conv2``), taken on
  every visit.

Example:
    >>> scale = st.radio("Scale", SCALES, 0, **_state.linked("act.scale", "map", SCALES))
"""

from __future__ import annotations

import streamlit as st

DEPS = "_state.deps"  # session state: {widget key: the deps it was last drawn for}
SEEN = "_state.seen"  # session state: {name: the value ``changed`` saw last}


_MISSING = object()


def _decode(raw: str, default):
    """A query-parameter string as the type of the widget's default (raises ValueError)."""
    if isinstance(default, bool):
        if raw not in ("0", "1", "true", "false"):
            raise ValueError(raw)
        return raw in ("1", "true")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, tuple)):
        return [v for v in raw.split(",") if v]
    return raw


def _encode(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _valid(value, options) -> bool:
    if callable(options):
        return bool(options(value))
    if isinstance(value, list):
        return all(v in options for v in value)
    return value in options


def notice(text: str) -> None:
    """A short notice (e.g. a link value that no longer exists), shown as a toast."""
    st.toast(text, icon="🔗")


def linked(key: str, default, options, *, format_func=str, legacy: str | None = None) -> dict:
    """Keyword arguments for a widget whose value lives in the page's URL as ``?<key>=…`` (Streamlit's binding).

    Streamlit seeds the widget from the link, keeps its value across page switches and drops a link
    value that is not among ``options``; this adds the short notice for such a value, and reads a link
    made before the binding, which named the value ``legacy`` (``?layer=conv2``). Call it once per run,
    before creating the widget with ``default`` as its value and ``**linked(...)``.
    """
    consumed = st.session_state.setdefault("_link_consumed", set())  # a link sets the first view only
    if key not in consumed:
        consumed.add(key)
        if key in st.query_params:
            raw = st.query_params.get_all(key)
            labels = {format_func(o) for o in options} if not callable(options) else None
            try:
                ok = all(r in labels for r in raw) if labels is not None else all(options(float(r)) for r in raw)
            except ValueError:
                ok = False
            if not ok:
                notice(f"The link's {key}={','.join(raw)!r} is not available here; showing {format_func(default)!r}.")
        elif legacy and legacy in st.query_params:
            raw = st.query_params[legacy]
            del st.query_params[legacy]
            try:
                value = _decode(raw, default)
            except ValueError:
                notice(f"The link's {legacy}={raw!r} is not a valid value; showing the default.")
            else:
                if _valid(value, options):
                    st.session_state[key] = value
                    st.query_params[key] = (
                        [format_func(v) for v in value] if isinstance(value, list) else format_func(value)
                    )
                else:
                    notice(
                        f"The link's {legacy}={raw!r} is not available for this model; showing {_encode(default)!r}."
                    )
    return {"key": key, "bind": "query-params", "persist_state": "session"}


def keep(key: str, default, *, param: str | None = None, legacy: str | None = None, options=None):
    """A widget value that survives page switches and, with ``param``, lives in the page's URL.

    For the few widgets that ``linked`` cannot bind (a label that changes between runs, so
    Streamlit's URL value would go stale) or that need no URL. Streamlit drops the state of
    widgets that are not shown; this keeps a copy. On the first visit the value comes from the
    link's ``param`` (or, in a link made before, ``legacy``); a value that is not among
    ``options`` falls back to ``default`` with a short notice. Call it before creating the widget
    with ``key=key`` and no ``value``/``index`` argument.

    Returns:
        The value the widget will show.
    """
    store = f"_kept.{key}"
    from_link = None
    if key not in st.session_state:
        value = st.session_state.get(store, _MISSING)
        consumed = st.session_state.setdefault("_link_consumed", set())  # a link sets the first view only
        if param and legacy and legacy in st.query_params:  # a link made before names it ``legacy``
            st.query_params.setdefault(param, st.query_params[legacy])
            del st.query_params[legacy]
        if value is _MISSING and param and param in st.query_params and param not in consumed:
            consumed.add(param)
            from_link = st.query_params[param]
            try:
                value = _decode(from_link, default)
            except ValueError:
                value = _MISSING
                notice(f"The link's {param}={from_link!r} is not a valid value; showing the default.")
        st.session_state[key] = default if value is _MISSING else value
    value = st.session_state[key]
    if options is not None and not _valid(value, options):
        if from_link is not None:
            notice(f"The link's {param}={from_link!r} is not available for this model; showing {_encode(default)!r}.")
        st.session_state[key] = value = default
    st.session_state[store] = value
    if param:
        st.query_params[param] = _encode(value)
    return value


def put(key: str, value) -> None:
    """Set the value of a widget that ``keep`` keeps (before the widget is drawn, or from a callback)."""
    st.session_state[key] = st.session_state[f"_kept.{key}"] = value


def reset_when(key: str, *deps, to=_MISSING) -> bool:
    """Forget a widget's value when ``deps`` differ from the run before, so it starts at its default (or ``to``).

    The first time nothing is reset: the widget starts at its link or default anyway. Call it before the
    widget is drawn. Returns whether it reset.

    Example:
        >>> _state.reset_when("kernels.mode", lk.path, to=kernels.default_mode(lk))  # a new layer: its own mode
    """
    seen = st.session_state.setdefault(DEPS, {})
    before, seen[key] = seen.get(key, _MISSING), deps
    if before is _MISSING or before == deps:
        return False
    if to is _MISSING:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = to  # a widget bound to the URL would take the URL's old value back
    st.session_state.pop(f"_kept.{key}", None)
    return True


def changed(name: str, value) -> bool:
    """Whether ``value`` differs from the one this saw under ``name`` on the last call (True the first time)."""
    seen = st.session_state.setdefault(SEEN, {})
    before, seen[name] = seen.get(name, _MISSING), value
    return before is _MISSING or before != value


def take_link(short: str, key: str, value_of) -> None:
    """Take a short link value (``?layer=conv2&ch=5``, as other pages link to the Dataset view) on every visit.

    ``value_of(raw)`` is the widget's value, or None for a value not available here (a notice says so). The
    short parameter leaves the URL; the widget's own binding writes its value there.
    """
    if short in st.query_params:
        raw = st.query_params[short]
        del st.query_params[short]
        value = value_of(raw)
        if value is None:
            notice(f"The link's {short}={raw!r} is not available here.")
        else:
            st.session_state[key] = value
