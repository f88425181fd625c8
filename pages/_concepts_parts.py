"""Pieces of the Concepts page: the images it runs on, costly runs behind a Run button, crop tiles, TCAV results."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import streamlit as st

from pages import _runner
from vizcore import attribution, concepts
from vizcore.present import figures, render

T = TypeVar("T")
TILE = 72  # px of a crop in the atlas


@dataclass(frozen=True, eq=False)
class Images:
    """A dataset prepared for the working model, with the model's class of every image."""

    x: np.ndarray  # float32 (N, H, W, C) in the model's range
    display: np.ndarray  # uint8 (N, H, W, C), what the model sees
    labels: np.ndarray  # int64 (N,) the model's class index of each image
    by_prediction: bool  # True: the dataset's classes are not the model's, so ``labels`` are its predictions
    index: np.ndarray  # each image's index in the whole dataset (captions)
    key: str  # names the images in cache keys


def run(
    key: str, inputs: Hashable, what: str, cost: str, seconds: float, compute: Callable[[attribution.Progress], T]
) -> T | None:
    """Costly work from a Run button, with its cost, a progress bar and Cancel (``_runner.run``); the result is kept
    until ``inputs`` change. Returns the result, or None while it waits for the button (or was cancelled)."""
    ask = _runner.Ask(what, f"{what}: {cost}; {_runner.about(seconds)}.", primary=True, help=None)
    return _runner.run(key, inputs, compute, ask=ask)


def crop_tile(display_hwc: np.ndarray, box, side: int = TILE) -> np.ndarray:
    """One crop (x0, y0, x1, y1) of a uint8 image, as an RGB tile ``side`` px square."""
    x0, y0, x1, y1 = box
    return render.resize(render.to_rgb(display_hwc[y0:y1, x0:x1]), (side, side), smooth=x1 - x0 >= side)


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _table(labels, results: list[concepts.Tcav]) -> list[list]:
    return [
        [
            label,
            round(t.score, 4),
            round(float(np.mean(t.random_scores)), 4),
            round(float(np.std(t.random_scores)), 4),
            float(f"{t.p_value:.3g}"),
            t.significant,
            round(t.accuracy, 3),
            " ".join(f"{s:.3f}" for s in t.scores),
            " ".join(f"{s:.3f}" for s in t.random_scores),
        ]
        for label, t in zip(labels, results)
    ]


HEADER = [
    "",
    "TCAV score",
    "random mean",
    "random sd",
    "p-value",
    "significant",
    "CAV accuracy",
    "scores per run",
    "random scores per run",
]


def tcav_results(what: str, labels, results: list[concepts.Tcav], concept: str, key: str, stem: str) -> None:
    """TCAV results per class or per layer: the scores beside the random ones, a sentence each, a table and a CSV."""
    st.plotly_chart(
        figures.tcav_figure(
            labels,
            [t.scores for t in results],
            [t.random_scores for t in results],
            [t.p_value for t in results],
            f"TCAV of '{concept}' per {what}, beside random CAVs",
        ),
        key=f"{key}.figure",
    )
    for label, t in zip(labels, results):
        way = "more" if t.score > np.mean(t.random_scores) else "less"
        verdict = (
            f"significant (p = {t.p_value:.2g} < {concepts.SIGNIFICANCE}): the score rises along the concept {way} "
            "often than along random directions"
            if t.significant
            else f"not significant (p = {t.p_value:.2g}): within what random directions give"
        )
        st.markdown(
            f"- **{label}**: TCAV {t.score:.2f} against random {np.mean(t.random_scores):.2f} "
            f"± {np.std(t.random_scores):.2f}, {verdict}"
        )
    rows = _table(labels, results)
    st.dataframe({h or what: [r[i] for r in rows] for i, h in enumerate(HEADER)}, hide_index=True, key=f"{key}.table")
    st.download_button(
        f"TCAV per {what} (CSV)",
        csv_bytes([what, *HEADER[1:]], rows),
        f"{stem}.csv",
        "text/csv",
        key=f"{key}.csv",
    )
