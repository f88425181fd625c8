"""``report.json``: the report's numbers for machines, plain JSON (NaN and infinity as null).

Keys: ``identity``; ``evaluation`` (``accuracy``, ``per_class`` [{class, precision, recall, f1, support}],
``confusion`` rows true, columns predicted; null when the dataset's classes are not the model's);
``robustness`` (``attack``, ``epsilons``, ``accuracy``, ...); ``faithfulness`` (per method: deletion and
insertion AUC of each explained image, and their means); ``training``; ``sections`` (id, title, seconds).

Example:
    >>> numbers = json.loads(to_json(report))
    >>> numbers["evaluation"]["accuracy"], numbers["robustness"]["epsilons"][:2]
    (0.981, [0.0, 0.05])
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from vizcore.report.content import Report

FORMAT = 1  # bumped when a key changes meaning


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists, tuples as lists, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def as_dict(report: Report) -> dict[str, Any]:
    """The JSON document as a dict of plain values."""
    return plain(
        {
            "format": FORMAT,
            "identity": report.identity,
            **report.numbers,
            "sections": [{"id": s.id, "title": s.title, "seconds": round(s.seconds, 2)} for s in report.sections],
            "seconds": round(report.seconds, 2),
        }
    )


def to_json(report: Report) -> str:
    """The JSON document as text (strict JSON: no NaN)."""
    return json.dumps(as_dict(report), indent=1, allow_nan=False, ensure_ascii=False)
