"""pages/_runner.py: costly work keyed on its inputs, kept until one changes, in a session or server store.

Scripts run in AppTest (a real Streamlit session); the computations count their calls.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pages import _runner
from vizcore import models, profile


def test_fingerprint_is_equal_exactly_when_the_inputs_are():
    fp = _runner.fingerprint
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert fp((1, "x", a)) == fp((1, "x", a.copy()))  # arrays by content
    b = a.copy()
    b[2, 3] += 1
    assert fp(a) != fp(b)
    assert fp(a) != fp(a.astype(np.float64)) and fp(a) != fp(a.reshape(4, 3))  # dtype and shape count
    assert fp({"b": 2, "a": [1, 2]}) == fp({"a": (1, 2), "b": 2}) != fp({"a": (1, 2), "b": 3})
    assert fp(np.int64(3)) == 3
    hash(fp((a, {"k": {1, 2}})))
    unhashable = [object.__new__(type("Data", (), {"__hash__": None}))]  # a dataset-like object: by identity
    assert fp(unhashable) == fp(unhashable) and fp(unhashable) != fp([object.__new__(type(unhashable[0]))])


def test_a_model_is_keyed_by_its_key():
    loaded = models.open_preset("mnist_cnn")
    same = models.open_preset("mnist_cnn")
    assert loaded is not same and _runner.fingerprint(loaded) == _runner.fingerprint(same) == ("model", loaded.key)


def _script():
    import streamlit as st

    from pages import _runner

    calls = st.session_state.setdefault("calls", [])
    scope = st.session_state.get("scope", "session")
    ask = _runner.Ask("the sum", "cost: one pass") if st.session_state.get("ask") else None

    def compute(sink):
        calls.append(st.session_state["n"])
        if sink is not None:
            sink(1, 2)
        if st.session_state.get("fail") == "cancel":
            from vizcore.errors import AttributionCancelled

            raise AttributionCancelled("Cancelled.")
        if st.session_state.get("fail") == "error":
            from vizcore.errors import ConvLensError

            raise ConvLensError("This input cannot be summed.")
        if st.session_state.get("fail") == "stop":
            st.stop()  # what a click during the run does: the script run ends inside compute
        return sum(range(st.session_state["n"]))

    got = _runner.run("test.sum", (st.session_state["n"],), compute, scope=scope, ask=ask, limit=2)
    st.session_state["got"] = got
    st.session_state["kept"] = _runner.kept("test.sum", (st.session_state["n"],), scope=scope)
    if st.session_state.get("drop"):
        _runner.drop("test.sum", scope=scope)


def _app(**state) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=30)
    for k, v in {"n": 4, **state}.items():
        at.session_state[k] = v
    return at


def test_a_result_is_kept_until_an_input_changes():
    at = _app()
    at.run()
    assert at.session_state["got"] == 6 and at.session_state["calls"] == [4]
    at.run()
    at.run()
    assert at.session_state["got"] == 6 and at.session_state["calls"] == [4]  # kept: not computed again
    at.session_state["n"] = 5
    at.run()
    assert at.session_state["got"] == 10 and at.session_state["calls"] == [4, 5]
    assert at.session_state["_runner"].kept("test.sum").inputs == (5,)  # one result per key in a session
    at.session_state["n"] = 4
    at.run()
    assert at.session_state["calls"] == [4, 5, 4]  # the old result went when the input changed
    at.session_state["drop"] = True
    at.run()
    at.session_state["drop"] = False
    at.run()
    assert at.session_state["calls"] == [4, 5, 4, 4]  # dropped: computed again


def test_with_ask_nothing_runs_until_the_button_then_the_result_stays():
    at = _app(ask=True)
    at.run()
    assert at.session_state["got"] is None and at.session_state["calls"] == []
    assert at.button(key="test.sum.run").label == "Run the sum"
    assert any(c.value == "cost: one pass" for c in at.caption)
    at.button(key="test.sum.run").click().run()
    assert at.session_state["got"] == 6 and at.session_state["calls"] == [4]
    assert not [b for b in at.button if b.key == "test.sum.run"]  # kept: no button
    at.run()
    assert at.session_state["got"] == 6 and at.session_state["calls"] == [4]
    at.session_state["n"] = 3
    at.run()
    assert at.session_state["got"] is None and at.button(key="test.sum.run")  # a new input waits for the button again


def test_a_cancelled_or_failed_run_keeps_nothing_and_says_so():
    at = _app(ask=True, fail="cancel")
    at.run()
    at.button(key="test.sum.run").click().run()
    assert not at.exception and at.session_state["got"] is None
    assert [i.value for i in at.info] == ["the sum cancelled."]
    at.session_state["fail"] = "error"
    at.button(key="test.sum.run").click().run()
    assert [e.value for e in at.error] == ["This input cannot be summed."] and at.session_state["kept"] is None
    at.session_state["fail"] = None
    at.button(key="test.sum.run").click().run()
    assert at.session_state["got"] == 6 and not at.error and not at.info


def test_a_run_ended_by_a_click_is_said_on_the_next_run():
    at = _app(ask=True, fail="stop")
    at.run()
    at.session_state["got"] = "not set"
    at.button(key="test.sum.run").click().run()  # the run ends inside compute, as when Cancel is clicked
    assert at.session_state["calls"] == [4] and at.session_state["got"] == "not set"  # the script ended there
    at.session_state["fail"] = None
    at.run()
    assert [i.value for i in at.info] == ["the sum was stopped before it finished."]
    assert at.button(key="test.sum.run") and at.session_state["got"] is None  # nothing kept; Run again
    at.run()
    assert not at.info  # said once


def test_the_server_store_is_shared_by_sessions_and_bounded_per_key():
    _runner.server_store().drop("test.sum")
    first = _app(scope="server")
    first.run()
    assert first.session_state["got"] == 6 and first.session_state["calls"] == [4]
    other = _app(scope="server")  # another session: the result is there already
    other.run()
    assert other.session_state["got"] == 6 and other.session_state["calls"] == []
    for n in (5, 6):  # limit=2: the oldest input goes
        other.session_state["n"] = n
        other.run()
    assert other.session_state["calls"] == [5, 6] and _runner.server_store().count("test.sum") == 2
    first.run()
    assert first.session_state["calls"] == [4, 4]  # n=4 went from the server store
    _runner.server_store().drop("test.sum")


def test_the_server_store_is_thread_safe_and_keeps_the_newest():
    store = _runner.ServerStore()

    def put(start: int) -> None:
        for i in range(start, start + 500):
            store.put("k", i, i, limit=16)
            store.get("k", i - 3)

    threads = [threading.Thread(target=put, args=(s * 1000,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count("k") == 16
    store.put("k", "late", 1, limit=16)
    assert store.get("k", "late") == 1 and store.count("k") == 16


def _heavy_script():
    import streamlit as st

    from pages import _runner
    from vizcore import profile

    def compute(_sink):
        return profile.heavy_busy()  # True while this run holds the only slot

    st.session_state["busy_inside"] = _runner.run("test.heavy", (1,), compute, heavy=st.session_state["heavy"])
    st.session_state["busy_after"] = profile.heavy_busy()


@pytest.mark.parametrize("heavy", [True, False])
def test_heavy_work_holds_a_slot_while_it_runs(monkeypatch, heavy):
    monkeypatch.setattr(profile, "_HEAVY", profile.Slots(1))  # this server runs one heavy computation at a time
    at = AppTest.from_function(_heavy_script, default_timeout=30)
    at.session_state["heavy"] = heavy
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["busy_inside"] is heavy and at.session_state["busy_after"] is False


class _Recording(profile.Slots):
    """Slots that note each wait (the runner's note is on the page only while it waits)."""

    waits: list

    def hold(self, on_wait=None):
        def noted():
            self.waits.append(1)
            on_wait()

        return super().hold(noted if on_wait else None)


def test_a_waiting_run_says_so_then_runs_when_the_other_work_is_done(monkeypatch):
    slots = _Recording(1)
    slots.waits = []
    monkeypatch.setattr(profile, "_HEAVY", slots)
    held, release = threading.Event(), threading.Event()

    def other_session() -> None:
        with slots.hold():
            held.set()
            release.wait(10)

    worker = threading.Thread(target=other_session)
    worker.start()
    assert held.wait(5)
    threading.Timer(1.0, release.set).start()
    at = AppTest.from_function(_heavy_script, default_timeout=30)
    at.session_state["heavy"] = True
    at.run()
    worker.join()
    assert slots.waits == [1]  # it waited for the other session's work, saying so
    assert not at.exception and at.session_state["busy_inside"] is True  # then ran in the slot
    assert not at.info  # the waiting note went when the slot was taken


def _layout_script():
    import streamlit as st

    from pages import _runner

    _runner.run("test.layout", (1,), lambda _sink: 41 + 1, heavy=True, bar=False)
    with st.expander("Details"):  # keyed by its place on the page: it must not move between runs
        st.write("inside")


def test_a_hit_and_a_miss_leave_the_same_elements_so_later_ones_keep_their_place():
    at = AppTest.from_function(_layout_script, default_timeout=30)
    at.run()  # a miss: computed (in a heavy slot)
    first = [type(c).__name__ for c in at.main.children.values()]
    at.run()  # a hit
    assert [type(c).__name__ for c in at.main.children.values()] == first
    assert (
        at.expander[0].label == "Details"
        and list(at.main.children).index(next(k for k, c in at.main.children.items() if type(c).__name__ == "Expander"))
        == len(first) - 1
    )
