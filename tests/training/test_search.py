"""vizcore.training.search: Optuna studies whose trials are ordinary training runs."""

from __future__ import annotations

import statistics
import threading

import keras
import numpy as np
import pytest

from vizcore import models
from vizcore.data.datasets import load_mnist_sample, stratified_split
from vizcore.errors import TrainingError
from vizcore.models import LoadedModel
from vizcore.training import TrainConfig, builder, search
from vizcore.training.search import Budget, SearchSpace

LR_ONLY = SearchSpace(
    learning_rate=(1e-6, 10.0), batch_size=(), optimizer=("adam", "sgd"), step_every=None, step_factor=None
)
BASE = TrainConfig(optimizer="adam", learning_rate=3e-3, batch_size=32, epochs=1, seed=0)


@pytest.fixture(scope="module")
def digits():
    full = load_mnist_sample()
    train_idx, val_idx = stratified_split(full.y, validation_fraction=0.2, seed=0)
    return full.subset(train_idx[:400]), full.subset(val_idx[:100])


@pytest.fixture(scope="module")
def lenet() -> LoadedModel:
    keras.utils.set_random_seed(0)
    return LoadedModel(models.presets.lenet5(), "preset:lenet5", "LeNet-5 (untrained)", tuple("0123456789"))


def held_out_accuracy(model, val) -> float:
    """The oracle: argmax of the model's predictions against the labels."""
    return float(np.mean(np.argmax(model.predict(val.x_nhwc, verbose=0), axis=-1) == val.y))


def enqueue(folder, *params):
    study = search.open_study(folder)
    for p in params:
        study.enqueue_trial(p)


def test_a_three_trial_study_prunes_the_trial_below_the_median_and_hands_over_the_best(digits, lenet, tmp_path):
    train, val = digits
    folder = tmp_path / "0123456789ab"
    enqueue(
        folder,
        {"learning_rate": 1e-2, "optimizer": "adam"},
        {"learning_rate": 3e-3, "optimizer": "adam"},
        {"learning_rate": 1e-6, "optimizer": "sgd"},
    )
    seen = []
    before = [w.copy() for w in lenet.model.get_weights()]
    result = search.run_study(
        lenet,
        train,
        val,
        LR_ONLY,
        BASE,
        folder=folder,
        budget=Budget(trials=3),
        on_progress=seen.append,
        slots=threading.BoundedSemaphore(1),
    )
    assert result.status == "done"
    assert [r.state for r in result.rows] == ["complete", "complete", "pruned"]
    a, b, c = result.rows
    assert len(a.curve) == len(b.curve) == len(c.curve) == 1
    assert c.value < statistics.median([a.curve[0], b.curve[0]])  # MedianPruner's rule, computed here
    assert "median" in c.note
    assert any(r and r[-1].state == "running" for r in seen) and seen[-1] == result.rows
    # each complete trial's value is its checkpoint's accuracy on the validation images
    for row in (a, b):
        ckpt = keras.models.load_model(folder / row.run / "checkpoint.keras")
        assert row.value == pytest.approx(held_out_accuracy(ckpt, val), abs=1e-6)
    best = search.best_model(folder, lenet)
    assert result.best.number == max((a, b), key=lambda r: r.value).number
    assert held_out_accuracy(best.model, val) == pytest.approx(result.best.value, abs=1e-6)
    assert best.class_names == lenet.class_names and f"trial {result.best.number}" in best.label
    for w0, w1 in zip(before, lenet.model.get_weights()):  # trials trained copies
        np.testing.assert_array_equal(w0, w1)
    figures = search.study_figures(search.load_study(folder))
    assert {"Optimization history", "Parallel coordinates", "Slice plot"} <= set(figures)
    history = figures["Optimization history"].to_dict()["data"][0]
    assert sorted(history["y"]) == sorted([a.value, b.value])  # complete trials only


def test_the_first_trial_is_the_base_config_and_the_sampler_is_seeded(digits, lenet, tmp_path):
    train, val = digits
    space = SearchSpace(
        learning_rate=(1e-4, 1e-2), batch_size=(32, 64), optimizer=("adam",), step_every=None, step_factor=None
    )
    rows = [
        search.run_study(
            lenet,
            train,
            val,
            space,
            BASE,
            folder=tmp_path / name,
            budget=Budget(trials=2),
            slots=threading.BoundedSemaphore(1),
        ).rows
        for name in ("00000000000a", "00000000000b")
    ]
    assert rows[0][0].params == {"learning_rate": 3e-3, "batch_size": 32, "optimizer": "adam"}
    assert [r.params for r in rows[0]] == [r.params for r in rows[1]]  # same seed, same trials
    assert rows[0][1].params != rows[0][0].params


