"""What every page shares: the working model in session state, its loaders, the sidebar, link notices.

Models from ``st.cache_resource`` (the loaders here) are shared by every session and must never be
mutated; a model a person uploads stays in their own session. Computations on a model are cached in
``pages/_cache.py``.
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from pages import _compat, _model_options, _router, _sessions
from vizcore import models, profile
from vizcore.errors import ConvLensError, ModelLoadError

WORKING = "working_model"
SESSION_MODELS = "session_models"  # key -> LoadedModel: uploaded, built or trained in this session
LIMITS = profile.current()  # this server's profile (CONVLENS_PROFILE)
MAX_SESSION_MODELS = LIMITS.session_models
SESSION_KINDS = ("upload", "built", "trained")


@dataclass(frozen=True)
class Choice:
    """Which model is the working model: kind is bundled, preset, app, or a session kind
    (upload, built, trained) whose model lives in this session's state."""

    kind: str
    name: str
    weights: str | None = None


def default_choice() -> Choice:
    bundled = models.list_bundled()
    if "mnist_cnn" in bundled:
        return Choice("bundled", "mnist_cnn")
    return Choice("bundled", bundled[0]) if bundled else Choice("preset", "mnist_cnn")


def choice_from_link(text: str) -> Choice | None:
    """The model a link names (``bundled:mnist_cnn``, ``preset:lenet5``, ``app:MobileNetV2:imagenet``)."""
    kind, _, rest = text.partition(":")
    name, _, weights = rest.partition(":")
    if kind == "bundled" and name in models.list_bundled():
        return Choice("bundled", name)
    if kind == "preset" and name in models.presets.PRESETS:
        return Choice("preset", name)
    if kind == "app" and name in applications() and weights in ("imagenet", "none"):
        return Choice("app", name, None if weights == "none" else weights)
    return None


def link_of(choice: Choice) -> str | None:
    """The ``model`` query parameter of a choice (None for models that live in one session)."""
    if choice.kind in SESSION_KINDS:
        return None
    return ":".join([choice.kind, choice.name] + ([choice.weights or "none"] if choice.kind == "app" else []))


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


@contextmanager
def heavy(*, hold: bool = True):
    """Around a costly call: hold one of the server's heavy slots, saying so while other sessions' work runs first.

    ``hold=False`` for a cached computation that takes the slot itself on a miss (``_cache.attribution_map``):
    the note then shows while the server is busy, and the block runs at once.
    """
    note = st.empty()

    def waiting() -> None:
        note.info(profile.WAIT.format(slots=LIMITS.heavy_slots), icon="⏳")

    if hold:
        with profile.heavy_work(on_wait=waiting):
            note.empty()
            yield
        return
    if profile.heavy_busy():
        waiting()
    try:
        yield
    finally:
        note.empty()


def init_state() -> None:
    """Initialise session state once per session (the working model may come from the link)."""
    _router.ensure()
    if WORKING not in st.session_state:
        choice = default_choice()
        if "model" in st.query_params:
            linked = choice_from_link(st.query_params["model"])
            if linked is None:
                notice(
                    f"The link's model={st.query_params['model']!r} is not available here; showing the default model."
                )
            choice = linked or choice
        st.session_state[WORKING] = choice
        on_session_end(functools.partial(_networks().leave, _session_id()))
        on_session_end(profile.release_memory_soon)  # what the session owned goes with it
    st.session_state.setdefault(SESSION_MODELS, {})


@st.cache_resource(show_spinner="Loading the bundled model…", max_entries=16)
def _bundled(name: str) -> models.LoadedModel:
    return models.open_bundled(name)


@st.cache_resource(show_spinner="Building the preset…", max_entries=16)
def _preset(name: str) -> models.LoadedModel:
    return models.open_preset(name)


def applications() -> list[str]:
    """The keras.applications networks this server offers (the hosted profile has no VGG16)."""
    return [name for name in models.applications.APPLICATIONS if LIMITS.offers(name)]


