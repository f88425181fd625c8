"""Train a CNN with live curves: settings, fit with progress/Stop/checkpoints, a polled job, evaluation.

Plain Python and Keras, no Streamlit. The page's whole loop::

    from vizcore import training
    config = training.TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9, epochs=5)
    train, val = training.split_for_training(data.load_mnist_sample(), config)
    model = training.trainable_copy(loaded.model)            # never the cached, shared model
    problems = training.check_compat(model, train, config, val=val)  # show these instead of starting
    job = training.start_job(model, train, val, config, checkpoint_path="runs/lenet.keras",
                             snapshot_path="runs/lenet.snapshots.npz")
    state = job.snapshot()            # poll from st.fragment(run_every=1): records, status, ETA
    job.stop()                        # ends after the current batch, weights kept
    ev = training.evaluate(model, val)  # confusion matrix, per-class accuracy, mistakes

Layout: ``config`` (TrainConfig, recipes, optimizer and schedule), ``records`` (what progress
looks like), ``data`` (split, tf.data with augmentation, check_compat), ``callbacks/`` (one Keras
callback per file), ``fit``, ``job``, ``evaluate``, ``storage`` (atomic files).
"""

from vizcore.training.callbacks import EpochCheckpoint, ProgressReporter, StopGuard
from vizcore.training.config import OPTIMIZERS, RECOMMENDED, SCHEDULES, TrainConfig, make_optimizer, make_schedule
from vizcore.training.inputs import augmenter, check_compat, make_dataset, split_for_training, steps_per_epoch
from vizcore.training.evaluate import Evaluation, Mistake, evaluate, predict_probabilities
from vizcore.training.fit import FitResult, fit, loss_and_metric, trainable_copy
from vizcore.training.job import JobState, TrainingJob, start_job
from vizcore.training.records import BatchRecord, EpochRecord, Record, history_csv, history_dict, record_dict
from vizcore.training.storage import (
    Checkpoint,
    atomic_save_model,
    atomic_write_text,
    history_paths,
    load_checkpoint,
    sanitize_name,
    save_trained,
)

__all__ = [
    "OPTIMIZERS", "RECOMMENDED", "SCHEDULES",
    "BatchRecord", "Checkpoint", "EpochCheckpoint", "EpochRecord", "Evaluation", "FitResult", "JobState", "Mistake",
    "ProgressReporter", "Record", "StopGuard", "TrainConfig", "TrainingJob",
    "atomic_save_model", "atomic_write_text", "augmenter", "check_compat", "evaluate", "fit", "history_csv",
    "history_dict", "history_paths", "load_checkpoint", "loss_and_metric", "make_dataset", "make_optimizer",
    "make_schedule", "predict_probabilities", "record_dict", "sanitize_name", "save_trained", "split_for_training",
    "start_job", "steps_per_epoch", "trainable_copy",
]
