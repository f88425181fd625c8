"""vizcore.training.run: a Run owns its folder, a server slot, a private model copy and its job."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from vizcore import training
from vizcore.data.datasets import load_mnist_sample, stratified_split
from vizcore.errors import TrainingError
from vizcore.models import LoadedModel
from vizcore.training import TrainConfig, builder, find_checkpoint, recover_run, start_run

SESSION = "0123456789ab"
SPECS = (builder.Conv(4, 3, name="conv1"), builder.MaxPool(4, name="pool"), builder.Flatten(name="flatten"))


@pytest.fixture(scope="module")
def digits():
    full = load_mnist_sample()
    train_idx, val_idx = stratified_split(full.y, validation_fraction=0.2, seed=0)
    return full.subset(train_idx[:320]), full.subset(val_idx[:100])


def source(seed: int = 0) -> LoadedModel:
    keras.utils.set_random_seed(seed)
    return LoadedModel(builder.build(SPECS, (28, 28, 1), 10, name="tiny"), "preset:tiny", "tiny", tuple("0123456789"))


def test_a_server_slot_is_held_while_training_and_given_back_however_the_run_ends(digits, tmp_path):
    train, val = digits
    slots = threading.BoundedSemaphore(1)
    first = start_run(
        source(),
        train,
        val,
        TrainConfig(epochs=200, batch_size=32),
        session=SESSION,
        label="long",
        root=tmp_path,
        slots=slots,
    )
    with pytest.raises(TrainingError, match="two models at a time"):
        start_run(
            source(), train, val, TrainConfig(epochs=1), session=SESSION, label="second", root=tmp_path, slots=slots
        )
    first.stop()
    assert first.job.wait(60) and first.job.snapshot().status == "stopped"
    assert slots.acquire(blocking=False), "the slot was not given back when the run ended"  # before wait() returned
    slots.release()

    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("x")
    with pytest.raises(OSError):  # the run's folder cannot be made: the job never starts
        start_run(source(), train, val, TrainConfig(epochs=1), session=SESSION, label="x", root=blocked, slots=slots)
    assert slots.acquire(blocking=False), "a run that never started kept its slot"
    slots.release()
    with pytest.raises(ValueError, match="12 hex"):
        start_run(
            source(), train, val, TrainConfig(epochs=1), session="../../etc", label="x", root=tmp_path, slots=slots
        )


def test_a_run_trains_a_private_copy_in_its_folder_then_evaluates_saves_and_recovers(digits, tmp_path):
    train, val = digits
    src = source()
    before = [w.copy() for w in src.model.get_weights()]
    run = start_run(
        src,
        train,
        val,
        TrainConfig(epochs=2, batch_size=32),
        session=SESSION,
        label="tiny on digits",
        root=tmp_path,
        slots=threading.BoundedSemaphore(2),
    )
    assert run.folder == tmp_path / SESSION / run.id and len(run.id) == 8 and run.token == f"{SESSION}.{run.id}"
    assert run.model is not src.model and run.final is None
    assert run.job.wait(120)
    assert run.finish() and not run.finish()  # evaluated once
    assert run.final.status == "done" and len(run.final.epochs) == 2 and run.trained
    for a, b in zip(before, src.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the source model was never trained
    assert any(not np.array_equal(a, b) for a, b in zip(before, run.model.get_weights()))

    predicted = run.model.predict(val.x_nhwc, verbose=0).argmax(-1)
    assert run.evaluation.accuracy == pytest.approx(np.mean(predicted == val.y))
    trained = run.trained_model()
    assert (
        trained.model is run.model
        and trained.key == f"trained:{run.id}"
        and trained.label == "tiny on digits (trained here)"
    )
    assert trained.card["snapshots"] == str(run.folder / "snapshots.npz") and run.snapshot_path.is_file()

    assert run.download_path == run.checkpoint_path
    saved = run.save("../my run")
    assert saved == tmp_path / SESSION / "saved" / "my_run.keras" and run.download_path == saved
    with pytest.raises(TrainingError, match="already exists"):
        run.save("my run")

    assert find_checkpoint(tmp_path, run.token) == run.checkpoint_path
    for token in ("", "../../etc.passwd", f"{SESSION}.00000000", f"{SESSION}/{run.id}", f"{SESSION.upper()}.{run.id}"):
        assert find_checkpoint(tmp_path, token) is None, token
    recovered = recover_run(run.checkpoint_path)
    assert recovered.card["epochs"] == 2 and recovered.class_names == val.class_names
    np.testing.assert_allclose(
        recovered.model.predict(val.x_nhwc[:8], verbose=0), run.model.predict(val.x_nhwc[:8], verbose=0), atol=1e-6
    )


def test_a_run_that_fails_before_any_epoch_has_no_trained_model(digits, tmp_path):
    train, val = digits
    keras.utils.set_random_seed(0)
    three = LoadedModel(builder.build(SPECS, (28, 28, 1), 3, name="three"), "preset:three", "three", ("a", "b", "c"))
    slots = threading.BoundedSemaphore(1)
    run = start_run(three, train, val, TrainConfig(epochs=1), session=SESSION, label="x", root=tmp_path, slots=slots)
    assert run.job.wait(60) and run.finish()
    assert run.final.status == "failed" and "3 outputs" in run.final.error
    assert not run.trained and run.evaluation is None
    assert slots.acquire(blocking=False)


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVLENS_RUNS_DIR", str(tmp_path))
    assert training.runs_dir() == tmp_path
    monkeypatch.delenv("CONVLENS_RUNS_DIR")
    assert training.runs_dir().name == "user_models"
    assert len({training.new_session_id() for _ in range(20)}) == 20
