"""What a model file may not say: a hint at its input range, and class names from text.

Example:
    >>> input_hint(model_with_rescaling)
    'raw'
    >>> parse_class_names("0 cat\\n1 dog\\n")
    ('cat', 'dog')
"""

from __future__ import annotations

import re

import keras
import numpy as np

from vizcore.models import graph

RAW_MAX_SCALE = 1 / 50  # a Rescaling that divides by more than 50 expects pixels in 0..255

_NUMBERED = re.compile(r"^\s*(\d+)\s+(\S.*?)\s*$")


def input_hint(model: keras.Model) -> str | None:
    """The ``PREPROCESS_MODES`` key a model's own layers suggest, or None when nothing is known.

    A ``Rescaling`` layer before the first convolution (nested models too) that divides by more
    than 50, such as ``Rescaling(1/255)`` or ``Rescaling(1/127.5, offset=-1)``, means the model
    takes raw 0..255 pixels: 'raw'. A Rescaling after a convolution says nothing about the input.
    """
    for _, layer, _ in graph.iter_layers(model):
        if isinstance(layer, graph.CONV_TYPES):
            return None
        if isinstance(layer, keras.layers.Rescaling):
            scale = np.abs(np.asarray(layer.scale, dtype=np.float64))  # a number, or one per channel
            if scale.size and (scale > 0).all() and (scale <= RAW_MAX_SCALE).all():
                return "raw"
    return None


def parse_class_names(text: str | bytes) -> tuple[str, ...]:
    """Class names from typed or uploaded text: one per line, or comma separated on one line.

    Teachable Machine's ``labels.txt`` lines ("0 cat", "1 dog", numbered 0, 1, 2, ... in order)
    lose their numbers; blank lines and surrounding spaces are dropped.

    Args:
        text: the text, or the bytes of a .txt file (UTF-8, a byte-order mark is ignored).

    Returns:
        The names in order; empty when there are none.

    Example:
        >>> parse_class_names("cat, dog, bird")
        ('cat', 'dog', 'bird')
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    numbered = [_NUMBERED.match(line) for line in lines]
    if lines and all(numbered) and [int(m.group(1)) for m in numbered] == list(range(len(lines))):
        lines = [m.group(2) for m in numbered]
    return tuple(lines)
