"""What a session's old page runs keep alive: a widget gone from the page must not hold its run's globals."""

from __future__ import annotations

import gc

from streamlit.testing.v1 import AppTest


def _script():
    import weakref

    import streamlit as st

    from pages import _router

    if st.session_state.get("forget", True):
        _router.forget_stale_widgets()

    class Big:  # stands for a page run's model and arrays
        pass

    if st.session_state.get("show", True):
        held = Big()
        st.session_state["held"] = weakref.ref(held)
        st.selectbox("Pick", [1, 2], format_func=lambda v: f"{v} of {held}", key="pick")
    st.write("done")


def _held_after_the_widget_went(forget: bool) -> bool:
    at = AppTest.from_function(_script, default_timeout=30)
    at.session_state["forget"] = forget
    at.run()
    assert at.selectbox(key="pick").value == 1
    held = at.session_state["held"]
    at.session_state["show"] = False
    at.run()  # the widget is gone: Streamlit drops its value at the end of this run
    at.run()
    assert not at.exception and not at.get("selectbox")
    state = at.session_state._state._state  # AppTest keeps every format_func under one key of its own for itself;
    state._old_state.get("$$STREAMLIT_INTERNAL_KEY_TESTING", {}).clear()  # a served app has no such key
    gc.collect()
    return held() is not None


def test_a_widget_gone_from_the_page_no_longer_holds_its_page_run():
    assert _held_after_the_widget_went(forget=False)  # Streamlit alone keeps the widget's format_func and its globals
    assert not _held_after_the_widget_went(forget=True)


HOME = """
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=120)
at.run()
assert not at.exception, [e.value for e in at.exception]
print(" ".join(m for m in ("openTSNE", "optuna", "lime", "umap", "sklearn", "scipy") if m in sys.modules))
"""


def test_the_home_page_leaves_the_page_only_libraries_unimported():
    """openTSNE and optuna load where a page uses them; scikit-learn and scipy come with Keras itself."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    out = subprocess.run(
        [sys.executable, "-c", HOME],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CONVLENS_PROFILE": "hosted", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.split()
    assert not {"openTSNE", "optuna", "lime", "umap"} & set(loaded)
    assert {"sklearn", "scipy"} <= set(
        loaded
    )  # `import keras` brings them (keras.wrappers, tf.keras v1): not ours to defer


def test_hosted_drops_a_network_once_its_session_moves_to_another_model(monkeypatch):
    """Hosted: back on the MNIST CNN, the MobileNetV2 the session opened is gone (and its memory with it)."""
    import weakref

    from helpers import app_with_network

    from pages import _working
    from vizcore import profile

    monkeypatch.setattr(_working, "LIMITS", profile.PROFILES["hosted"])
    _working._networks.clear()  # a store made with the hosted limits
    try:
        at = app_with_network("MobileNetV2", timeout=120)
        store = _working._networks()
        assert store.keys() == [("MobileNetV2", None)]
        network = weakref.ref(store.get(("MobileNetV2", None), lambda: None).model)
        at.radio(key="model.source").set_value("bundled").run()
        at.switch_page("pages/activations.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["working_model"].kind != "app"
        assert store.keys() == []
        del at
        profile.release_memory()
        assert network() is None  # nothing else held it
    finally:
        _working._networks.clear()
