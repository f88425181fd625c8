"""Models a person uploads or trains belong to their session and go when it ends."""

from __future__ import annotations

import gc
import time
import weakref

from helpers import ROOT, tiny_sequential
from streamlit.testing.v1 import AppTest


def _session() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    return at


def test_an_uploaded_model_is_private_and_released_with_its_session(tmp_path):
    tiny_sequential().save(tmp_path / "mine.keras")
    alice, bob = _session(), _session()
    alice.radio(key="model.source").set_value("upload").run()
    alice.file_uploader(key="model.upload").set_value(
        ("mine.keras", (tmp_path / "mine.keras").read_bytes(), "application/octet-stream")
    ).run()
    alice.switch_page("pages/attribution.py").run()  # compiled functions and caches now know the model
    alice.switch_page("pages/activations.py").run()
    assert not alice.exception
    bob.run()
    assert bob.session_state["working_model"].kind == "bundled"  # nothing crossed sessions
    store = alice.session_state["session_models"]
    ref = weakref.ref(next(iter(store.values())).model)
    del store, alice
    gc.collect()
    assert ref() is None, "the uploaded model outlived its session"


def test_a_closed_session_stops_its_training():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["model"] = "preset:lenet5"
    at.switch_page("pages/training.py")
    at.run()
    at.number_input(key="train.epochs").set_value(50).run()
    at.button(key="train.start").click().run()
    job = at.session_state["train.run"].job
    time.sleep(2.0)
    assert not job.snapshot().finished
    del at
    gc.collect()
    assert job.wait(60), "training went on after its session ended"
    state = job.snapshot()
    assert state.status == "stopped" and len(state.epochs) < 50
