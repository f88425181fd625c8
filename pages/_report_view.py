"""'Download report' on the Model page (``model_page``) and in the Dataset view (``dataset_view``).

The report is ``vizcore.report.build``'s, the same as ``python -m vizcore.report`` writes: built behind a button,
with progress and Cancel, in one of the server's heavy slots, and kept until the model or the images change.
The HTML and JSON are made when a download button is clicked. The profile bounds the work
(``report_images``, ``report_budget``: the hosted profile uses fewer images and a light budget).
"""

from __future__ import annotations

import functools

import streamlit as st

from pages import _cache, _runner, _working
from vizcore import models, report
from vizcore.data.datasets import ImageDataset

DATASETS = {"mnist_sample": "Bundled MNIST digits", "shapes": "Generated shapes", "photos": "Bundled colour photos"}
LIMITS = _working.LIMITS


def _html(built: report.Report) -> bytes:
    return report.to_html(built).encode("utf-8")


def _json(built: report.Report) -> bytes:
    return report.to_json(built).encode("utf-8")


def _default_dataset(loaded: models.LoadedModel) -> str:
    """The bundled dataset a model was trained on, else digits for one channel, shapes or photos by size."""
    trained_on = (loaded.card or {}).get("dataset_id")
    if trained_on in DATASETS:
        return trained_on
    spec = loaded.spec
    if spec.channels == 1:
        return "mnist_sample"
    return "photos" if (spec.height or 224) > 96 else "shapes"


def model_page(loaded: models.LoadedModel) -> None:
    """The Model page's 'Download report': pick a bundled dataset, then ``offer``."""
    with st.expander("📄 Download report", expanded=False):
        st.caption(
            "One HTML file to hand out or attach to a review (it opens offline and prints to PDF), and its numbers "
            "as JSON: what the model is, how well it does on a dataset, what it looks at, how robust it is."
        )
        names = list(DATASETS)
        name = st.selectbox(
            "Dataset",
            names,
            index=names.index(_default_dataset(loaded)),
            format_func=DATASETS.get,
            key="model.report_dataset",
        )
        dataset = _cache.sample_photos() if name == "photos" else _cache.dataset(name)
        offer(loaded, dataset, name=name, limit=LIMITS.report_images, key="model.report")


def dataset_view(loaded: models.LoadedModel, dataset: ImageDataset, name: str, limit: int) -> None:
    """The Dataset view's 'Download report' on the dataset and limit it shows."""
    with st.expander("📄 Download report on these images", expanded=False):
        offer(loaded, dataset, name=name, limit=min(limit, LIMITS.report_images), key="dataset.report")


def offer(loaded: models.LoadedModel, dataset: ImageDataset, *, name: str, limit: int, key: str) -> None:
    """A Build button (with progress and Cancel), then the HTML and JSON downloads of the report it built."""
    inputs = (loaded.key, loaded.preprocess, loaded.class_names, name, len(dataset), limit, LIMITS.report_budget)
    note = (
        f"On up to {limit:,} images of {DATASETS.get(name, name)}: classifying them, explaining, attacking "
        "and synthesizing filter images takes about a minute."
    )
    built = _runner.run(
        key,
        inputs,
        lambda sink: report.build(
            loaded, dataset, limit=limit, on_progress=sink, name=name, budget=report.BUDGETS[LIMITS.report_budget]
        ),
        ask=_runner.Ask("the report", note, label="Build report", key=f"{key}.build", primary=True, help=None),
    )
    if built is None:
        return
    numbers = built.numbers
    evaluated = numbers.get("evaluation")
    st.success(
        f"Report built in {built.seconds:.0f} s on {built.identity['dataset']['description']}"
        + (f": accuracy {evaluated['accuracy']:.1%}." if evaluated else ".")
    )
    stem = f"{loaded.model.name}_{name.replace(':', '_')}_report"
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download report (HTML)",
        functools.partial(_html, built),
        f"{stem}.html",
        "text/html",
        key=f"{key}.html",
        type="primary",
    )  # made on click only
    c2.download_button(
        "Download numbers (JSON)",
        functools.partial(_json, built),
        f"{stem}.json",
        "application/json",
        key=f"{key}.json",
    )
