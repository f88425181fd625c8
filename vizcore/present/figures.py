"""Every Plotly figure of the app, in one place (``*_figure`` functions; NumPy in, Figure out)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from vizcore.present import render

DIVERGING = "RdBu_r"
_MARGIN = dict(l=10, r=10, t=40, b=10)


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left"), height=height, margin=_MARGIN, template="plotly_white"
    )
    return fig


def matrix_figure(
    values_hw: np.ndarray, title: str, *, diverging: bool = True, height: int = 320, fmt: str = ".4f"
) -> go.Figure:
    """A small matrix as a heatmap with every value on hover (kernels, feature maps, patches)."""
    values_hw = np.asarray(values_hw, dtype=np.float64)
    bound = float(np.max(np.abs(values_hw))) or 1.0
    kwargs = dict(zmid=0.0, zmin=-bound, zmax=bound, colorscale=DIVERGING) if diverging else dict(colorscale="Viridis")
    fig = go.Figure(
        go.Heatmap(z=values_hw, hovertemplate=f"row %{{y}}, col %{{x}}<br>value %{{z:{fmt}}}<extra></extra>", **kwargs)
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    return _layout(fig, title, height)


def histogram_figure(counts: np.ndarray, edges: np.ndarray, title: str, *, x_title: str = "weight") -> go.Figure:
    """Bars from precomputed histogram counts and bin edges."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=counts,
            width=np.diff(edges),
            marker_color="#3b5bdb",
            hovertemplate="%{x:.4f}: %{y}<extra></extra>",
        )
    )
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="count")
    return _layout(fig, title, 260)


def bar_figure(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    *,
    flagged: Sequence[bool] | None = None,
    y_title: str = "",
    height: int = 260,
    horizontal: bool = False,
) -> go.Figure:
    """Bars, with flagged ones (dead filters, the target class) in a warning colour."""
    colours = ["#e8590c" if f else "#3b5bdb" for f in (flagged if flagged is not None else [False] * len(values))]
    bar = (
        go.Bar(y=list(labels), x=list(values), orientation="h", marker_color=colours)
        if horizontal
        else go.Bar(x=list(labels), y=list(values), marker_color=colours)
    )
    fig = go.Figure(bar)
    if horizontal:
        fig.update_yaxes(autorange="reversed", type="category")
        fig.update_xaxes(title=y_title)
    else:
        fig.update_xaxes(type="category")
        fig.update_yaxes(title=y_title)
    return _layout(fig, title, height)


