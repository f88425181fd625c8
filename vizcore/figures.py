"""Every Plotly figure of the app, in one place (``*_figure`` functions; NumPy in, Figure out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

DIVERGING = "RdBu_r"
_MARGIN = dict(l=10, r=10, t=40, b=10)


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, margin=_MARGIN, template="plotly_white")
    return fig


def matrix_figure(values_hw: np.ndarray, title: str, *, diverging: bool = True, height: int = 320, fmt: str = ".4f") -> go.Figure:
    """A small matrix as a heatmap with every value on hover (kernels, feature maps, patches)."""
    values_hw = np.asarray(values_hw, dtype=np.float64)
    bound = float(np.max(np.abs(values_hw))) or 1.0
    kwargs = dict(zmid=0.0, zmin=-bound, zmax=bound, colorscale=DIVERGING) if diverging else dict(colorscale="Viridis")
    fig = go.Figure(go.Heatmap(z=values_hw, hovertemplate=f"row %{{y}}, col %{{x}}<br>value %{{z:{fmt}}}<extra></extra>", **kwargs))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    return _layout(fig, title, height)


def histogram_figure(counts: np.ndarray, edges: np.ndarray, title: str, *, x_title: str = "weight") -> go.Figure:
    """Bars from precomputed histogram counts and bin edges."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_color="#3b5bdb",
                           hovertemplate="%{x:.4f}: %{y}<extra></extra>"))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="count")
    return _layout(fig, title, 260)


def bar_figure(labels: Sequence[str], values: Sequence[float], title: str, *, flagged: Sequence[bool] | None = None,
               y_title: str = "", height: int = 260, horizontal: bool = False) -> go.Figure:
    """Bars, with flagged ones (dead filters, the target class) in a warning colour."""
    colours = ["#e8590c" if f else "#3b5bdb" for f in (flagged if flagged is not None else [False] * len(values))]
    bar = go.Bar(y=list(labels), x=list(values), orientation="h", marker_color=colours) if horizontal else go.Bar(
        x=list(labels), y=list(values), marker_color=colours)
    fig = go.Figure(bar)
    if horizontal:
        fig.update_yaxes(autorange="reversed", type="category")
        fig.update_xaxes(title=y_title)
    else:
        fig.update_xaxes(type="category")
        fig.update_yaxes(title=y_title)
    return _layout(fig, title, height)


def probabilities_figure(class_names: Sequence[str], probs: np.ndarray, *, k: int = 5, highlight: int | None = None) -> go.Figure:
    """Top-k predicted classes with their probabilities."""
    order = np.argsort(probs)[::-1][:k]
    fig = bar_figure([class_names[i] for i in order], [float(probs[i]) for i in order], "Top predictions",
                     flagged=[i == highlight for i in order], y_title="probability", horizontal=True, height=60 + 30 * len(order))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig


def curves_figure(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, *, x_title: str, y_title: str,
                  height: int = 300, y_range: tuple[float, float] | None = None) -> go.Figure:
    """Named line series ``{name: (x, y)}`` on one plot (training curves, deletion/insertion)."""
    fig = go.Figure()
    for name, (x, y) in series.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", name=name))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _layout(fig, title, height)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """A confusion matrix (rows: true class, columns: predicted), counts on hover and in cells."""
    names = list(class_names)
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true", type="category")
    fig.update_xaxes(title="predicted", type="category")
    return _layout(fig, "Confusion matrix", 420)


def embedding_figure(xy: np.ndarray, groups: Sequence[str], hover: Sequence[str], title: str) -> go.Figure:
    """2-D points (WebGL, one trace per group so the legend toggles them); ``customdata`` is each point's row index."""
    groups = np.asarray(groups)
    fig = go.Figure()
    for name in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == name)
        fig.add_trace(go.Scattergl(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=str(name), customdata=idx,
                                   text=[hover[i] for i in idx], hovertemplate="%{text}<extra></extra>",
                                   marker=dict(size=5, opacity=0.75)))
    fig.update_layout(dragmode="lasso", legend=dict(itemsizing="constant"))
    return _layout(fig, title, 520)