@st.cache_resource(max_entries=1)
def _networks() -> models.applications.NetworkStore:
    """The keras.applications networks loaded on this server (at most ``LIMITS.max_applications``; in the
    hosted profile only while a session works on them)."""
    return models.applications.NetworkStore(
        LIMITS.max_applications,
        drop_unused=LIMITS.drop_unused_applications,
        release=profile.release_memory,
        release_soon=profile.release_memory_soon,
    )


def _session_id() -> str:
    return _compat.session_id()


def _application(name: str, weights: str | None) -> models.LoadedModel:
    """A shared keras.applications network; opening one more than the profile keeps drops the oldest first."""
    if not LIMITS.offers(name):
        raise ModelLoadError(
            f"{name} is not offered on this server (it needs more memory than the hosted profile has)."
        )
    store = _networks()
    store.use(_session_id(), (name, weights))  # before building: no other session's switch drops it meanwhile
    if (name, weights) not in store and _sessions.release_closed_now():  # hosted: closed tabs' networks go first
        profile.release_memory()

    def build() -> models.LoadedModel:
        with st.spinner("Building the network (ImageNet weights are downloaded once)…"):
            return models.open_application(name, weights=weights)

    return store.get((name, weights), build)


def open_choice(choice: Choice) -> models.LoadedModel:
    """The LoadedModel behind a choice (cached; uploads come from this session's state)."""
    if choice.kind != "app":
        _networks().use(_session_id(), None)  # in the hosted profile, a network nobody works on goes
    if choice.kind == "bundled":
        return _bundled(choice.name)
    if choice.kind == "preset":
        return _preset(choice.name)
    if choice.kind == "app":
        return _application(choice.name, choice.weights)
    if choice.kind in SESSION_KINDS and choice.name in st.session_state.get(SESSION_MODELS, {}):
        return st.session_state[SESSION_MODELS][choice.name]
    raise KeyError(f"No model for {choice}")


def set_working(choice: Choice) -> None:
    st.session_state[WORKING] = choice


def add_session_model(kind: str, loaded: models.LoadedModel) -> Choice:
    """Keep a model in this session only (bounded: the oldest ones that are not working go)."""
    store = st.session_state[SESSION_MODELS]
    store[loaded.key] = loaded
    working = st.session_state.get(WORKING)
    for key in list(store)[:-MAX_SESSION_MODELS]:
        if working is None or key != working.name:
            del store[key]
    return Choice(kind, loaded.key)


def add_upload(data: bytes, filename: str) -> Choice:
    """Load an uploaded file into this session and return its choice (raises ModelLoadError)."""
    key = "upload:" + hashlib.sha1(data).hexdigest()[:12]
    store = st.session_state[SESSION_MODELS]
    if key in store:
        return Choice("upload", key)
    return add_session_model("upload", models.open_upload(data, filename, key))


def working_model() -> models.LoadedModel:
    """The session's working model, with the range and names chosen for it; falls back to the default
    when it cannot be opened."""
    init_state()
    choice = st.session_state[WORKING]
    try:
        loaded = open_choice(choice)
    except (ConvLensError, KeyError) as err:
        choice = default_choice()
        st.warning(f"The model chosen before could not be opened ({err}); using the default model.")
        set_working(choice)
        loaded = open_choice(choice)
    link = link_of(choice)
    if link:
        st.query_params["model"] = link
    else:
        st.query_params.pop("model", None)
    return _model_options.apply(loaded)  # the range and class names chosen on the Model page


def sidebar(loaded: models.LoadedModel) -> None:
    """The working model, shown on every page."""
    spec = loaded.spec
    size = f"{spec.height or 'any'}×{spec.width or 'any'}×{spec.channels}"
    st.sidebar.markdown(f"**Working model**  \n{loaded.label}  \n`{size}` · {len(loaded.class_names)} classes")


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
