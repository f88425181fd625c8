"""Snapshots: probes, when SnapshotRecorder takes them, what they hold, the file and its reload."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from vizcore.data.datasets import ImageDataset, load_mnist_sample, make_shapes
from vizcore.models.features import feature_model
from vizcore.training import TrainConfig, builder, fit
from vizcore.training.callbacks import SnapshotRecorder
from vizcore.training.replay import Snapshots, choose_probes, default_layers, load_snapshots

SPECS = (
    builder.Conv(4, 3, name="conv1"),
    builder.MaxPool(2, name="pool"),
    builder.Conv(6, 3, name="conv2"),
    builder.MaxPool(3, name="pool2"),
    builder.Flatten(name="flatten"),
)


def small_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return builder.build(SPECS, (28, 28, 1), 10, name="small")


@pytest.fixture(scope="module")
def digits():
    full = load_mnist_sample()
    return full.subset(np.arange(0, 5000, 20)), full.subset(np.arange(7, 5000, 50))  # 250 train, 100 val


class ThreadLog(SnapshotRecorder):
    """The recorder, noting which thread each snapshot was taken in."""

    def record(self, epoch, batch):
        self.threads = getattr(self, "threads", set()) | {threading.get_ident()}
        super().record(epoch, batch)


@pytest.fixture(scope="module")
def recorded(digits, tmp_path_factory):
    train, val = digits
    path = tmp_path_factory.mktemp("snaps") / "small.snapshots.npz"
    model = small_model()
    result = fit(model, train, val, TrainConfig(epochs=2, batch_size=32, snapshot_every_batches=3), snapshot_path=path)
    return model, result, path, val


def test_choose_probes_takes_one_per_class_spread_over_the_classes():
    data = load_mnist_sample().subset(np.arange(0, 5000, 10))
    idx = choose_probes(data, 4, seed=0)
    assert data.y[idx].tolist() == [0, 3, 6, 9]
    assert np.array_equal(idx, choose_probes(data, 4, seed=0)) and not np.array_equal(
        idx, choose_probes(data, 4, seed=1)
    )
    shapes = make_shapes(30, size=16)
    idx = choose_probes(shapes, 4)
    assert sorted(shapes.y[idx].tolist()) == [0, 0, 1, 2] and len(set(idx.tolist())) == 4
    tiny = ImageDataset(shapes.x_nhwc[:2], np.array([1, 1]), shapes.class_names, "t")
    assert len(choose_probes(tiny, 4)) == 2  # never more images than there are


def test_snapshots_are_taken_every_n_batches_and_after_each_epoch(recorded):
    _, result, path, _ = recorded
    snaps = load_snapshots(path)
    # 250 images / 32 = 8 batches per epoch; every 3 batches and at each epoch end; (0, 0) = untrained
    assert snaps.steps == ((0, 0), (0, 3), (0, 6), (0, 8), (1, 3), (1, 6), (1, 8))
    assert snaps.steps_per_epoch == 8 and len(snaps) == 7
    np.testing.assert_allclose(snaps.epoch_floats, [0, 0.375, 0.75, 1, 1.375, 1.75, 2])
    assert [snaps.index_at(v) for v in (0.0, 0.5, 1.0, 1.9, 2.0, 99)] == [0, 1, 3, 5, 6, 6]
    assert result.snapshot_path == path


def test_snapshot_contents_are_the_models_own_at_that_step(recorded):
    model, _, path, val = recorded
    snaps = load_snapshots(path)
    assert snaps.layers == ("conv1", "conv2") and snaps.kernel_layer == "conv1"
    assert snaps.class_names == val.class_names
    np.testing.assert_array_equal(snaps.probe_labels, val.y[snaps.probe_indices])
    np.testing.assert_allclose(snaps.probe_images, val.x_nhwc[snaps.probe_indices], atol=1e-3)  # float16
    assert snaps.kernels_skhwio.dtype == np.float16 and snaps.kernels(0).shape == (3, 3, 1, 4)
    assert snaps.feature_maps(2, "conv1").shape == (4, 26, 26, 4) and snaps.feature_maps(2, "conv2").shape == (
        4,
        11,
        11,
        6,
    )
    assert snaps.maps["conv2"].dtype == np.float16
    # the last snapshot is the trained model: kernels, maps and probabilities agree with it
    np.testing.assert_allclose(snaps.kernels(-1), model.get_layer("conv1").get_weights()[0], atol=2e-3)
    acts, _ = feature_model(model, ["conv2"]).predict(snaps.probe_images)
    np.testing.assert_allclose(snaps.feature_maps(-1, "conv2"), acts["conv2"], atol=5e-3, rtol=5e-3)
    probs = model.predict(snaps.probe_images, verbose=0)
    np.testing.assert_allclose(snaps.probabilities(-1), probs, atol=1e-5)
    np.testing.assert_array_equal(snaps.predictions(-1), probs.argmax(1))
    assert not np.allclose(snaps.kernels(0), snaps.kernels(-1))  # training changed them
    with pytest.raises(KeyError, match="recorded: conv1, conv2"):
        snaps.feature_maps(0, "pool")


def test_recording_runs_in_the_training_thread_and_writes_atomically(digits, tmp_path, monkeypatch):
    train, _ = digits
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "s.npz"
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (replaced.append((Path(a).parent, Path(b).name)), real_replace(a, b))
    )
    rec = ThreadLog(path, train.x_nhwc[:3], train.y[:3], train.class_names, every_batches=2)
    caller = []

    class Where(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            caller.append(threading.get_ident())

    worker = threading.Thread(
        target=lambda: model.fit(
            train.x_nhwc[:96], train.y[:96], batch_size=16, epochs=2, verbose=0, callbacks=[rec, Where()]
        )
    )
    worker.start()
    worker.join()
    assert rec.threads == {worker.ident} == set(caller)  # batch hooks ran synchronously in the training thread
    assert replaced == [(tmp_path, "s.npz")] * 2  # one atomic write per epoch, from the same folder
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]
    assert load_snapshots(path).steps == ((0, 0), (0, 2), (0, 4), (0, 6), (1, 2), (1, 4), (1, 6))


def test_long_epochs_default_to_every_100_batches(digits, tmp_path):
    train, _ = digits
    data = train.subset(np.arange(204))
    path = tmp_path / "long.npz"
    fit(small_model(), data, None, TrainConfig(epochs=1, batch_size=2), snapshot_path=path)  # 102 batches
    assert load_snapshots(path).steps == ((0, 0), (0, 100), (0, 102))


def test_stopped_training_keeps_the_partial_epoch_and_max_snapshots_bounds_mid_epoch_ones(digits, tmp_path):
    train, val = digits
    stop = threading.Event()
    path = tmp_path / "stopped.npz"

    def sink(record):
        if record.kind == "batch" and record.epoch == 1 and record.batch == 4:
            stop.set()

    fit(
        small_model(),
        train,
        val,
        TrainConfig(epochs=5, batch_size=32, snapshot_every_batches=2),
        snapshot_path=path,
        on_progress=sink,
        stop=stop,
        min_interval_s=0.0,
    )
    assert load_snapshots(path).steps == ((0, 0), (0, 2), (0, 4), (0, 6), (0, 8), (1, 2), (1, 4), (1, 5))

    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    capped = SnapshotRecorder(
        tmp_path / "capped.npz", val.x_nhwc[:2], val.y[:2], val.class_names, every_batches=1, max_snapshots=3
    )
    model.fit(train.x_nhwc[:64], train.y[:64], batch_size=16, epochs=2, verbose=0, callbacks=[capped])
    assert capped.steps == [(0, 0), (0, 1), (0, 2), (0, 4), (1, 4)]  # epoch ends are always kept


def test_default_layers_keep_small_cnns_whole_and_thin_deep_ones():
    assert default_layers(small_model()) == ("conv1", "conv2")
    keras.utils.set_random_seed(0)
    deep = builder.build(tuple(builder.Conv(2, 1) for _ in range(20)) + (builder.Flatten(),), (4, 4, 1), 2)
    picked = default_layers(deep, max_layers=5)
    assert picked == ("conv1", "conv6", "conv11", "conv15", "conv20")


def test_load_snapshots_refuses_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a ConvLens snapshot file"):
        load_snapshots(tmp_path / "other.npz")
    assert isinstance(Snapshots.__doc__, str)
