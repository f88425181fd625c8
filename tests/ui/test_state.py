"""pages/_state.py: widget values bound to the URL, kept across pages, reset when what they depend on changes.

Scripts run in AppTest, a real Streamlit session with its query parameters.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

SCALES = ["map", "layer", "global"]


def _bound():
    import streamlit as st

    from pages import _state

    scales = ["map", "layer", "global"]
    st.radio("Scale", scales, 0, **_state.linked("t.scale", "map", scales, legacy="scale"))
    st.number_input("Channel", 0, 9, 0, **_state.linked("t.ch", 0, range(10)))
    st.session_state["kept"] = _state.keep("t.target", 3, param="t.target", options=range(10))
    st.selectbox("Target", range(10), key="t.target")


def test_a_linked_widget_opens_at_its_link_then_follows_the_person():
    """Link -> widget here; widget -> URL is the browser's half of Streamlit's binding (the browser tests)."""
    at = AppTest.from_function(_bound, default_timeout=30)
    at.query_params.update({"t.scale": "layer", "t.ch": "7"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="t.scale").value == "layer" and at.number_input(key="t.ch").value == 7
    at.radio(key="t.scale").set_value("global").run()
    at.number_input(key="t.ch").set_value(2).run()
    at.run()
    assert at.radio(key="t.scale").value == "global" and at.number_input(key="t.ch").value == 2  # the link set the
    assert not at.toast  # first view only


def test_a_link_value_that_is_not_available_falls_back_with_a_notice():
    at = AppTest.from_function(_bound, default_timeout=30)
    at.query_params["t.scale"] = "nonsense"
    at.run()
    assert at.radio(key="t.scale").value == "map"
    assert any("t.scale='nonsense' is not available" in t.value for t in at.toast)


def test_a_link_made_before_the_binding_is_read_and_rewritten():
    at = AppTest.from_function(_bound, default_timeout=30)
    at.query_params["scale"] = "global"  # ?scale=global, the name before the page had a prefix
    at.run()
    assert at.radio(key="t.scale").value == "global"
    assert at.query_params["t.scale"] == "global" and "scale" not in at.query_params


def test_keep_reads_its_link_keeps_its_value_and_writes_the_url():
    at = AppTest.from_function(_bound, default_timeout=30)
    at.query_params["t.target"] = "5"
    at.run()
    assert at.session_state["kept"] == 5 and at.selectbox(key="t.target").value == 5
    at.selectbox(key="t.target").set_value(8).run()
    assert at.query_params["t.target"] == "8" and at.session_state["kept"] == 8
    at.query_params["t.target"] = "2"  # a link sets the first view only
    at.run()
    assert at.selectbox(key="t.target").value == 8


def _reset():
    import streamlit as st

    from pages import _state

    dep = st.session_state.get("dep", "a")
    st.session_state["did"] = _state.reset_when("t.choice", dep, to=st.session_state.get("to", _state._MISSING))
    st.selectbox("Choice", ["x", "y", "z"], key="t.choice")
    st.session_state["new_click"] = _state.changed("t.click", st.session_state.get("click"))


def test_reset_when_forgets_a_value_only_when_a_dependency_changes():
    at = AppTest.from_function(_reset, default_timeout=30)
    at.run()
    assert at.session_state["did"] is False  # the first time: nothing to reset from
    at.selectbox(key="t.choice").set_value("z").run()
    at.run()
    assert at.selectbox(key="t.choice").value == "z" and at.session_state["did"] is False
    at.session_state["dep"] = "b"
    at.run()
    assert at.session_state["did"] is True and at.selectbox(key="t.choice").value == "x"  # back at its default
    at.selectbox(key="t.choice").set_value("z").run()
    at.session_state["dep"], at.session_state["to"] = "c", "y"
    at.run()
    assert at.selectbox(key="t.choice").value == "y"  # or at the value given


def test_changed_is_true_once_for_each_new_value():
    at = AppTest.from_function(_reset, default_timeout=30)
    at.run()
    assert at.session_state["new_click"] is True  # nothing seen before
    at.run()
    assert at.session_state["new_click"] is False
    at.session_state["click"] = (3, 4)
    at.run()
    assert at.session_state["new_click"] is True
    at.run()
    assert at.session_state["new_click"] is False


def _short_link():
    import streamlit as st

    from pages import _state

    _state.take_link("ch", "t.ch", lambda raw: int(raw) if raw.isdigit() and int(raw) < 10 else None)
    st.number_input("Channel", 0, 9, 0, **_state.linked("t.ch", 0, range(10)))


def test_a_short_link_from_another_page_is_taken_on_every_visit():
    at = AppTest.from_function(_short_link, default_timeout=30)
    at.query_params["ch"] = "4"
    at.run()
    assert at.number_input(key="t.ch").value == 4 and "ch" not in at.query_params
    at.query_params["ch"] = "6"  # a second visit from another page's link
    at.run()
    assert at.number_input(key="t.ch").value == 6
    at.query_params["ch"] = "60"
    at.run()
    assert at.number_input(key="t.ch").value == 6 and any("ch='60' is not available" in t.value for t in at.toast)
