"""Tests of vizcore.training: config and schedules, compatibility, fit with progress / Stop / checkpoints,
the three callbacks (one test group each), the polled job and saving.

Models are tiny (one 4-filter conv) and data is a few hundred bundled MNIST digits, so each fit
takes about two seconds, most of it TensorFlow tracing; shared fits are module-scoped fixtures.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from vizcore import training
from vizcore.data.datasets import ImageDataset, load_mnist_sample, make_shapes, stratified_split
from vizcore.errors import TrainingError
from vizcore.training import (
    BatchRecord,
    EpochCheckpoint,
    EpochRecord,
    ProgressReporter,
    StopGuard,
    TrainConfig,
    builder,
    check_compat,
    fit,
)

TINY = (builder.Conv(4, 3, name="conv1"), builder.MaxPool(4, name="pool"), builder.Flatten(name="flatten"))


def tiny_model(seed: int = 0, input_shape=(28, 28, 1), classes: int = 10, specs=TINY) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return builder.build(specs, input_shape, classes, name="tiny")


@pytest.fixture(scope="module")
def digits() -> tuple[ImageDataset, ImageDataset]:
    full = load_mnist_sample()
    train_idx, val_idx = stratified_split(full.y, validation_fraction=0.2, seed=0)
    return full.subset(train_idx[:320]), full.subset(val_idx[:100])


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    """One 2-epoch fit with every record sent, a checkpoint and a thread log, shared by several tests."""
    train, val = digits
    folder = tmp_path_factory.mktemp("run")
    model = tiny_model()
    start_weights = model.get_weights()
    got: list = []
    threads: set[int] = set()
    config = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-2)
    result = fit(
        model,
        train,
        val,
        config,
        on_progress=lambda r: (got.append(r), threads.add(threading.get_ident())),
        checkpoint_path=folder / "tiny.keras",
        min_interval_s=0.0,
    )
    return dict(
        model=model,
        start=start_weights,
        got=got,
        result=result,
        folder=folder,
        threads=threads,
        config=config,
        caller=threading.get_ident(),
    )


# --------------------------------------------------------------------------- config and schedules


def test_schedule_values_match_the_formula_and_the_keras_optimizer():
    spe = 10
    step = TrainConfig(learning_rate=0.1, schedule="step", step_every=5, step_factor=0.7, epochs=20)
    cosine = TrainConfig(learning_rate=0.1, schedule="cosine", epochs=4)
    constant = TrainConfig(learning_rate=0.1)
    assert step.learning_rate_at(0, spe) == 0.1
    assert step.learning_rate_at(49, spe) == 0.1  # epoch 4, still the first stage
    assert step.learning_rate_at(50, spe) == pytest.approx(0.07)
    assert step.learning_rate_at(10 * spe, spe) == pytest.approx(0.1 * 0.7**2)
    assert cosine.learning_rate_at(0, spe) == pytest.approx(0.1)
    assert cosine.learning_rate_at(20, spe) == pytest.approx(0.05)  # halfway
    assert cosine.learning_rate_at(40, spe) == pytest.approx(0.0, abs=1e-12)
    assert constant.learning_rate_at(123, spe) == 0.1
    for config in (step, cosine):
        schedule = training.make_schedule(config, spe)
        for s in (0, 7, 49, 50, 99, 100, 150, 199):
            assert float(schedule(s)) == pytest.approx(config.learning_rate_at(s, spe), rel=1e-5, abs=1e-9)
    assert training.make_schedule(constant, spe) == 0.1


def test_optimizers_follow_the_config():
    sgd = training.make_optimizer(TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9), 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    assert isinstance(training.make_optimizer(TrainConfig(optimizer="rmsprop"), 10), keras.optimizers.RMSprop)
    assert isinstance(training.make_optimizer(TrainConfig(), 10), keras.optimizers.Adam)


def test_config_problems_and_round_trip():
    assert TrainConfig().problems() == []
    assert all(c.problems() == [] for c in training.RECOMMENDED.values())
    bad = TrainConfig(
        optimizer="adagrad",
        learning_rate=0,
        epochs=0,
        batch_size=0,
        validation_fraction=1.0,
        schedule="step",
        step_every=0,
        shift=1.5,
        rotation=400,
        flip=True,
        flip_mode="diagonal",
    )
    text = " ".join(bad.problems())
    for words in (
        "adagrad",
        "learning rate",
        "at least 1 epoch",
        "batch size",
        "validation fraction",
        "step schedule",
        "shift",
        "rotation",
        "flip mode",
    ):
        assert words in text
    config = TrainConfig(optimizer="sgd", shift=0.1, snapshot_every_batches=50)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())) | {"future": 1}) == config
    assert config.replace(epochs=3).epochs == 3


def test_default_snapshot_interval_is_each_epoch_plus_every_100_batches_for_long_epochs():
    assert TrainConfig().snapshot_interval(63) == 0
    assert TrainConfig().snapshot_interval(100) == 0
    assert TrainConfig().snapshot_interval(1563) == 100
    assert TrainConfig(snapshot_every_batches=0).snapshot_interval(1563) == 0
    assert TrainConfig(snapshot_every_batches=7).snapshot_interval(20) == 7


# --------------------------------------------------------------------------- compatibility


def test_check_compat_accepts_a_good_match_and_explains_each_mismatch(digits):
    train, _ = digits
    model = tiny_model()
    assert check_compat(model, train, TrainConfig()) == []
    shapes = make_shapes(12, size=32)
    text = " ".join(check_compat(model, shapes, TrainConfig()))
    assert "32x32 but model 'tiny' takes 28x28" in text
    assert "grayscale (1 channel)" in text and "colour (3 channels)" in text
    assert "10 outputs but the data has 3 classes" in text and "num_classes=3" in text
    big_batch = check_compat(model, train.subset(np.arange(40)), TrainConfig(batch_size=64, validation_fraction=0))
    assert big_batch == ["The batch size (64) is larger than the 40 training images; choose at most 40."]
    small = train.subset(np.arange(40))
    n_train = len(stratified_split(small.y, validation_fraction=0.2)[0])  # each class gives at least 1 to validation
    split = " ".join(check_compat(model, small, TrainConfig(batch_size=36)))
    assert n_train < 36 and f"larger than the {n_train} training images" in split
    assert any("at least 1 epoch" in m for m in check_compat(model, train, TrainConfig(epochs=0)))
    one_class = ImageDataset(train.x_nhwc[:5], np.zeros(5, np.int64), train.class_names, "x")
    assert any("single class" in m for m in check_compat(model, one_class))
    assert any("does not match the training data" in m for m in check_compat(model, train, val=shapes))
    bad_labels = ImageDataset(train.x_nhwc[:5], np.arange(5, dtype=np.int64) * 3, train.class_names, "x")
    assert any("labels must be 0..9" in m for m in check_compat(model, bad_labels))


def test_check_compat_on_models_that_cannot_be_trained(digits):
    train, _ = digits
    dense = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    assert any("no convolution layer" in m for m in check_compat(dense, train))
    vectors = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    assert "not images" in check_compat(vectors, train)[0]
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs))
    multilabel = keras.Model(inputs, keras.layers.Dense(10, activation="sigmoid")(x))
    assert any("multi-label" in m for m in check_compat(multilabel, train))


def test_fit_refuses_incompatible_data_before_training(digits):
    model = tiny_model()
    before = model.get_weights()
    with pytest.raises(TrainingError, match="3 classes"):
        fit(model, make_shapes(12, size=28).subset(np.arange(12)), None, TrainConfig(epochs=1))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# --------------------------------------------------------------------------- input pipeline


def test_split_and_pipeline_are_seeded_and_augment_only_training(digits):
    train, _ = digits
    a, b = training.split_for_training(train, TrainConfig(validation_fraction=0.25, seed=3))
    assert len(a) + len(b) == 320 and abs(len(b) - 80) <= 5 and set(np.unique(b.y)) == set(range(10))
    assert training.split_for_training(train, TrainConfig(validation_fraction=0))[1] is None
    config = TrainConfig(batch_size=50, flip=True, shift=0.2, rotation=20, seed=5)
    first = [x.numpy() for x, _ in training.make_dataset(train, config)]
    again = [x.numpy() for x, _ in training.make_dataset(train, config)]
    assert [len(x) for x in first] == [50] * 6 + [20]
    assert all(np.array_equal(p, q) for p, q in zip(first, again))  # same seed, same batches
    plain = next(iter(training.make_dataset(train, config, training=False)))
    np.testing.assert_array_equal(plain[0].numpy(), train.x_nhwc[:50])  # validation: in order, untouched
    np.testing.assert_array_equal(plain[1].numpy(), train.y[:50])
    epochs = training.make_dataset(train, config.replace(flip=False, shift=0.0, rotation=0.0))
    one, two = (np.concatenate([y.numpy() for _, y in epochs]) for _ in range(2))
    assert sorted(one) == sorted(train.y) and not np.array_equal(one, two)  # reshuffled each epoch
    assert training.augmenter(TrainConfig()) is None


# --------------------------------------------------------------------------- fit


def test_loss_drops_and_records_arrive_per_batch_and_per_epoch(run):
    result, got = run["result"], run["got"]
    assert result.status == "completed"
    epochs = [r for r in got if isinstance(r, EpochRecord)]
    batches = [r for r in got if isinstance(r, BatchRecord)]
    assert [e.epoch for e in epochs] == [0, 1]
    assert epochs[1].loss < epochs[0].loss and epochs[1].val_loss < epochs[0].val_loss
    assert epochs[1].val_accuracy > 0.4
    assert [(b.epoch, b.batch) for b in batches] == [(e, b) for e in range(2) for b in range(10)]  # min_interval 0
    assert got[10] is epochs[0]  # the epoch record follows its last batch
    last = batches[-1]
    assert last.step == 19 and last.progress == 1.0 and last.eta_s == pytest.approx(0.0)
    assert last.epoch_float == 2.0 and batches[4].epoch_float == 0.5
    assert batches[0].images_per_s is None and all(b.images_per_s > 0 for b in batches[1:])
    assert all(0 <= b.accuracy <= 1 and 0 <= b.smooth_accuracy <= 1 and math.isfinite(b.smooth_loss) for b in batches)
    assert all(b.learning_rate == 1e-2 for b in batches)
    assert result.history["loss"] == [e.loss for e in epochs]
    assert run["threads"] == {run["caller"]}  # the sink runs in the thread that called fit


def test_fit_is_deterministic_with_the_seed(digits):
    train, val = digits
    config = TrainConfig(epochs=1, batch_size=64, flip=True, shift=0.1, seed=4)
    specs = TINY[:2] + (builder.Dropout(0.3),) + TINY[2:]
    a, b = tiny_model(specs=specs), tiny_model(specs=specs)
    fit(a, train, val, config)
    fit(b, train, val, config)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- ProgressReporter


def test_progress_reporter_recovers_each_batch_and_throttles_by_time(digits):
    train, _ = digits
    data = train.subset(np.arange(200))
    model = tiny_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    got = []
    model.fit(
        data.x_nhwc,
        data.y,
        batch_size=64,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[ProgressReporter(got.append, n_images=200, batch_size=64, min_interval_s=0.0)],
    )
    for record in got[:-1]:  # learning rate 0: each batch's own loss can be recomputed
        sl = slice(record.batch * 64, (record.batch + 1) * 64)
        probs = model.predict(data.x_nhwc[sl], verbose=0)
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(data.y[sl], probs)))
        assert record.loss == pytest.approx(loss, rel=1e-4)
        assert record.accuracy == pytest.approx(float(np.mean(probs.argmax(1) == data.y[sl])))

    ticks = iter(np.arange(0, 100, 0.1))  # a fake clock: 0.1 s per reading
    throttled = ProgressReporter(None, n_images=200, batch_size=10, min_interval_s=0.25, clock=lambda: next(ticks))
    throttled.set_params({"epochs": 1, "steps": 20})
    throttled.on_train_begin()
    throttled.on_epoch_begin(0)
    for batch in range(20):
        throttled.on_train_batch_end(batch, {"loss": 1.0, "accuracy": 0.5})
    throttled.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
    sent = [r.batch for r in throttled.records if isinstance(r, BatchRecord)]
    assert sent[0] == 0 and sent[-1] == 19 and len(sent) < 10  # first and last always, the rest every 0.3 s
    assert np.all(np.diff(sent[:-1]) == 3)
    assert isinstance(throttled.records[-1], EpochRecord)


def test_a_failing_progress_callable_does_not_stop_training(digits):
    train, _ = digits

    def broken(record):
        raise RuntimeError("display is gone")

    with pytest.warns(RuntimeWarning, match="display is gone"):
        result = fit(
            tiny_model(), train, None, TrainConfig(epochs=1, batch_size=64), on_progress=broken, min_interval_s=0.0
        )
    assert result.status == "completed" and len(result.epochs) == 1
    assert result.notes == ("The progress callable raised 6 time(s); training went on.",)


# --------------------------------------------------------------------------- StopGuard


def test_stop_ends_training_after_the_current_batch_and_keeps_the_weights(digits, tmp_path):
    train, val = digits
    model = tiny_model()
    start = model.get_weights()
    stop = threading.Event()
    seen = []

    def sink(record):
        seen.append(record)
        if isinstance(record, BatchRecord) and record.epoch == 1 and record.batch == 2:
            stop.set()

    result = fit(
        model,
        train,
        val,
        TrainConfig(epochs=50, batch_size=32),
        on_progress=sink,
        stop=stop,
        checkpoint_path=tmp_path / "stopped.keras",
        min_interval_s=0.0,
    )
    assert result.status == "stopped" and "epoch 2 after batch 3 of 10" in result.message
    batches = [r for r in seen if isinstance(r, BatchRecord)]
    assert (batches[-1].epoch, batches[-1].batch) == (1, 2)  # no batch ran after the one that saw Stop
    assert [r.complete for r in result.epochs] == [True, False]
    weights = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(start, weights))  # trained
    saved = keras.models.load_model(tmp_path / "stopped.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, weights))  # the partial epoch was checkpointed


def test_stop_set_before_start_runs_at_most_one_batch(digits):
    train, _ = digits
    stop = threading.Event()
    stop.set()
    result = fit(tiny_model(), train, None, TrainConfig(epochs=5, batch_size=32), stop=stop, min_interval_s=0.0)
    assert result.status == "stopped"
    assert len([r for r in result.records if isinstance(r, BatchRecord)]) == 1


def test_a_nan_loss_stops_training_and_restores_the_last_good_weights(digits):
    train, _ = digits
    x = train.x_nhwc.copy()
    x[::7] = np.nan  # every batch holds a broken image: the weights turn NaN (the clipped loss may not)
    broken = ImageDataset(x, train.y, train.class_names, "broken")
    model = tiny_model()
    start = model.get_weights()
    result = fit(model, broken, None, TrainConfig(epochs=3, batch_size=32))
    assert result.status == "diverged" and "learning rate" in result.message
    assert all(np.array_equal(a, b) for a, b in zip(start, model.get_weights()))


def test_stop_guard_hooks_directly():
    model = tiny_model()
    model.stop_training = model.stop_evaluating = False  # as Model.fit sets them
    start = model.get_weights()
    event = threading.Event()
    guard = StopGuard(event)
    guard.set_model(model)
    guard.set_params({"epochs": 3, "steps": 4})
    guard.on_train_begin()
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(0, {"loss": 2.0})
    assert guard.reason is None and not model.stop_training
    event.set()
    guard.on_test_batch_end(0)
    assert model.stop_evaluating  # a validation pass is cut short too
    guard.on_train_batch_end(1, {"loss": 2.0})
    assert (guard.reason, guard.where, model.stop_training) == ("requested", (0, 1), True)

    guard = StopGuard()
    guard.set_model(model)
    guard.set_params({"epochs": 3, "steps": 4})
    model.stop_training = False
    guard.on_train_begin()
    guard.on_epoch_begin(0)
    model.set_weights([w + 1 for w in start])  # "trained"
    guard.on_epoch_end(0, {"loss": 1.0})  # a good epoch: its weights are kept
    guard.on_epoch_begin(1)
    model.set_weights([w * np.nan for w in start])
    guard.on_train_batch_end(2, {"loss": float("inf")})
    assert (guard.reason, guard.where, model.stop_training) == ("non_finite", (1, 2), True)
    guard.on_train_end()
    assert all(np.array_equal(a, b + 1) for a, b in zip(model.get_weights(), start))


# --------------------------------------------------------------------------- EpochCheckpoint


def test_checkpoint_and_history_are_written_each_epoch_and_reload_with_equal_predictions(run, digits):
    _, val = digits
    folder, model = run["folder"], run["model"]
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.history.csv", "tiny.history.json", "tiny.keras"]
    ckpt = training.load_checkpoint(folder / "tiny.keras")
    np.testing.assert_allclose(
        ckpt.model.predict(val.x_nhwc, verbose=0), model.predict(val.x_nhwc, verbose=0), rtol=1e-6, atol=1e-7
    )
    assert ckpt.config == run["config"] and ckpt.next_epoch == 2
    assert [r.epoch for r in ckpt.records if r.kind == "epoch"] == [0, 1]
    assert len(ckpt.records) == len(run["got"])
    csv_lines = (folder / "tiny.history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("kind,epoch,loss,accuracy,val_loss,val_accuracy") and len(csv_lines) == 3


def test_checkpoint_writes_are_atomic(digits, tmp_path, monkeypatch):
    train, _ = digits
    target = tmp_path / "ck.keras"
    target.write_bytes(b"the previous checkpoint")
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((Path(src), Path(dst), Path(src).stat().st_size))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    callback = EpochCheckpoint(target, config=TrainConfig())
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0})
    assert [(s.parent, d.name) for s, d, _ in replaced] == [
        (tmp_path, "ck.keras"),
        (tmp_path, "ck.history.json"),
        (tmp_path, "ck.history.csv"),
    ]
    assert all(size > 0 for _, _, size in replaced)  # complete before the move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.history.csv", "ck.history.json", "ck.keras"]

    def failing_save(path, *a, **k):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", failing_save)
    before = target.read_bytes()
    with pytest.raises(OSError, match="disk full"):
        callback.on_epoch_end(1, {"loss": 0.9})
    assert target.read_bytes() == before  # the old checkpoint is intact ...
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ck.history.csv",
        "ck.history.json",
        "ck.keras",
    ]  # ... no debris
    callback.on_epoch_end(2, {"loss": float("nan")})  # a diverged epoch is never saved
    assert callback.saved_epochs == [0]
    with pytest.raises(ValueError, match=".keras"):
        EpochCheckpoint(tmp_path / "ck.h5")


def test_resume_from_a_checkpoint_continues_the_epochs(run, digits, tmp_path):
    train, val = digits
    ckpt = training.load_checkpoint(run["folder"] / "tiny.keras")
    iterations = int(ckpt.model.optimizer.iterations)
    result = fit(ckpt.model, train, val, ckpt.config.replace(epochs=1), initial_epoch=ckpt.next_epoch)
    assert [r.epoch for r in result.epochs] == [2]
    assert int(ckpt.model.optimizer.iterations) == iterations + 10  # the optimizer state went on
    with pytest.raises(TrainingError, match="No checkpoint"):
        training.load_checkpoint(tmp_path / "missing.keras")


# --------------------------------------------------------------------------- the job


def test_job_runs_in_a_worker_thread_and_is_polled(digits, tmp_path):
    train, val = digits
    model = tiny_model()
    job = training.start_job(
        model,
        train,
        val,
        TrainConfig(epochs=2, batch_size=32),
        min_interval_s=0.0,
        checkpoint_path=tmp_path / "job.keras",
    )
    states = []
    while not job.wait(0.05):
        states.append(job.snapshot())
    final = job.snapshot()
    assert final.status == "done" and final.error is None and final.progress == 1.0 and final.eta_s == 0.0
    assert [e.epoch for e in final.epochs] == [0, 1] and len(final.batches) == 20
    assert final.result.status == "completed" and final.finished
    versions = [s.version for s in states] + [final.version]
    assert versions == sorted(versions)
    assert all(s.status == "running" for s in states)
    assert (tmp_path / "job.keras").exists()


def test_job_stop_and_failure(digits):
    train, val = digits
    job = training.start_job(tiny_model(), train, val, TrainConfig(epochs=200, batch_size=32))
    while not job.snapshot().batches:
        time.sleep(0.02)
    job.stop()
    assert job.snapshot().status in ("stopping", "stopped")
    assert job.wait(30)
    state = job.snapshot()
    assert state.status == "stopped" and state.error is None and state.progress < 0.5

    bad = training.start_job(tiny_model(classes=3), train, val, TrainConfig(epochs=1))
    assert bad.wait(30)
    state = bad.snapshot()
    assert state.status == "failed" and "3 outputs but the data has 10 classes" in state.error


def test_job_thins_old_batch_records_but_keeps_every_epoch():
    job = training.TrainingJob(None, None, None, TrainConfig(), max_batch_records=10)
    for i in range(30):
        job._sink(BatchRecord(0, i, 30, i, 1.0, 0.5, 1.0, 0.5, 1e-3, 100.0, i, 1.0, i / 30))
        if i % 10 == 9:
            job._sink(EpochRecord(i // 10, 1.0, 0.5, None, None, 1e-3, 1.0, i))
    state = job.snapshot()
    assert len(state.epochs) == 3 and len(state.batches) <= 10
    assert state.batches[-1].batch == 29 and state.batches[0].batch == 0


def test_trainable_copy_never_changes_the_original(digits):
    train, _ = digits
    original = tiny_model()
    before = original.get_weights()
    copy = training.trainable_copy(original)
    assert copy is not original and all(np.array_equal(a, b) for a, b in zip(before, copy.get_weights()))
    fit(copy, train, None, TrainConfig(epochs=1, batch_size=64))
    assert all(np.array_equal(a, b) for a, b in zip(before, original.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(before, copy.get_weights()))
    assert getattr(original, "optimizer", None) is None
    original.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert getattr(training.trainable_copy(original), "optimizer", None) is None  # compile state is not copied


# --------------------------------------------------------------------------- CSV, save


def test_history_csv_of_mixed_records():
    batch = BatchRecord(0, 0, 2, 0, 2.0, 0.25, 2.0, 0.25, 1e-3, None, 0.1, None, 0.5)
    epoch = EpochRecord(0, 1.5, 0.5, None, None, 1e-3, 1.0, 1.0)
    lines = training.history_csv([batch, epoch]).splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["kind", "epoch", "loss"] and "val_loss" in header and "smooth_loss" in header
    row = dict(zip(header, lines[2].split(",")))
    assert row["kind"] == "epoch" and row["val_loss"] == "" and row["smooth_loss"] == "" and row["epoch_float"] == "1.0"


def test_save_trained_sanitizes_the_name_and_stays_in_the_folder(run, tmp_path, digits):
    _, val = digits
    model = run["model"]
    path = training.save_trained(model, "  my LeNet (run 2)!  ", tmp_path)
    assert path == tmp_path.resolve() / "my_LeNet_run_2.keras"
    loaded = keras.models.load_model(path)
    assert getattr(loaded, "optimizer", None) is None  # weights and architecture only
    np.testing.assert_allclose(
        loaded.predict(val.x_nhwc[:8], verbose=0), model.predict(val.x_nhwc[:8], verbose=0), rtol=1e-6
    )
    assert training.save_trained(model, "../../etc/passwd", tmp_path).parent == tmp_path.resolve()
    assert len(training.save_trained(model, "x" * 500, tmp_path).stem) == 64
    for empty in ("", "   ", "../..", "***"):
        with pytest.raises(TrainingError, match="cannot be used"):
            training.save_trained(model, empty, tmp_path)
    with pytest.raises(TrainingError, match="already exists"):
        training.save_trained(model, "my LeNet (run 2)", tmp_path)
    assert training.save_trained(model, "my_LeNet_run_2", tmp_path, overwrite=True) == path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_tensorboard_logs_when_asked_or_a_note_without_the_package(digits, tmp_path):
    train, _ = digits
    config = TrainConfig(epochs=1, batch_size=32, tensorboard_dir=str(tmp_path / "tb"))
    result = fit(tiny_model(), train.subset(np.arange(64)), None, config)
    assert result.status == "completed"
    if importlib.util.find_spec("tensorboard") is None:
        assert any("tensorboard package is not installed" in n for n in result.notes)
    else:
        assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
