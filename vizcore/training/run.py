"""Run: one training started from a page, with its folder, its server slot, its model copy and its job.

A server trains at most ``MAX_CONCURRENT`` models at once (``SLOTS``, one semaphore per process).
Each run lives in ``<runs_dir>/<session>/<run>/`` (``checkpoint.keras`` and its history after every
epoch, ``snapshots.npz``, ``tensorboard/``); its ``token`` ``<session>.<run>`` (two random hex
strings, so no path can be built from it) finds the last checkpoint again after the tab closed.

Example:
    >>> run = start_run(loaded, train, val, config, session=new_session_id(), label="LeNet-5 on MNIST")
    >>> run.job.snapshot().status, run.token
    ('running', '3f2a9c01d4e5.9b0c44d2')
    >>> run.job.wait(); run.finish()          # evaluates on the validation data, once
    True
    >>> run.trained_model().label
    'LeNet-5 on MNIST (trained here)'
    >>> recover_run(find_checkpoint(runs_dir(), run.token)).card["epochs"]
    10
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import keras

from vizcore import profile
from vizcore.data.datasets import ImageDataset
from vizcore.errors import TrainingError
from vizcore.inspect.evaluation import Evaluation, evaluate
from vizcore.models import LoadedModel
from vizcore.training.clone import trainable_copy
from vizcore.training.config import TrainConfig
from vizcore.training.distribute import strategy_for
from vizcore.training.job import JobState, TrainingJob
from vizcore.training.replay import load_snapshots
from vizcore.training.storage import load_checkpoint, save_trained

MAX_CONCURRENT = profile.current().training_slots
SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)
"""At most ``MAX_CONCURRENT`` trainings at once on this server (two; one in the hosted profile),
whatever the number of sessions."""

BUSY = (
    f"Other sessions are training right now and this server trains "
    f"{ {1: 'one model', 2: 'two models'}.get(MAX_CONCURRENT, f'{MAX_CONCURRENT} models') } "
    "at a time; try again in a moment."
)
SESSION_ID = re.compile(r"^[0-9a-f]{12}$")
TOKEN = re.compile(r"^([0-9a-f]{12})\.([0-9a-f]{8})$")
CHECKPOINT, SNAPSHOTS = "checkpoint.keras", "snapshots.npz"


def runs_dir() -> Path:
    """Where runs are written: ``$CONVLENS_RUNS_DIR`` when set, else ``user_models/`` beside the app."""
    return Path(os.environ.get("CONVLENS_RUNS_DIR") or Path(__file__).resolve().parents[2] / "user_models")


def new_session_id() -> str:
    """A random 12-hex-digit name for one browser session's folder of runs."""
    return uuid.uuid4().hex[:12]


@dataclass(eq=False)
class Run:
    """One training: where it writes, the private model it trains, its job, and what came of it.

    Attributes:
        folder: ``<runs_dir>/<session>/<id>``.
        model: the private copy being trained (the source model is never touched).
        val: the validation images (None or empty: no evaluation).
        evaluation: set by ``finish`` when there is validation data.
        final: the job's state when ``finish`` saw it end; None while it runs.
        saved: the last file ``save`` wrote.
    """

    id: str
    folder: Path
    model: keras.Model
    job: TrainingJob
    val: ImageDataset | None
    class_names: tuple[str, ...]
    label: str
    preprocess: str
    started: float
    evaluation: Evaluation | None = None
    final: JobState | None = None
    saved: Path | None = None

    @property
    def token(self) -> str:
        """``<session>.<run>``: what the page's address carries to find this run again."""
        return f"{self.folder.parent.name}.{self.id}"

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / CHECKPOINT

    @property
    def snapshot_path(self) -> Path:
        return self.folder / SNAPSHOTS

    def stop(self) -> None:
        """End training after the current batch, keeping the weights (returns at once)."""
        self.job.stop()

    def finish(self) -> bool:
        """Once the job has ended: keep its final state and evaluate on ``val``. True only the first time."""
        if self.final is not None or not self.job.done:
            return False
        self.final = self.job.snapshot()
        if self.trained and self.val is not None and len(self.val):
            self.evaluation = evaluate(self.model, self.val)
        return True

    @property
    def trained(self) -> bool:
        """Whether the finished run left a model worth using (not a failure before any epoch)."""
        return self.final is not None and not (self.final.status == "failed" and not self.final.epochs)

    def trained_model(self) -> LoadedModel:
        """The trained model as a working model, with its snapshots for replay."""
        status = self.final.status if self.final else "running"
        card = {"snapshots": str(self.snapshot_path), "trained_here": True, "status": status}
        return LoadedModel(
            self.model, f"trained:{self.id}", f"{self.label} (trained here)", self.class_names, self.preprocess, card
        )

    def save(self, name: str) -> Path:
        """Save the trained model as ``<session folder>/saved/<name>.keras`` (see ``save_trained``).

        Raises:
            TrainingError: the name is unusable or taken.
        """
        self.saved = save_trained(self.model, name, self.folder.parent / "saved")
        return self.saved

    @property
    def download_path(self) -> Path:
        """The file to offer for download: the saved model, else the last checkpoint."""
        return self.saved if self.saved is not None and self.saved.exists() else self.checkpoint_path


