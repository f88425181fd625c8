"""One-click report: a self-contained HTML file (and its numbers as JSON) that says what a model is, how well it
does on a dataset, what it looks at, and how robust it is. No Streamlit.

* ``build(loaded, dataset, *, limit=None, on_progress=None) -> Report``: the sections (``content.SECTION_IDS``)
  of a ``LoadedModel`` on an ``ImageDataset``; the dataset results come from the precomputed store when it
  holds them, else from the Dataset view's own functions.
* ``write(report, folder) -> (html_path, json_path)``: ``report.html`` (opens offline: images as data:
  URIs, plotly.js inlined once, print CSS) and ``report.json``, each written atomically.
* ``python -m vizcore.report --model bundled:mnist_cnn --dataset mnist_sample --out DIR [--limit N]``.

Example:
    >>> from vizcore import models, report
    >>> from vizcore.data import datasets
    >>> rep = report.build(models.open_bundled("mnist_cnn"), datasets.load_mnist_sample(), limit=500)
    >>> report.write(rep, "out")[0].name, rep.numbers["evaluation"]["accuracy"]
    ('report.html', 0.984)
"""

from vizcore.errors import ReportError
from vizcore.report.build import BUDGETS, HTML_NAME, JSON_NAME, Budget, ReportCancelled, build, write
from vizcore.report.content import SECTION_IDS, Report, Section
from vizcore.report.html import to_html
from vizcore.report.numbers import as_dict, to_json

__all__ = [
    "BUDGETS",
    "HTML_NAME",
    "JSON_NAME",
    "SECTION_IDS",
    "Budget",
    "Report",
    "ReportCancelled",
    "ReportError",
    "Section",
    "as_dict",
    "build",
    "to_html",
    "to_json",
    "write",
]
