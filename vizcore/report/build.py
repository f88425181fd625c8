"""Build a report (``build``) and write it as ``report.html`` and ``report.json`` (``write``).

``build`` computes the sections in an order where each can use what came before (the evaluation picks
the explained images, the robustness sweep uses the model's predictions; the summary, written last, quotes
them all), and reports progress after each: ``on_progress(done, total, what)``; a True return cancels
(``ReportCancelled``). ``Budget`` bounds the work: how many images are explained, attacked, how many
filters are synthesized and for how many steps.

Example:
    >>> rep = build(models.open_bundled("mnist_cnn"), datasets.load_mnist_sample(), limit=1000)
    >>> write(rep, "out")
    (PosixPath('out/report.html'), PosixPath('out/report.json'))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vizcore.data.datasets import ImageDataset
from vizcore.errors import ConvLensError, ReportError
from vizcore.models import LoadedModel
from vizcore.models.summary import ModelSummary, summarize
from vizcore.precompute.store import write_atomic
from vizcore.precompute.view import DataView
from vizcore.report import overview, probes, sections
from vizcore.report.content import SECTION_IDS, Report, Section
from vizcore.report.html import to_html
from vizcore.report.numbers import to_json

Progress = Callable[[int, int, str], bool | None]
HTML_NAME, JSON_NAME = "report.html", "report.json"


class ReportCancelled(ConvLensError):
    """``on_progress`` asked to stop."""


@dataclass(frozen=True)
class Budget:
    """How much work one report does beyond the dataset passes.

    Attributes:
        explained: correct and wrong images explained, each.
        filters, filters_large: gradient-ascent images per layer (inputs up to 96 px / larger).
        steps_large: gradient-ascent steps for a large input (a small one takes its default settings' steps).
        example_filters, example_k: filters whose top dataset images are shown, and images each.
        robust_images: images attacked in the accuracy-against-ε sweep (evenly spaced), at most.
        epsilons: the sweep's ε, fractions of the input range (0 included: the clean accuracy).
        curve_steps: steps of each deletion and insertion curve.
        confusions, thumbnails: confusion cells shown, and images each.
    """

    explained: int = 3
    filters: int = 16
    filters_large: int = 6
    steps_large: int = 32
    example_filters: int = 4
    example_k: int = 6
    robust_images: int = 5000
    epsilons: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    curve_steps: int = 20
    confusions: int = 4
    thumbnails: int = 6


BUDGETS: Mapping[str, Budget] = MappingProxyType(
    {
        "full": Budget(),
        "light": Budget(explained=2, filters=8, filters_large=4, steps_large=24, robust_images=500, curve_steps=10),
    }
)  # the profile's ``report_budget`` names one


@dataclass(eq=False)
class Context:
    """What the section builders share: the model, its images, the budget, and the results so far."""

    loaded: LoadedModel
    images: DataView  # the Dataset view's images, labels and results
    summary: ModelSummary
    budget: Budget
    tick: Callable[[], None]  # raises ReportCancelled when asked to stop
    results: dict[str, Any] = field(default_factory=dict)  # 'evaluation', 'robustness', ...
    numbers: dict[str, Any] = field(default_factory=dict)  # what report.json holds

    def dataset(self, kind: str, **params):
        """A Dataset view result on the report's images ('report'; 'examples' with ``layer=``): stored or computed."""
        return self.images.get(kind, **params)


STEPS: tuple[tuple[str, Callable[[Context], Section], str], ...] = (
    ("evaluation", sections.evaluation, "Classifying the images"),
    ("explanations", probes.explanations, "Explaining correct and wrong images"),
    ("kernels", probes.kernels_section, "Drawing the first layer's kernels"),
    ("features", probes.features, "Synthesizing filter images and finding their top images"),
    ("robustness", probes.robustness, "Attacking the images (FGSM) at each ε"),
    ("training", sections.training, "Reading the training history"),
    ("architecture", sections.architecture, "Drawing the architecture"),
    ("limitations", sections.limitations, "Writing the limitations"),
    ("summary", overview.summary, "Writing the summary"),
)  # (id, builder, what the progress says), in computing order; the report shows SECTION_IDS' order


def build(
    loaded: LoadedModel,
    dataset: ImageDataset,
    *,
    limit: int | None = None,
    on_progress: Progress | None = None,
    name: str | None = None,
    budget: Budget | None = None,
    file_sha256: str | None = None,
) -> Report:
    """Build the report of ``loaded`` on ``dataset``.

    Args:
        loaded: the working model.
        dataset: the images; with its classes when they are the model's (matched by name, else by position).
        limit: images at most, as the Dataset view's 'Images (at most)' (None: all that fit in memory).
        on_progress: ``(done, total, what)`` before each step and at the end; True cancels.
        name: the dataset's name in the app ('mnist_sample', 'zip:<sha1>'), which keys precomputed results;
            default ``dataset.name``.
        budget: how much extra work (default ``BUDGETS['full']``).
        file_sha256: the SHA-256 of the model file, when the caller read one (a bundled model's is found here).
    Returns:
        Report with one section per ``SECTION_IDS``.
    Raises:
        ReportError: an empty dataset; ReportCancelled: ``on_progress`` returned True.
    """
    start = time.perf_counter()
    total = len(STEPS) + 1

    at = [0, "Preparing the images"]  # the step under way: (done, what), for ``tick`` too

    def report(done: int, what: str) -> None:
        at[:] = done, what
        tick()

    def tick() -> None:
        if on_progress is not None and on_progress(at[0], total, at[1]):
            raise ReportCancelled("The report was cancelled.")

    if len(dataset) == 0:
        raise ReportError(f"The dataset '{name or dataset.name}' holds no images, so there is nothing to report on.")
    report(0, "Preparing the images")
    images = DataView.open(loaded, dataset, limit, name=name)
    ctx = Context(loaded, images, summarize(loaded.model), budget or BUDGETS["full"], tick)
    ctx.results["file_sha256"] = file_sha256
    built: dict[str, Section] = {}
    for done, (section_id, builder, what) in enumerate(STEPS, 1):
        report(done, what)
        t0 = time.perf_counter()
        section = builder(ctx)
        built[section_id] = Section(section.id, section.title, section.blocks, time.perf_counter() - t0)
    report(total, "Done")
    return Report(
        identity=ctx.numbers.pop("identity"),
        sections=tuple(built[i] for i in SECTION_IDS),
        numbers=ctx.numbers,
        seconds=time.perf_counter() - start,
    )


def writable(folder: str | Path) -> Path:
    """``folder``, made if missing, once it is known that files can be written in it.

    Raises:
        ReportError: it cannot be made, or is not a folder one can write in.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"The folder '{folder}' cannot be made: {err.strerror or err}.") from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ReportError(f"The folder '{folder}' cannot be written: choose another with --out.")
    return folder


def write(report: Report, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``folder`` (made if missing), each atomically.

    Raises:
        ReportError: the folder cannot be made or written.
    """
    folder = writable(folder)
    html_path, json_path = folder / HTML_NAME, folder / JSON_NAME
    page, numbers = to_html(report).encode("utf-8"), to_json(report).encode("utf-8")
    try:
        write_atomic(html_path, page)
        write_atomic(json_path, numbers)
    except OSError as err:
        raise ReportError(f"The report cannot be written to '{folder}': {err.strerror or err}.") from None
    return html_path, json_path
