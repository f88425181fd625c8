"""AppTest: train on the Training page, find the curves, the results, the saved model and the replay."""

from __future__ import annotations

import json
import time

import numpy as np
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from vizcore import models, training


def _train(at: AppTest, epochs: int) -> training.JobState:
    at.number_input(key="train.epochs").set_value(epochs).run()
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + 240
    while time.time() < deadline:
        state = at.session_state["train.run"].job.snapshot()
        if state.finished:
            break
        time.sleep(1.0)
        at.run()  # a rerun while training must not disturb it
    at.run()
    at.run()
    return state


def test_train_one_epoch_then_explore_and_save(tmp_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["model"] = "preset:lenet5"
    at.switch_page("pages/training.py")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    from pages import _choice, _working  # the modules the app imported: the cache holds the shared preset

    shared_preset = _working.open_choice(_choice.Choice("preset", "lenet5")).model
    before = [w.copy() for w in shared_preset.get_weights()]
    state = _train(at, epochs=1)
    assert state.status == "done" and len(state.epochs) == 1
    assert not at.exception, [e.value for e in at.exception]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [json.dumps(c["layout"].get("title", {})) for c in charts]
    assert any("Loss" in t for t in titles) and any("Confusion matrix" in t for t in titles)
    accuracy = float(next(m.value for m in at.metric if m.label == "Held-out accuracy").rstrip("%")) / 100
    assert accuracy > 0.5  # one epoch of LeNet-5 on 4,000 digits learns something
    choice = at.session_state["working_model"]
    assert choice.kind == "trained"
    # the cached preset was never touched: training ran on a private copy
    assert _working.open_choice(_choice.Choice("preset", "lenet5")).model is shared_preset
    for a, b in zip(before, shared_preset.get_weights()):
        np.testing.assert_array_equal(a, b)

    at.text_input(key="train.save_name").set_value("../../escape me").run()
    at.button(key="train.save").click().run()
    saved = at.session_state["train.run"].saved
    assert saved.exists() and saved.parent.name == "saved" and ".." not in saved.name
    reloaded = models.loading.load_model(saved)
    probe = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(
        reloaded.predict(probe, verbose=0), at.session_state["train.run"].model.predict(probe, verbose=0), atol=1e-6
    )

    token = at.query_params["run"]
    at.switch_page("pages/kernels.py").run()
    assert not at.exception
    assert at.select_slider(key="kernels.epoch").value == len(at.select_slider(key="kernels.epoch").options) - 1
    at.switch_page("pages/activations.py").run()
    assert not at.exception
    assert "(trained here)" in at.sidebar.markdown[0].value
    at.switch_page("pages/model.py").run()  # a trained model's card has no bundled fields (it raised KeyError)
    assert not at.exception
    assert any("Trained in this session" in c.value for c in at.caption)

    # the tab is closed; reopening the training's address offers the last checkpoint
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    again.query_params.update({"model": "preset:lenet5", "run": token})
    again.switch_page("pages/training.py")
    again.run()
    again.button(key="train.recover").click().run()
    assert not again.exception and again.session_state["working_model"].kind == "trained"
    recovered = again.session_state["session_models"][again.session_state["working_model"].name].model
    np.testing.assert_allclose(recovered.predict(probe, verbose=0), reloaded.predict(probe, verbose=0), atol=1e-6)
    forged = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    forged.query_params.update({"run": "../../etc.passwd"})
    forged.switch_page("pages/training.py")
    forged.run()
    assert not forged.exception and "train.recover" not in [b.key for b in forged.button]


def test_incompatible_data_is_explained_before_starting():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["model"] = "bundled:shapes_cnn"
    at.switch_page("pages/training.py")
    at.run()
    at.selectbox(key="train.data").set_value("mnist_sample").run()
    assert not at.exception
    assert at.error and at.button(key="train.start").disabled
    at.number_input(key="train.batch").set_value(4096).run()
    at.selectbox(key="train.data").set_value("shapes").run()
    assert any("batch" in e.value.lower() for e in at.error), [e.value for e in at.error]


def test_the_recipe_fills_the_settings_and_the_settings_make_the_config():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["model"] = "preset:lenet5"
    at.switch_page("pages/training.py")
    at.run()
    assert at.number_input(key="train.epochs").value == 3 and at.selectbox(key="train.opt").value == "adam"
    at.number_input(key="train.seed").set_value(7).run()
    at.slider(key="train.val").set_value(0.3).run()
    at.button(key="train.recipe").click().run()
    assert not at.exception, [e.value for e in at.exception]
    recipe = training.RECOMMENDED["lenet5"]  # SGD, lr 0.001, momentum 0.9, batch 32, 40 epochs
    assert (
        at.selectbox(key="train.opt").value,
        at.number_input(key="train.lr").value,
        at.number_input(key="train.momentum").value,
        at.number_input(key="train.batch").value,
        at.number_input(key="train.epochs").value,
    ) == ("sgd", 1e-3, 0.9, 32, 40)
    assert recipe.epochs == 40 and recipe.optimizer == "sgd"
    assert at.number_input(key="train.seed").value == 7 and at.slider(key="train.val").value == 0.3  # kept by a recipe
    at.slider(key="train.rot").set_value(10.0).run()
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = at.session_state["train.run"]
    run.stop()
    assert run.job.wait(60)
    assert run.job.config == training.TrainConfig(
        optimizer="sgd",
        learning_rate=1e-3,
        momentum=0.9,
        batch_size=32,
        epochs=40,
        validation_fraction=0.3,
        rotation=10.0,
        seed=7,
    )
    assert len(run.val) == round(0.3 * 5000)
