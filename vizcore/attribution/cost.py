"""What a method costs for one image (``Cost``: forward passes or gradients), and how long that takes.

``pass_seconds`` measures one forward pass per image, once per model and size, to turn a cost
into seconds for a page's estimate.

Example:
    >>> cost = METHOD_INFO["Score-CAM"].cost_of(model, (28, 28), layer="conv2")
    >>> str(cost), cost.seconds(pass_seconds(model))
    ('65 forward passes', 0.02)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from vizcore.cache import per_model
from vizcore.models import graph, predict

UNITS = MappingProxyType({"forward pass": "forward passes", "gradient": "gradients"})
PASSES = MappingProxyType(
    {"forward pass": 1.0, "gradient": 3.0}
)  # forward-pass equivalents of one unit (backward ~ 2 forwards)


@dataclass(frozen=True)
class Cost:
    """What a method runs through the model for one image: ``count`` forward passes or gradients."""

    count: int
    unit: str = "forward pass"  # a key of UNITS; a gradient is one forward + backward pass

    def __str__(self) -> str:
        return f"{self.count:,} {self.unit if self.count == 1 else UNITS[self.unit]}"

    def seconds(self, per_pass: float) -> float:
        """An estimate in seconds from the measured seconds of one forward pass (``pass_seconds``)."""
        return self.count * PASSES[self.unit] * per_pass


CostFn = Callable[..., Cost]  # (model, size_hw, layer, **every option, defaults filled in) -> Cost


def one_gradient(model: keras.Model, size_hw: tuple[int, int], layer: str | None, **options: Any) -> Cost:
    """The cost of a method that takes one gradient (forward + backward) per image."""
    return Cost(1, "gradient")


def pass_seconds(model: keras.Model, size_hw: tuple[int, int] | None = None, *, images: int = 4) -> float:
    """Seconds of one forward pass per image in a batch of ``images``, measured once per model and size.

    ``size_hw`` is needed only for a model without a fixed input size.
    """
    spec = graph.input_spec(model)
    h, w = (spec.height, spec.width) if spec.height and spec.width else tuple(size_hw or (224, 224))

    def measure() -> float:
        batch = np.zeros((images, h, w, spec.channels), np.float32)
        predict.scores(model, batch)  # warm: the trace, and a first call at this batch size is several times slower
        times = []
        for _ in range(2):
            start = time.perf_counter()
            predict.scores(model, batch)
            times.append(time.perf_counter() - start)
        return min(times) / images

    return per_model(model, ("attribution.pass_seconds", h, w), measure, limit=4)
