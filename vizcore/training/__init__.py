"""Train a CNN with live curves: settings, fit with progress/Stop/checkpoints, a polled job, evaluation.

Plain Python and Keras, no Streamlit. The page's whole loop::

    from vizcore import training
    from vizcore.data import datasets
    config = training.TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9, epochs=5)
    train, val = training.split_for_training(datasets.load_mnist_sample(), config)
    problems = training.check_compat(loaded.model, train, config, val=val)  # show these instead of starting
    run = training.start_run(loaded, train, val, config, session=training.new_session_id(), label="LeNet-5")
    state = run.job.snapshot()        # poll from st.fragment(run_every=1): records, status, ETA
    run.stop()                        # ends after the current batch, weights kept
    if run.finish():                  # once it has ended: evaluation (confusion matrix, mistakes)
        working = run.trained_model()

``start_run`` takes one of the server's two slots, makes the run's folder, trains a private copy
(``trainable_copy``; never the cached, shared model) in a ``TrainingJob`` thread with ``fit``.

Layout, lowest first: ``config`` (TrainConfig, recipes, optimizer and schedule), ``records`` (what
progress looks like), ``inputs`` (split, tf.data with augmentation, check_compat), ``clone``
(trainable_copy), ``distribute`` (strategy_for: one device, every GPU, or TF_CONFIG's workers),
``storage`` (atomic files, checkpoints), ``replay`` (the probe-image replay file a run records),
``callbacks/`` (one Keras callback per file), ``fit``, ``job``, ``run`` (Run, start_run, the slots and
run folders; a finished run is evaluated by ``vizcore.inspect.evaluation``), and beside them
``builder/`` (layer specs -> model, and back) and ``search/`` (hyperparameter studies with Optuna).
"""

from vizcore.training.callbacks import EpochCheckpoint, ProgressReporter, SnapshotRecorder, StopGuard
from vizcore.training.clone import trainable_copy
from vizcore.training.config import OPTIMIZERS, RECOMMENDED, SCHEDULES, TrainConfig, make_optimizer, make_schedule
from vizcore.training.distribute import global_batch, strategy_for
from vizcore.training.fit import FitResult, fit, loss_and_metric
from vizcore.training.inputs import augmenter, check_compat, make_dataset, split_for_training, steps_per_epoch
from vizcore.training.job import JobState, TrainingJob, start_job
from vizcore.training.records import BatchRecord, EpochRecord, Record, history_csv, history_dict, record_dict
from vizcore.training.run import (
    MAX_CONCURRENT,
    SLOTS,
    Run,
    find_checkpoint,
    new_session_id,
    prune_runs,
    recover_run,
    runs_dir,
    start_run,
)
from vizcore.training.storage import (
    Checkpoint,
    atomic_path,
    atomic_save_model,
    atomic_save_npz,
    atomic_write_text,
    history_paths,
    load_checkpoint,
    sanitize_name,
    save_trained,
)

__all__ = [
    "MAX_CONCURRENT",
    "OPTIMIZERS",
    "RECOMMENDED",
    "SCHEDULES",
    "SLOTS",
    "BatchRecord",
    "Checkpoint",
    "EpochCheckpoint",
    "EpochRecord",
    "FitResult",
    "JobState",
    "ProgressReporter",
    "Record",
    "Run",
    "SnapshotRecorder",
    "StopGuard",
    "TrainConfig",
    "TrainingJob",
    "atomic_path",
    "atomic_save_model",
    "atomic_save_npz",
    "atomic_write_text",
    "augmenter",
    "check_compat",
    "find_checkpoint",
    "fit",
    "history_csv",
    "history_dict",
    "history_paths",
    "load_checkpoint",
    "loss_and_metric",
    "make_dataset",
    "make_optimizer",
    "make_schedule",
    "new_session_id",
    "prune_runs",
    "record_dict",
    "recover_run",
    "runs_dir",
    "sanitize_name",
    "save_trained",
    "split_for_training",
    "start_job",
    "start_run",
    "steps_per_epoch",
    "trainable_copy",
    "global_batch",
    "strategy_for",
]
