"""How to train: one frozen dataclass, its checks, and the optimizer and learning-rate schedule it makes.

Example:
    >>> config = TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9, epochs=40)
    >>> config.problems()
    []
    >>> step = TrainConfig(schedule="step", step_every=5, step_factor=0.7)
    >>> round(step.learning_rate_at(step=10 * 63, steps_per_epoch=63), 8)  # epoch 10: 0.001 * 0.7 ** 2
    0.00049
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
SNAPSHOT_EVERY = 100  # batches, when an epoch is longer than that


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting the Train page offers.

    Attributes:
        optimizer: 'sgd', 'adam' or 'rmsprop'.
        learning_rate: the starting learning rate.
        momentum: SGD's momentum (Adam and RMSprop use Keras' defaults and ignore it).
        schedule: 'constant'; 'step' (multiply by ``step_factor`` every ``step_every`` epochs);
            'cosine' (from ``learning_rate`` down to 0 over all epochs, updated every batch).
        batch_size: images per step.
        epochs: passes over the training data.
        validation_fraction: share of each class held out when one dataset is split
            (``split_for_training``); 0 trains on everything and reports no validation figures.
        flip: random flips, along ``flip_mode`` (not for digits or text).
        shift: random translation up to this fraction of the height and width, padding with 0
            (0.125 on 32x32 is the CIFAR recipe's "pad 4, random crop 32").
        rotation: random rotation up to this many degrees either way.
        seed: seeds the split, the shuffling, the augmentation and the dropout masks.
        snapshot_every_batches: record snapshots every this many batches as well as after each
            epoch; None: 100 when an epoch has more than 100 batches, else after each epoch only;
            0: after each epoch only.
        tensorboard_dir: also write TensorBoard logs there (None: no TensorBoard).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    schedule: str = "constant"
    step_every: int = 5
    step_factor: float = 0.7
    batch_size: int = 32
    epochs: int = 10
    validation_fraction: float = 0.2
    flip: bool = False
    flip_mode: str = "horizontal"
    shift: float = 0.0
    rotation: float = 0.0
    seed: int = 0
    snapshot_every_batches: int | None = None
    tensorboard_dir: str | None = None

    def problems(self) -> list[str]:
        """Settings that cannot work, each as one sentence; empty when all is well."""
        out = []
        if self.optimizer not in OPTIMIZERS:
            out.append(f"Unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 10):
            out.append(f"The learning rate must be above 0 (and at most 10), got {self.learning_rate}.")
        if not 0 <= self.momentum < 1:
            out.append(f"Momentum must be in [0, 1), got {self.momentum}.")
        if self.schedule not in SCHEDULES:
            out.append(f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")
        if self.schedule == "step" and (self.step_every < 1 or not 0 < self.step_factor <= 1):
            out.append("A step schedule needs step_every >= 1 epoch and a factor in (0, 1].")
        if self.batch_size < 1:
            out.append(f"The batch size must be at least 1, got {self.batch_size}.")
        if self.epochs < 1:
            out.append(f"Train for at least 1 epoch (got {self.epochs}).")
        if not 0 <= self.validation_fraction < 1:
            out.append(f"The validation fraction must be in [0, 1), got {self.validation_fraction}.")
        if self.flip and self.flip_mode not in FLIP_MODES:
            out.append(f"Unknown flip mode {self.flip_mode!r}; choose one of {', '.join(FLIP_MODES)}.")
        if not 0 <= self.shift < 1:
            out.append(f"The random shift must be a fraction of the image in [0, 1), got {self.shift}.")
        if not 0 <= self.rotation <= 180:
            out.append(f"The random rotation must be between 0 and 180 degrees, got {self.rotation}.")
        if self.snapshot_every_batches is not None and self.snapshot_every_batches < 0:
            out.append("snapshot_every_batches must be 0 (each epoch), a positive number of batches or None.")
        return out

    @property
    def augments(self) -> bool:
        """Whether any random augmentation is on."""
        return self.flip or self.shift > 0 or self.rotation > 0

    def learning_rate_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate used by global batch ``step`` (0-based), as the optimizer's schedule computes it."""
        if self.schedule == "step":
            return self.learning_rate * self.step_factor ** (step // (self.step_every * steps_per_epoch))
        if self.schedule == "cosine":
            total = max(1, self.epochs * steps_per_epoch)
            return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        return float(self.learning_rate)

    def snapshot_interval(self, steps_per_epoch: int) -> int:
        """Batches between mid-epoch snapshots; 0 means after each epoch only."""
        if self.snapshot_every_batches is not None:
            return int(self.snapshot_every_batches)
        return SNAPSHOT_EVERY if steps_per_epoch > SNAPSHOT_EVERY else 0

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (for session state, the history file and URLs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """The config a ``to_dict`` wrote; unknown keys are ignored (older or newer files)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


RECOMMENDED: Mapping[str, TrainConfig] = MappingProxyType(
    {
        "lenet5": TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9, batch_size=32, epochs=40),
        "mnist_cnn": TrainConfig(
            optimizer="adam",
            learning_rate=1e-3,
            schedule="step",
            step_every=5,
            step_factor=0.7,
            batch_size=64,
            epochs=15,
        ),
        "cifar_cnn": TrainConfig(
            optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=20, flip=True, shift=0.125
        ),
        "tiny_vgg": TrainConfig(optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=15),
    }
)
"""The seeds' recipes for each preset (LeNet-5 with SGD + momentum, the MNIST CNN with Adam and a
step decay, the CIFAR CNN with random crops and flips), as starting points for the page."""


def make_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning rate the Keras optimizer takes: a float or a LearningRateSchedule on its iterations."""
    import keras

    if config.schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate,
            decay_steps=config.step_every * steps_per_epoch,
            decay_rate=config.step_factor,
            staircase=True,
        )
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch)
        )
    return float(config.learning_rate)


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """A fresh Keras optimizer for ``config``."""
    import keras

    lr = make_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.Adam(lr)
