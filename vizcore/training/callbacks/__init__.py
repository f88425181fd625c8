"""The Keras callbacks of training, one class per file."""

from vizcore.training.callbacks.checkpoint import EpochCheckpoint
from vizcore.training.callbacks.progress import ProgressReporter
from vizcore.training.callbacks.snapshot_recorder import SnapshotRecorder
from vizcore.training.callbacks.stop import StopGuard

__all__ = ["EpochCheckpoint", "ProgressReporter", "SnapshotRecorder", "StopGuard"]
