"""The app's pages, in menu order: used by app.py, and by a page that Streamlit ran on its own."""

from __future__ import annotations

import streamlit as st

PAGES = (  # (file, title, icon)
    ("pages/model.py", "Model", "🧠"),
    ("pages/builder.py", "Builder", "🏗️"),
    ("pages/training.py", "Training", "📈"),
    ("pages/teach.py", "Teach", "🎓"),
    ("pages/kernels.py", "Kernels", "🧩"),
    ("pages/activations.py", "Activations", "🔥"),
    ("pages/convolution.py", "Convolution", "🔍"),
    ("pages/attribution.py", "Attribution", "🎯"),
    ("pages/robustness.py", "Robustness", "🛡️"),
    ("pages/concepts.py", "Concepts", "💡"),
    ("pages/filters.py", "Filters", "✨"),
    ("pages/dataset.py", "Dataset view", "🗂️"),
)


@st.cache_resource(show_spinner=False)
def startup() -> int:
    """Once per server process, before any TensorFlow op: bound TensorFlow's threads to the profile
    (``CONVLENS_PROFILE``), delete run folders older than its ``run_max_age_s`` and make Streamlit's
    after-run clean-up cheap (``_rerun.lighten``); returns how many run folders went."""
    from pages import _rerun
    from vizcore import profile

    limits = profile.current()
    profile.configure_threads(limits)
    from vizcore import training  # imports TensorFlow: after the thread bounds

    pruned = len(training.prune_runs(training.runs_dir(), limits.run_max_age_s))
    _rerun.lighten()
    from pages import _sessions

    _sessions.release_closed_sooner(limits.closed_session_s)
    return pruned


def forget_stale_widgets() -> int:
    """Drop the metadata Streamlit keeps for widgets no longer on the page (``_compat.forget_stale_widgets``)."""
    from pages import _compat

    return _compat.forget_stale_widgets()


def navigation():
    """Page config and the navigation menu; returns the page to run."""
    st.set_page_config(page_title="ConvLens", page_icon="🔬", layout="wide")
    return st.navigation(
        [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(PAGES)]
    )


def ensure() -> None:
    """Make sure a page runs under app.py's navigation, not Streamlit's legacy pages/ mode.

    Streamlit runs the first script of a process in its legacy mode when a ``pages/`` folder exists
    (AppTest does so on every run): a deep link such as ``/training`` then executes the page file
    directly, with every file of ``pages/`` in the sidebar. On a session's first run that page
    reruns itself through app.py (there is no click yet to lose); on later runs it only leaves
    the legacy mode, whose page is then the same as the router's.
    """
    from pages import _compat

    forget_stale_widgets()  # every page run passes here (``_working.init_state``)
    first = not st.session_state.get("_router.seen")
    st.session_state["_router.seen"] = True
    if _compat.leave_legacy_pages_mode() and first:
        st.rerun()
