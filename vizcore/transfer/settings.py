"""How to teach: one frozen dataclass with Teachable Machine's defaults, and its checks.

Example:
    >>> TeachSettings().problems()
    []
    >>> TeachSettings(fine_tune_blocks=1).fine_tunes
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TeachSettings:
    """Every setting of a teach run; the defaults are Teachable Machine's (phase 1 only).

    Attributes:
        epochs: passes of the head over the cached features (phase 1).
        batch_size: feature vectors (phase 1) or images (phase 2) per step.
        learning_rate: Adam's learning rate for the head.
        head_units: units of the head's hidden Dense layer (ReLU).
        validation_fraction: share of each class held out (stratified, seeded); 0: no validation.
        fine_tune_blocks: phase 2 trains the base's last this many blocks (``vizcore.models.blocks``) with the
            head; 0: no phase 2.
        fine_tune_learning_rate: Adam's learning rate in phase 2 (keras.io's guide: 1e-5).
        augment: add ``augment_copies`` flipped, cropped and turned copies of each training image,
            computed once before phase 1 (and drawn afresh each step in phase 2).
        seed: seeds the split, the head's initial weights, the shuffling and the augmentation.
        fine_tune_epochs: epochs of phase 2.
        augment_copies: augmented copies per training image when ``augment``.
        feature_layer: the layer whose output feeds the head (a path or unique name); None: the
            base's last block output (``vizcore.models.blocks.default_target_layer``), pooled.
        feature_batch: images per batch of the base's one pass over the images.
    """

    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 1e-3
    head_units: int = 100
    validation_fraction: float = 0.15
    fine_tune_blocks: int = 0
    fine_tune_learning_rate: float = 1e-5
    augment: bool = False
    seed: int = 0
    fine_tune_epochs: int = 10
    augment_copies: int = 4
    feature_layer: str | None = None
    feature_batch: int = 32

    @property
    def fine_tunes(self) -> bool:
        """Whether phase 2 runs."""
        return self.fine_tune_blocks >= 1 and self.fine_tune_epochs >= 1

    def problems(self) -> list[str]:
        """Settings that cannot work, one sentence each; empty when all is well."""
        out = []
        if self.epochs < 1:
            out.append(f"Train the head for at least 1 epoch (got {self.epochs}).")
        if self.batch_size < 1:
            out.append(f"The batch size must be at least 1, got {self.batch_size}.")
        for name in ("learning_rate", "fine_tune_learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                out.append(f"The {name.replace('_', ' ')} must be above 0 and at most 1, got {value}.")
        if self.head_units < 1:
            out.append(f"The head needs at least 1 hidden unit, got {self.head_units}.")
        if not 0 <= self.validation_fraction < 1:
            out.append(f"The validation share must be in [0, 1), got {self.validation_fraction}.")
        if self.fine_tune_blocks < 0 or self.fine_tune_epochs < 0:
            out.append("Blocks and epochs to fine-tune cannot be negative.")
        if self.augment and self.augment_copies < 1:
            out.append("Augmentation needs at least 1 copy per image.")
        if self.feature_batch < 1:
            out.append(f"The feature batch must be at least 1 image, got {self.feature_batch}.")
        return out

    def replace(self, **changes: Any) -> TeachSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TeachSettings:
        """The settings a ``to_dict`` wrote; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