def exploding() -> LoadedModel:
    """Exponential logits: a large learning rate overflows them to infinity, so the loss turns NaN."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Flatten(name="flatten")(keras.layers.MaxPooling2D(4, name="pool")(x))
    x = keras.layers.Dense(10, activation="exponential", name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probs")(x))
    return LoadedModel(model, "upload:exp", "exploding", tuple("0123456789"))


def test_a_diverging_trial_is_pruned_and_reported_and_the_study_goes_on(digits, tmp_path):
    train, val = digits
    folder = tmp_path / "0123456789ab"
    enqueue(folder, {"learning_rate": 10.0, "optimizer": "sgd"}, {"learning_rate": 1e-2, "optimizer": "adam"})
    result = search.run_study(
        exploding(),
        train,
        val,
        LR_ONLY,
        BASE,
        folder=folder,
        budget=Budget(trials=2),
        slots=threading.BoundedSemaphore(1),
    )
    diverged, good = result.rows
    assert diverged.state == "pruned" and "NaN" in diverged.note and diverged.curve == ()
    assert good.state == "complete" and result.best.number == good.number


def test_stop_keeps_the_trial_releases_the_slot_and_the_study_resumes(digits, lenet, tmp_path):
    train, val = digits
    folder = tmp_path / "0123456789ab"
    slots = threading.BoundedSemaphore(1)
    long = BASE.replace(epochs=50)
    job = search.start_study(lenet, train, val, LR_ONLY, long, folder=folder, budget=Budget(trials=3), slots=slots)
    while not (job.rows and job.rows[0].curve):  # one epoch reported, then Stop (a closed tab calls the same)
        assert not job.wait(0.2), job.error
    job.stop()
    assert job.wait(120) and job.error is None and job.result.status == "stopped"
    assert [r.state for r in job.result.rows] == ["pruned"] and job.result.rows[0].note == "stopped"
    assert slots.acquire(blocking=False)  # the study gave its slot back
    slots.release()
    resumed = search.run_study(lenet, train, val, LR_ONLY, BASE, folder=folder, budget=Budget(trials=2), slots=slots)
    assert resumed.rows[0] == job.result.rows[0]  # nothing lost; the resumed study adds one trial
    assert len(resumed.rows) == 2 and resumed.rows[1].state in ("complete", "pruned")


@pytest.mark.parametrize(
    "space, budget, match",
    [
        (
            SearchSpace(learning_rate=None, batch_size=(32,), optimizer=(), step_every=None, step_factor=None),
            Budget(),
            "empty",
        ),
        (SearchSpace(), Budget(trials=0), "budget of 0"),
        (SearchSpace(), Budget(trials=None, minutes=0), "budget of 0"),
        (SearchSpace(learning_rate=(1e-2, 1e-4)), Budget(), "low <= high"),
    ],
)
def test_bad_spaces_and_budgets_are_refused_before_anything_runs(digits, lenet, tmp_path, space, budget, match):
    train, val = digits
    slots = threading.BoundedSemaphore(1)
    with pytest.raises(TrainingError, match=match):
        search.start_study(lenet, train, val, space, BASE, folder=tmp_path / "0123456789ab", budget=budget, slots=slots)
    with pytest.raises(TrainingError, match=match):
        search.run_study(lenet, train, val, space, BASE, folder=tmp_path / "0123456789ab", budget=budget, slots=slots)
    assert not (tmp_path / "0123456789ab").exists() and slots.acquire(blocking=False)


def test_no_validation_no_slot_and_no_chain_are_refused(digits, lenet, tmp_path):
    train, val = digits
    folder = tmp_path / "0123456789ab"
    with pytest.raises(TrainingError, match="validation share"):
        search.run_study(lenet, train, None, SearchSpace(), BASE, folder=folder, slots=threading.BoundedSemaphore(1))
    taken = threading.BoundedSemaphore(1)
    taken.acquire()
    with pytest.raises(TrainingError, match="two models at a time"):
        search.run_study(lenet, train, val, SearchSpace(), BASE, folder=folder, slots=taken)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Add()([x, x])
    x = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    residual = LoadedModel(keras.Model(inputs, x), "upload:x", "residual", tuple("0123456789"))
    assert builder.architecture_of(residual.model) is None
    with pytest.raises(TrainingError, match="plain chain"):
        search.run_study(
            residual,
            train,
            val,
            SearchSpace(dense_units=(16, 32)),
            BASE,
            folder=folder,
            slots=threading.BoundedSemaphore(1),
        )


@pytest.mark.parametrize("preset", ["lenet5", "mnist_cnn", "cifar_cnn"])
def test_the_architecture_of_a_preset_is_its_builder_specs(preset):
    assert builder.architecture_of(models.presets.build_preset(preset)) == builder.specs_from_preset(preset)


def test_architecture_settings_build_each_trial_its_own_model(digits, lenet, tmp_path):
    train, val = digits
    space = SearchSpace(
        learning_rate=None,
        batch_size=(),
        optimizer=(),
        step_every=None,
        step_factor=None,
        filters_scale=(0.5, 1.0),
        dense_units=(16, 120),
    )
    folder = tmp_path / "0123456789ab"
    result = search.run_study(
        lenet, train, val, space, BASE, folder=folder, budget=Budget(trials=2), slots=threading.BoundedSemaphore(1)
    )
    assert result.rows[0].params == {"filters_scale": 1.0, "dense_units": 120}  # the model as it is
    for row in result.rows:
        model = keras.models.load_model(folder / row.run / "checkpoint.keras")
        assert model.get_layer("conv1").filters == round(6 * row.params["filters_scale"])
        assert (model.get_layer("fc1").units, model.get_layer("fc2").units) == (row.params["dense_units"], 84)


def test_trial_config_switches_to_the_step_schedule():
    config = search.trial_config(
        TrainConfig(), {"learning_rate": 0.01, "step_every": 2, "step_factor": 0.5, "dense_units": 8}
    )
    assert (config.schedule, config.learning_rate, config.step_every, config.step_factor) == ("step", 0.01, 2, 0.5)
    assert search.trial_config(TrainConfig(), {"optimizer": "sgd"}).schedule == "constant"
    assert SearchSpace.from_dict(SearchSpace().to_dict()) == SearchSpace()


def test_the_base_trial_of_a_constant_learning_rate_is_a_step_schedule_with_factor_one():
    params = search.base_params(SearchSpace(), TrainConfig(), None)
    assert params == {"learning_rate": 1e-3, "batch_size": 32, "optimizer": "adam", "step_every": 5, "step_factor": 1.0}
    config = search.trial_config(TrainConfig(), params)
    assert [config.learning_rate_at(step, steps_per_epoch=10) for step in (0, 49, 50, 500)] == [1e-3] * 4
