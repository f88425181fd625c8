"""AppTest: a hyperparameter search on the Training page: the form, the live table, the figures, "Use best", Stop."""

from __future__ import annotations

import json
import time

import numpy as np
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import training
from vizcore.data.datasets import load_mnist_sample


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["model"] = "preset:lenet5"
    at.switch_page("pages/training.py")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def _small_space(at: AppTest, trials: int, epochs: int) -> None:
    at.checkbox(key="search.step").set_value(False).run()
    at.multiselect(key="search.batch").set_value([64]).run()
    at.multiselect(key="search.opt").set_value(["adam"]).run()
    at.number_input(key="search.lr_lo").set_value(1e-3).run()
    at.number_input(key="search.budget").set_value(trials).run()
    at.number_input(key="search.epochs").set_value(epochs).run()


def test_a_two_trial_search_shows_its_table_and_figures_and_hands_over_the_best():
    at = _page()
    _small_space(at, trials=2, epochs=1)
    at.button(key="search.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["search.job"]
    deadline = time.time() + 300
    while not job.done and time.time() < deadline:
        time.sleep(1.0)
        at.run()  # reruns while the study runs must not disturb it
    at.run()
    at.run()
    assert job.done and job.error is None and job.result.status == "done", job.error
    rows = job.result.rows
    assert [r.state for r in rows].count("running") == 0 and len(rows) == 2
    assert rows[0].params == {"learning_rate": 1e-3, "batch_size": 64, "optimizer": "adam"}  # the page's settings first
    assert len(at.dataframe) == 1  # the live trial table
    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1] and np.allclose(table["val accuracy"], [r.value for r in rows])
    titles = [json.dumps(json.loads(c.proto.spec)["layout"].get("title", {})) for c in at.get("plotly_chart")]
    assert any("Optimization History" in t for t in titles) and any("Slice" in t for t in titles), titles
    best = max((r for r in rows if r.state == "complete"), key=lambda r: r.value)
    assert next(m.value for m in at.metric if m.label == "Best validation accuracy") == f"{best.value:.1%}"

    at.button(key="search.use_best").click().run()
    assert not at.exception, [e.value for e in at.exception]
    choice = at.session_state["working_model"]
    assert choice.kind == "trained"
    model = at.session_state["session_models"][choice.name].model
    _, val = training.split_for_training(load_mnist_sample(), training.TrainConfig(validation_fraction=0.2, seed=0))
    accuracy = float(np.mean(np.argmax(model.predict(val.x_nhwc, verbose=0), axis=-1) == val.y))
    assert accuracy == best.value or abs(accuracy - best.value) < 1e-6  # the hand-over is that trial's model
    assert f"search best, trial {best.number}" in at.sidebar.markdown[0].value

    # the tab is closed; the study's address finds the saved study, which resumes with its own settings
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    again.query_params.update({"model": "preset:lenet5", "study": at.query_params["study"]})
    again.switch_page("pages/training.py")
    again.run()
    assert not again.exception and len(again.dataframe) == 1 and list(again.dataframe[0].value["trial"]) == [0, 1]
    again.number_input(key="search.budget").set_value(3).run()
    again.button(key="search.resume").click().run()
    resumed = again.session_state["search.job"]
    assert resumed.folder == job.folder and resumed.wait(300) and resumed.error is None
    assert resumed.result.rows[:2] == rows and len(resumed.result.rows) == 3
    assert resumed.result.rows[2].params["batch_size"] == 64  # the saved space, not the form's defaults


def test_an_empty_space_and_a_zero_budget_are_explained_and_nothing_starts():
    at = _page()
    at.checkbox(key="search.lr").set_value(False).run()
    at.checkbox(key="search.step").set_value(False).run()
    at.multiselect(key="search.batch").set_value([64]).run()
    at.multiselect(key="search.opt").set_value(["adam"]).run()
    at.button(key="search.start").click().run()
    assert not at.exception and "search.job" not in at.session_state
    assert any("search space is empty" in e.value for e in at.error), [e.value for e in at.error]
    at.checkbox(key="search.lr").set_value(True).run()
    at.number_input(key="search.budget").set_value(0).run()
    at.button(key="search.start").click().run()
    assert not at.exception and "search.job" not in at.session_state
    assert any("budget of 0" in e.value for e in at.error), [e.value for e in at.error]


def test_a_closed_tab_stops_its_search_and_gives_the_slot_back():
    at = _page()
    _small_space(at, trials=5, epochs=50)
    at.button(key="search.start").click().run()
    job = at.session_state["search.job"]
    deadline = time.time() + 120
    while job.trial_state() is None and time.time() < deadline:
        time.sleep(0.5)
    assert not job.done, job.error
    for fn in at.session_state["_session_end"].callbacks:  # what Streamlit's finalizer runs when the session goes
        fn()
    assert job.wait(120) and job.result.status == "stopped"
    assert [r.state for r in job.result.rows] in (["pruned"], ["failed"])  # the running trial, kept as it ended
    taken = [training.SLOTS.acquire(blocking=False) for _ in range(training.MAX_CONCURRENT)]
    assert all(taken)  # both of the server's slots are free again
    for _ in taken:
        training.SLOTS.release()
