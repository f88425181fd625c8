"""Train the same seeded LeNet-5 on one device and on two logical CPUs; print what happened as JSON.

Run by tests/test_distribute.py in a subprocess: logical devices must be set before TensorFlow
starts its devices. Three runs of ``start_run`` (the page's path): 'one' (batch 32 on one device),
'mirrored_same' (2 replicas x 16 = 32 per step: the same steps as 'one') and 'mirrored' (2
replicas x 32 = 64 per step), then a Stop after batch 3 through ``fit``, each mode, and the
per-batch losses of one epoch on one explicit device and on two replicas (the same batches).

    python tests/training/distributed_check.py OUT.json [EPOCHS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tensorflow as tf  # noqa: E402

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vizcore import attribution, models, training  # noqa: E402
from vizcore.data.datasets import load_mnist_sample  # noqa: E402
from vizcore.models import LoadedModel  # noqa: E402
from vizcore.training import BatchRecord, EpochRecord, TrainConfig  # noqa: E402
from vizcore.training.distribute import replicas, strategy_for  # noqa: E402

SESSION = "0123456789ab"
MODES = {"one": ("one", 32), "mirrored_same": ("mirrored", 16), "mirrored": ("mirrored", 32)}


def lenet(seed: int = 0) -> LoadedModel:
    keras.utils.set_random_seed(seed)
    return LoadedModel(models.presets.lenet5(), "preset:lenet5", "LeNet-5", tuple("0123456789"))


def trained(mode: str, batch: int, train, val, epochs: int, root: Path) -> dict:
    os.environ[training.distribute.ENV] = mode
    config = TrainConfig(optimizer="sgd", learning_rate=1e-2, momentum=0.9, batch_size=batch, epochs=epochs, seed=0)
    run = training.start_run(
        lenet(), train, val, config, session=SESSION, label=mode, root=root, slots=threading.BoundedSemaphore(1)
    )
    assert run.job.wait(600), "training did not end"
    run.finish()
    state = run.final
    batches = [r for r in state.records if isinstance(r, BatchRecord)]
    epochs_ = [r for r in state.records if isinstance(r, EpochRecord)]
    recovered = training.recover_run(run.checkpoint_path)
    probs_run = run.trained_model().model.predict(val.x_nhwc[:64], verbose=0)
    probs_ckpt = recovered.model.predict(val.x_nhwc[:64], verbose=0)
    heat = [
        attribution.METHODS["Grad-CAM"](m, val.x_nhwc[0], layer="conv2")
        for m in (run.trained_model().model, recovered.model)
    ]
    history = json.loads(training.history_paths(run.checkpoint_path)[0].read_text())
    return {
        "replicas": replicas(run.model.distribute_strategy),
        "variable_type": type(run.model.weights[0].value).__name__,
        "status": state.status,
        "error": state.error,
        "accuracy": float(run.evaluation.accuracy),
        "val_accuracy": [r.val_accuracy for r in epochs_],
        "loss": [r.loss for r in epochs_],
        "epochs_complete": [r.complete for r in epochs_],
        "steps_per_epoch": sorted({r.steps_per_epoch for r in batches}),
        "last_progress": batches[-1].progress,
        "images_per_s_seen": any(r.images_per_s for r in batches),
        "checkpoint_epochs": recovered.card["epochs"],
        "checkpoint_matches_model": bool(np.allclose(probs_run, probs_ckpt, atol=1e-6)),
        "gradcam_matches_checkpoint": bool(np.allclose(*heat, atol=1e-5)) and float(np.ptp(heat[0])) > 0,
        "snapshot_steps": len(np.load(run.snapshot_path)["steps"]),
        "history_config_batch": history["config"]["batch_size"],
    }


def batch_losses(strategy, batch: int, train) -> dict:
    """Per-batch losses of one epoch through ``fit`` of a LeNet-5 made in ``strategy``'s scope."""
    with strategy.scope():
        model = training.trainable_copy(lenet().model)
    got = []
    config = TrainConfig(optimizer="sgd", learning_rate=1e-2, momentum=0.9, batch_size=batch, epochs=1, seed=0)
    training.fit(model, train, None, config, on_progress=got.append, min_interval_s=0.0)
    return {
        "losses": [r.loss for r in got if isinstance(r, BatchRecord)],
        "weights": [float(np.abs(w).sum()) for w in model.get_weights()],
    }


def stopped(mode: str, batch: int, train, val, root: Path) -> dict:
    os.environ[training.distribute.ENV] = mode
    with strategy_for().scope():
        model = training.trainable_copy(lenet().model)
    start = model.get_weights()
    stop = threading.Event()

    def sink(record):
        if isinstance(record, BatchRecord) and record.batch == 2:
            stop.set()

    result = training.fit(
        model,
        train,
        val,
        TrainConfig(batch_size=batch, epochs=3),
        on_progress=sink,
        stop=stop,
        checkpoint_path=root / f"stop_{mode}.keras",
        min_interval_s=0.0,
    )
    saved = keras.models.load_model(root / f"stop_{mode}.keras")
    return {
        "status": result.status,
        "message": result.message,
        "epochs": len(result.epochs),
        "changed": any(not np.array_equal(a, b) for a, b in zip(start, model.get_weights())),
        "checkpoint_matches_model": all(np.allclose(a, b) for a, b in zip(saved.get_weights(), model.get_weights())),
    }


def main(out: str, epochs: int = 2) -> None:
    full = load_mnist_sample()
    train, val = training.split_for_training(full, TrainConfig(validation_fraction=0.2, seed=0))
    root = Path(tempfile.mkdtemp(prefix="convlens_dist_"))
    report = {"logical_cpus": len(tf.config.list_logical_devices("CPU"))}
    for name, (mode, batch) in MODES.items():
        report[name] = trained(mode, batch, train, val, epochs, root / name)
    for name in ("one", "mirrored_same"):
        report[f"stop_{name}"] = stopped(*MODES[name], train, val, root)
    # Keras iterates a distributed model's data once before training (to build it), so a seeded
    # shuffle starts one permutation later than on the default strategy; one explicit device does the same
    report["same_batches_one_device"] = batch_losses(tf.distribute.OneDeviceStrategy("/cpu:0"), 32, train)
    report["same_batches_mirrored"] = batch_losses(
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()),
        16,
        train,
    )
    Path(out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
