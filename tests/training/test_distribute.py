"""vizcore.training.distribute: the strategy choice, and LeNet-5 trained on two logical CPUs against one device.

The training comparison runs tests/training/distributed_check.py in a subprocess (logical devices
must be configured before TensorFlow starts its devices); it takes about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from vizcore.errors import TrainingError
from vizcore.training import TrainConfig
from vizcore.training.distribute import global_batch, is_chief, strategy_for, strategy_kind, workers_in, write_path

TWO_WORKERS = json.dumps(
    {"cluster": {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}, "task": {"type": "worker", "index": 0}}
)
ONE_WORKER = json.dumps({"cluster": {"worker": ["127.0.0.1:2001"]}, "task": {"type": "worker", "index": 0}})


def test_the_strategy_follows_the_gpus_tf_config_and_the_override():
    assert strategy_kind(0, {}) == "one"
    assert strategy_kind(1, {}) == "one"
    assert strategy_kind(2, {}) == "mirrored"
    assert strategy_kind(8, {"TF_CONFIG": ONE_WORKER}) == "mirrored"  # a cluster of one is this machine
    assert strategy_kind(1, {"TF_CONFIG": TWO_WORKERS}) == "multi_worker"
    assert strategy_kind(0, {"CONVLENS_DISTRIBUTE": "mirrored"}) == "mirrored"
    assert strategy_kind(4, {"CONVLENS_DISTRIBUTE": "one", "TF_CONFIG": TWO_WORKERS}) == "one"
    assert strategy_kind(4, {"CONVLENS_DISTRIBUTE": "auto"}) == "mirrored"
    assert workers_in(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}})) == 3
    assert workers_in(None) == 0
    with pytest.raises(TrainingError, match="CONVLENS_DISTRIBUTE"):
        strategy_kind(1, {"CONVLENS_DISTRIBUTE": "tpu"})
    with pytest.raises(TrainingError, match="TF_CONFIG"):
        workers_in("{not json")


def test_one_device_keeps_the_default_strategy_batch_and_paths(monkeypatch, tmp_path):
    import tensorflow as tf

    monkeypatch.delenv("CONVLENS_DISTRIBUTE", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = strategy_for(devices=("/cpu:0",))
    assert strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()
    assert global_batch(TrainConfig(batch_size=24), strategy) == 24
    assert is_chief(strategy) and write_path(tmp_path / "a.keras", strategy) == tmp_path / "a.keras"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dist") / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "CONVLENS_DISTRIBUTE")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "training" / "distributed_check.py"), str(out), "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_replicas_train_lenet5_to_the_accuracy_of_one_device(report):
    one, same, scaled = report["one"], report["mirrored_same"], report["mirrored"]
    assert report["logical_cpus"] == 2
    assert (one["replicas"], same["replicas"], scaled["replicas"]) == (1, 2, 2)
    assert same["variable_type"] == "MirroredVariable" and one["variable_type"] != "MirroredVariable"
    assert {one["status"], same["status"], scaled["status"]} == {"done"}
    assert one["accuracy"] > 0.85  # 2 epochs of SGD on 4,000 digits: it learned
    assert abs(same["accuracy"] - one["accuracy"]) <= 0.03, (one["accuracy"], same["accuracy"])
    assert abs(scaled["accuracy"] - one["accuracy"]) <= 0.05, (one["accuracy"], scaled["accuracy"])
    assert same["accuracy"] == pytest.approx(same["val_accuracy"][-1], abs=1e-6)  # evaluate() agrees with Keras


def test_the_global_batch_is_the_per_replica_batch_times_the_replicas_and_progress_counts_it(report):
    assert report["one"]["steps_per_epoch"] == report["mirrored_same"]["steps_per_epoch"] == [125]  # 4000 / 32
    assert report["mirrored"]["steps_per_epoch"] == [63]  # 4000 / 64
    for name in ("one", "mirrored_same", "mirrored"):
        run = report[name]
        assert run["last_progress"] == 1.0 and run["images_per_s_seen"] and run["epochs_complete"] == [True, True]
        assert run["checkpoint_epochs"] == 2 and run["checkpoint_matches_model"], name
        assert run["gradcam_matches_checkpoint"], (
            name
        )  # the trained model (mirrored variables) explains like a plain one
    assert report["mirrored"]["history_config_batch"] == 32  # the per-replica setting is saved, for a resume
    assert report["mirrored_same"]["history_config_batch"] == 16
    # snapshots: the untrained weights and each epoch end (and every 100 batches when an epoch is longer)
    assert report["one"]["snapshot_steps"] == report["mirrored_same"]["snapshot_steps"] == 5
    assert report["mirrored"]["snapshot_steps"] == 3


def test_two_replicas_compute_the_same_steps_as_one_device_on_the_same_batches(report):
    one, two = report["same_batches_one_device"], report["same_batches_mirrored"]
    a, b = np.array(one["losses"]), np.array(two["losses"])
    assert len(a) == len(b) == 125
    np.testing.assert_allclose(b[:30], a[:30], atol=1e-4)  # then float rounding grows, as it does between any two runs
    assert abs(a.mean() - b.mean()) < 0.02


def test_stop_behaves_the_same_on_two_replicas(report):
    one, two = report["stop_one"], report["stop_mirrored_same"]
    for result in (one, two):
        assert result["status"] == "stopped" and result["epochs"] == 1
        assert result["changed"] and result["checkpoint_matches_model"]
    assert (
        one["message"]
        == two["message"]
        == "Stopped in epoch 1 after batch 3 of 125; the weights trained so far are kept."
    )


WORKER = (
    """
import json, sys
sys.path.insert(0, {root!r})
from vizcore.training import distribute
strategy = distribute.strategy_for()
import tensorflow as tf
"""
    'print(json.dumps({{"multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), '
    '"replicas": distribute.replicas(strategy), "chief": distribute.is_chief(strategy),\n'
    '                  "path": str(distribute.write_path("/runs/a.keras", strategy)), '
    '"once": distribute.strategy_for() is strategy}}))\n'
)


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_tf_config_with_two_workers_makes_one_multi_worker_strategy_and_worker_0_writes():
    cluster = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    env = {k: v for k, v in os.environ.items() if k != "CONVLENS_DISTRIBUTE"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER.format(root=str(ROOT))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **env,
                "TF_CONFIG": json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}),
            },
        )
        for i in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()  # a worker whose peer died waits for it forever
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert first["multi_worker"] and second["multi_worker"]
    assert first["replicas"] == second["replicas"] == 2 and first["once"] and second["once"]
    assert first["chief"] and first["path"] == "/runs/a.keras"
    assert not second["chief"] and second["path"] != "/runs/a.keras" and second["path"].endswith("/a.keras")
