"""The working model: its loaders, the session's own models, and the sidebar that names it.

Models from ``st.cache_resource`` (the loaders here) are shared by every session and must never be
mutated; a model a person uploads, builds or trains stays in their own session. Which model is the
working model is a ``_choice.Choice`` in session state; ``working_model()`` opens it on every page run.
Computations on a model are cached in ``pages/_cache.py``; costly ones run through ``pages/_runner.py``.

Example (a page):
    >>> loaded = _working.working_model()
    >>> _working.sidebar(loaded)
"""

from __future__ import annotations

import functools
import hashlib

import streamlit as st

from pages import _compat, _model_options, _router, _sessions, _state
from pages._choice import SESSION_KINDS, Choice, choice_from_link, default_choice, link_of
from vizcore import models, profile
from vizcore.errors import ConvLensError, ModelLoadError

WORKING = "working_model"
SESSION_MODELS = "session_models"  # key -> LoadedModel: uploaded, built or trained in this session
LIMITS = profile.current()  # this server's profile (CONVLENS_PROFILE)
MAX_SESSION_MODELS = LIMITS.session_models


def init_state() -> None:
    """Initialise session state once per session (the working model may come from the link)."""
    _router.ensure()
    if WORKING not in st.session_state:
        choice = default_choice()
        if "model" in st.query_params:
            linked = choice_from_link(st.query_params["model"])
            if linked is None:
                _state.notice(
                    f"The link's model={st.query_params['model']!r} is not available here; showing the default model."
                )
            choice = linked or choice
        st.session_state[WORKING] = choice
        _sessions.on_session_end(functools.partial(_networks().leave, _compat.session_id()))
        _sessions.on_session_end(profile.release_memory_soon)  # what the session owned goes with it
    st.session_state.setdefault(SESSION_MODELS, {})


@st.cache_resource(show_spinner="Loading the bundled model…", max_entries=16)
def _bundled(name: str) -> models.LoadedModel:
    return models.open_bundled(name)


@st.cache_resource(show_spinner="Building the preset…", max_entries=16)
def _preset(name: str) -> models.LoadedModel:
    return models.open_preset(name)


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


def _application(name: str, weights: str | None) -> models.LoadedModel:
    """A shared keras.applications network; opening one more than the profile keeps drops the oldest first."""
    if not LIMITS.offers(name):
        raise ModelLoadError(
            f"{name} is not offered on this server (it needs more memory than the hosted profile has)."
        )
    store = _networks()
    store.use(_compat.session_id(), (name, weights))  # before building: no other session's switch drops it meanwhile
    if (name, weights) not in store and _sessions.release_closed_now():  # hosted: closed tabs' networks go first
        profile.release_memory()

    def build() -> models.LoadedModel:
        with st.spinner("Building the network (ImageNet weights are downloaded once)…"):
            return models.open_application(name, weights=weights)

    return store.get((name, weights), build)


def open_choice(choice: Choice) -> models.LoadedModel:
    """The LoadedModel behind a choice (cached; uploads come from this session's state)."""
    if choice.kind != "app":
        _networks().use(_compat.session_id(), None)  # in the hosted profile, a network nobody works on goes
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
