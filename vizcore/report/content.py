"""What a report holds: sections of plain blocks (text, tables, pictures, figures, an SVG), and its numbers.

The blocks know nothing of HTML: ``vizcore.report.html`` draws them, ``vizcore.report.numbers`` turns the
numbers into ``report.json``. A section is built by one function of ``vizcore.report.sections``.

Example:
    >>> Section("kernels", "Kernels", (Text("32 filters of 3x3."), Picture(gallery_hwc, "conv1, each filter")))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind`` 'p' (plain), 'note' (a quieter aside), 'lead' (the summary's paragraph) or 'h3'."""

    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Items:
    """A bulleted list of sentences."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """Rows of text cells under a header; ``numeric[i]`` right-aligns column i."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: tuple[bool, ...] = ()


@dataclass(frozen=True, eq=False)
class Picture:
    """A uint8 image (H, W) or (H, W, 3), shown ``width`` px wide (None: its own width)."""

    image: np.ndarray
    caption: str = ""
    alt: str = ""
    width: int | None = None


@dataclass(frozen=True, eq=False)
class Gallery:
    """Pictures side by side, wrapping, with one caption under all."""

    pictures: tuple[Picture, ...]
    caption: str = ""


@dataclass(frozen=True, eq=False)
class Plot:
    """A Plotly figure (drawn by the one inlined plotly.js)."""

    figure: go.Figure
    caption: str = ""


@dataclass(frozen=True)
class Svg:
    """Inline SVG markup (the block diagram)."""

    markup: str
    caption: str = ""


@dataclass(frozen=True, eq=False)
class Columns:
    """Blocks side by side on a wide page (one under the other on a narrow one or in print)."""

    blocks: tuple[Text | Items | Table | Picture | Gallery | Plot | Svg, ...]


Block = Text | Items | Table | Picture | Gallery | Plot | Svg | Columns


@dataclass(frozen=True, eq=False)
class Section:
    """One ``<section id=...>`` of the report: its id, title, blocks, and the seconds it took to compute."""

    id: str
    title: str
    blocks: tuple[Block, ...]
    seconds: float = 0.0


SECTION_IDS = (
    "summary",
    "architecture",
    "training",
    "evaluation",
    "explanations",
    "kernels",
    "features",
    "robustness",
    "limitations",
)


@dataclass(frozen=True, eq=False)
class Report:
    """A built report: sections in ``SECTION_IDS`` order and the numbers behind them.

    Attributes:
        identity: model name, key, hashes, parameters, input, classes, dataset, version, date.
        sections: one per id of ``SECTION_IDS``.
        numbers: ``evaluation`` (accuracy, per_class, confusion; None when the dataset's classes are not
            the model's), ``robustness`` (epsilons, accuracy), ``faithfulness`` (per method), ``training``.
        seconds: the whole build, in seconds.
    """

    identity: dict[str, Any]
    sections: tuple[Section, ...]
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)
