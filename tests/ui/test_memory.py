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