def probabilities_figure(
    class_names: Sequence[str], probs: np.ndarray, *, k: int = 5, highlight: int | None = None
) -> go.Figure:
    """Top-k predicted classes with their probabilities."""
    order = np.argsort(probs)[::-1][:k]
    fig = bar_figure(
        [class_names[i] for i in order],
        [float(probs[i]) for i in order],
        "Top predictions",
        flagged=[i == highlight for i in order],
        y_title="probability",
        horizontal=True,
        height=60 + 30 * len(order),
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig


def curves_figure(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    *,
    x_title: str,
    y_title: str,
    height: int = 300,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
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
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=names,
            y=names,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true", type="category")
    fig.update_xaxes(title="predicted", type="category")
    return _layout(fig, "Confusion matrix", 420)


def _group_rows(groups: Sequence[str]) -> list[np.ndarray]:
    """The row indices of each group, in order of first appearance: one trace each in ``embedding_figure``."""
    groups = np.asarray(groups)
    return [np.flatnonzero(groups == name) for name in dict.fromkeys(groups.tolist())]


def embedding_figure(xy: np.ndarray, groups: Sequence[str], hover: Sequence[str], title: str) -> go.Figure:
    """2-D points (WebGL, one trace per group so the legend toggles them); ``customdata`` is each point's row index.

    It opens in zoom mode: Streamlit lets a click select a point only outside the lasso and box
    modes, which stay in the plot's toolbar.
    """
    fig = go.Figure()
    for idx in _group_rows(groups):
        fig.add_trace(
            go.Scattergl(
                x=xy[idx, 0],
                y=xy[idx, 1],
                mode="markers",
                name=str(np.asarray(groups)[idx[0]]),
                customdata=idx,
                text=[hover[i] for i in idx],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=5, opacity=0.75),
            )
        )
    fig.update_layout(dragmode="zoom", legend=dict(itemsizing="constant"))
    return _layout(fig, title, 520)


def embedding_rows(groups: Sequence[str], event) -> list[int]:
    """The row indices of the points an ``embedding_figure`` selection event picked (click, box or lasso)."""
    traces = _group_rows(groups)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    return [int(traces[p["curve_number"]][p["point_index"]]) for p in points]


# --------------------------------------------------------------------------- click to explore

SELECT_MODES = ("points", "box")  # for st.plotly_chart(..., on_select="rerun", selection_mode=SELECT_MODES)


def selectable(fig: go.Figure, ys, xs, *, box: bool = False) -> go.Figure:
    """Make a heatmap or image clickable: invisible points at (``ys``, ``xs``) that a click selects.

    Plotly selects points of scatter traces only, so a click on a heatmap or image selects the
    nearest of these. ``box`` starts in box-select mode (drag a box) instead of zoom.
    """
    hidden = dict(marker=dict(opacity=0))
    fig.add_trace(
        go.Scatter(
            x=np.ravel(xs),
            y=np.ravel(ys),
            mode="markers",
            marker=dict(size=8, opacity=0),
            selected=hidden,
            unselected=hidden,
            hoverinfo="none",
            showlegend=False,
            name="cells",
        )
    )  # "skip" would also drop clicks
    fig.update_layout(clickmode="event+select", dragmode="select" if box else "zoom")
    return fig


def cell_points(rows: int, cols: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (ys, xs) of a rows x cols grid, every ``step`` cells."""
    ys, xs = np.mgrid[0:rows:step, 0:cols:step]
    return ys.ravel(), xs.ravel()


def tile_points(
    grid_shape_hw: tuple[int, int], tiles: int, *, columns: int | None = None, pad: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The centres (ys, xs) of the tiles of a ``render.montage`` grid image, row-major."""
    columns = columns or int(np.ceil(np.sqrt(tiles)))
    rows = int(np.ceil(tiles / columns))
    pitch_y, pitch_x = (grid_shape_hw[0] + pad) / rows, (grid_shape_hw[1] + pad) / columns
    r, c = np.divmod(np.arange(tiles), columns)
    return (r + 0.5) * pitch_y - 0.5 - pad / 2, (c + 0.5) * pitch_x - 0.5 - pad / 2


def image_figure(image_hwc: np.ndarray, title: str, *, height: int = 360, points=None, box: bool = False) -> go.Figure:
    """A uint8 image (H, W[, 1 or 3]) as a Plotly image (sent as PNG), pixel (row, column) at (y, x).

    ``points`` (ys, xs) makes it clickable (``selectable``); e.g. ``cell_points(h, w, 4)``.
    """
    rgb = np.asarray(image_hwc, np.uint8)
    if rgb.ndim == 3 and rgb.shape[-1] == 1:
        rgb = rgb[..., 0]
    h, w = rgb.shape[:2]
    source = "data:image/png;base64," + base64.b64encode(render.to_png(rgb)).decode("ascii")
    fig = go.Figure(go.Image(source=source, hoverinfo="skip"))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, range=[h - 0.5, -0.5], scaleanchor="x")
    fig = _layout(fig, title, height)
    return selectable(fig, *points, box=box) if points is not None else fig


def _selection(event) -> dict:
    """The selection part of what ``st.plotly_chart(on_select=...)`` returned (or the selection itself)."""
    if not event:
        return {}
    return event.get("selection", event) if hasattr(event, "get") else {}


def selected_cell(event, shape_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The (row, column) of the last clicked point, rounded and clipped to ``shape_hw``; None without a click."""
    points = _selection(event).get("points") or []
    if not points or "x" not in points[-1] or "y" not in points[-1]:
        return None
    h, w = shape_hw
    return int(np.clip(round(float(points[-1]["y"])), 0, h - 1)), int(np.clip(round(float(points[-1]["x"])), 0, w - 1))


def selected_box(event) -> tuple[float, float, float, float] | None:
    """The last dragged box as (y0, x0, y1, x1) in data coordinates (unordered); None without one."""
    boxes = _selection(event).get("box") or []
    if not boxes or len(boxes[-1].get("x", ())) < 2 or len(boxes[-1].get("y", ())) < 2:
        return None
    (x0, x1), (y0, y1) = boxes[-1]["x"][:2], boxes[-1]["y"][:2]
    return float(y0), float(x0), float(y1), float(x1)


def selected_patch(event, shape_hw: tuple[int, int], patch: int) -> tuple[int, int, int, int] | None:
    """The pixels a selection covers, (y0, x0, y1, x1) half-open: a dragged box, else a ``patch`` square
    around a click."""
    h, w = shape_hw
    box = selected_box(event)
    if box is not None:
        y0, x0, y1, x1 = box
        y0, y1 = sorted((y0, y1))
        x0, x1 = sorted((x0, x1))
        out = (
            int(np.clip(np.ceil(y0), 0, h)),
            int(np.clip(np.ceil(x0), 0, w)),  # the pixels whose centres are inside
            int(np.clip(np.floor(y1) + 1, 0, h)),
            int(np.clip(np.floor(x1) + 1, 0, w)),
        )
        return out if out[2] > out[0] and out[3] > out[1] else None
    cell = selected_cell(event, shape_hw)
    if cell is None:
        return None
    patch = max(1, min(patch, h, w))
    y0 = int(np.clip(cell[0] - patch // 2, 0, h - patch))
    x0 = int(np.clip(cell[1] - patch // 2, 0, w - patch))
    return y0, x0, y0 + patch, x0 + patch


def selected_tile(
    event, grid_shape_hw: tuple[int, int], tiles: int, *, columns: int | None = None, pad: int = 1
) -> int | None:
    """The index of the tile clicked on a ``render.montage`` grid image (row-major); None off the tiles."""
    cell = selected_cell(event, grid_shape_hw)
    if cell is None or tiles < 1:
        return None
    columns = columns or int(np.ceil(np.sqrt(tiles)))
    rows = int(np.ceil(tiles / columns))
    pitch_y = (grid_shape_hw[0] + pad) / rows
    pitch_x = (grid_shape_hw[1] + pad) / columns
    index = int(cell[0] // pitch_y) * columns + int(cell[1] // pitch_x)
    return index if index < tiles else None


def tcav_figure(
    labels: Sequence[str],
    scores: Sequence[Sequence[float]],
    random_scores: Sequence[Sequence[float]],
    p_values: Sequence[float],
    title: str,
    *,
    level: float = 0.05,
) -> go.Figure:
    """TCAV scores per run (one group per class or layer) beside the random-against-random scores, every run a point.

    A group whose t-test gives p < ``level`` is marked with a star and its p-value under its label.
    """
    names = [f"{label}{' ★' if p < level else ''}<br>p={p:.2g}" for label, p in zip(labels, p_values)]
    fig = go.Figure()
    for values, name, colour in ((scores, "concept", "#3b5bdb"), (random_scores, "random", "#adb5bd")):
        xs = [n for n, v in zip(names, values) for _ in v]
        fig.add_trace(
            go.Box(
                x=xs,
                y=[float(s) for v in values for s in v],
                name=name,
                marker_color=colour,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                boxmean=True,
                offsetgroup=name,
                hovertemplate="%{x}: %{y:.2f}<extra>" + name + "</extra>",
            )
        )
    fig.add_hline(y=0.5, line_dash="dot", line_color="#868e96")
    fig.update_layout(boxmode="group", legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(title="TCAV score", range=[-0.05, 1.05])
    fig.update_xaxes(type="category")
    return _layout(fig, title, 340)