def start_run(
    source: LoadedModel,
    train: ImageDataset,
    val: ImageDataset | None,
    config: TrainConfig,
    *,
    session: str,
    label: str,
    root: str | os.PathLike | None = None,
    tensorboard: bool = False,
    slots: threading.Semaphore = SLOTS,
) -> Run:
    """Take a slot, make the run's folder and a private copy of ``source.model``, and start training it.

    Args:
        source: the model to start from (often shared by a cache; it is copied, never trained).
        session: ``new_session_id()`` of the caller's session; runs of one session share its folder.
        label: how the run is named on the page ("LeNet-5 on MNIST").
        root: the runs folder (default ``runs_dir()``).
        tensorboard: also write TensorBoard logs into the run's ``tensorboard/`` folder.
        slots: the server's training slots; the slot is given back when the job ends, or at once
            when the job cannot start.

    Raises:
        TrainingError: the server already trains ``MAX_CONCURRENT`` models.
    """
    if not SESSION_ID.match(session):
        raise ValueError(f"A session id is 12 hex digits (new_session_id()), got {session!r}.")
    if not slots.acquire(blocking=False):
        raise TrainingError(BUSY)
    try:
        run_id = uuid.uuid4().hex[:8]
        folder = Path(root or runs_dir()) / session / run_id
        folder.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            config = config.replace(tensorboard_dir=str(folder / "tensorboard"))
        with strategy_for().scope():  # several GPUs: the copy's variables live on each (see distribute)
            model = trainable_copy(source.model)
        job = TrainingJob(
            model,
            train,
            val,
            config,
            checkpoint_path=folder / CHECKPOINT,
            snapshot_path=folder / SNAPSHOTS,
            on_finish=slots.release,
        )
        job.start()
    except BaseException:
        slots.release()  # the job never started: give its slot back
        raise
    return Run(run_id, folder, model, job, val, tuple(train.class_names), label, source.preprocess, time.time())


def find_checkpoint(root: str | os.PathLike, token: str) -> Path | None:
    """The checkpoint of the run ``token`` names under ``root``; None for a malformed token or no checkpoint."""
    match = TOKEN.match(token or "")
    if not match:
        return None
    path = Path(root) / match.group(1) / match.group(2) / CHECKPOINT
    return path if path.is_file() else None


def prune_runs(root: str | os.PathLike, max_age_s: float, *, now: float | None = None) -> list[Path]:
    """Delete the session folders under ``root`` whose newest file is older than ``max_age_s``; returns what went.

    Only folders named like a session (12 hex digits) are touched; a missing ``root`` is empty.
    Call it once per process start, before any training writes there.
    """
    root, now = Path(root), time.time() if now is None else now
    if not root.is_dir():
        return []
    gone = []
    for folder in root.iterdir():
        if not (folder.is_dir() and not folder.is_symlink() and SESSION_ID.match(folder.name)):
            continue
        try:
            newest = max([folder.stat().st_mtime] + [p.lstat().st_mtime for p in folder.rglob("*")])
        except OSError:  # a file vanished while looking: that session is alive
            continue
        if now - newest > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def recover_run(checkpoint_path: str | os.PathLike) -> LoadedModel:
    """The model of a run's last checkpoint (``card["epochs"]``: finished epochs), class names from its snapshots.

    Raises:
        TrainingError: the checkpoint cannot be read.
    """
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path)
    model = trainable_copy(checkpoint.model)
    names = tuple(str(i) for i in range(max(2, int(model.output_shape[-1]))))
    snapshots = path.parent / SNAPSHOTS
    if snapshots.is_file():
        names = tuple(load_snapshots(snapshots).class_names) or names
    card = {"snapshots": str(snapshots), "trained_here": True, "status": "recovered", "epochs": checkpoint.next_epoch}
    return LoadedModel(
        model,
        f"trained:{path.parent.name}",
        f"{model.name} (recovered, epoch {checkpoint.next_epoch})",
        names,
        "unit",
        card,
    )
