"""Click-to-explore handlers: a Plotly selection (as st.plotly_chart returns it) -> cell, box, patch, tile."""

from __future__ import annotations

import numpy as np
import pytest

from vizcore.present import figures, render


def _click(x, y) -> dict:
    return {
        "selection": {
            "points": [{"curve_number": 1, "point_index": 0, "x": x, "y": y}],
            "point_indices": [0],
            "box": [],
            "lasso": [],
        }
    }


def _drag(x0, x1, y0, y1) -> dict:
    return {
        "selection": {
            "points": [],
            "point_indices": [],
            "box": [{"xref": "x", "yref": "y", "x": [x0, x1], "y": [y0, y1]}],
            "lasso": [],
        }
    }


def test_cell_is_row_column_rounded_and_clipped():
    assert figures.selected_cell(_click(3, 5), (8, 8)) == (5, 3)
    assert figures.selected_cell(_click(2.6, 0.4), (8, 8)) == (0, 3)
    assert figures.selected_cell(_click(-2, 40), (8, 6)) == (7, 0)
    assert figures.selected_cell(_click(1, 1)["selection"], (4, 4)) == (1, 1)  # the selection itself works too
    for empty in (None, {}, {"selection": {"points": [], "box": [], "lasso": []}}):
        assert figures.selected_cell(empty, (4, 4)) is None


def test_box_covers_the_pixels_whose_centres_are_inside():
    assert figures.selected_box(_drag(2.3, 7.8, 9.1, 1.2)) == (9.1, 2.3, 1.2, 7.8)
    assert figures.selected_patch(_drag(2.3, 7.8, 9.1, 1.2), (12, 12), 4) == (2, 3, 10, 8)
    assert figures.selected_patch(_drag(-5, 3.0, -1, 30), (12, 10), 4) == (0, 0, 12, 4)
    assert figures.selected_patch(_drag(2.2, 2.8, 2.2, 2.8), (12, 12), 4) is None  # between pixel centres


def test_click_gives_a_patch_around_it_inside_the_image():
    assert figures.selected_patch(_click(6, 5), (12, 12), 4) == (3, 4, 7, 8)
    assert figures.selected_patch(_click(0, 11), (12, 12), 4) == (8, 0, 12, 4)  # pushed inside at the corner
    assert figures.selected_patch(_click(1, 1), (3, 3), 8) == (0, 0, 3, 3)  # a patch larger than the image: the image
    assert figures.selected_patch(None, (12, 12), 4) is None


@pytest.mark.parametrize("tiles, columns", [(10, None), (16, None), (7, 3), (1, None)])
def test_tile_of_a_click_on_a_montage(tiles, columns):
    rng = np.random.default_rng(tiles)
    side, pad = 5, 1
    grid = render.montage(rng.integers(0, 255, (tiles, side, side, 3), dtype=np.uint8), columns=columns, pad=pad)
    cols = columns or int(np.ceil(np.sqrt(tiles)))
    ys, xs = figures.tile_points(grid.shape[:2], tiles, columns=columns, pad=pad)
    for i in range(tiles):
        r, c = divmod(i, cols)
        top, left = r * (side + pad), c * (side + pad)  # the tile's pixels, from montage's layout
        assert top <= ys[i] <= top + side - 1 and left <= xs[i] <= left + side - 1
        for y, x in ((top, left), (top + side - 1, left + side - 1), (ys[i], xs[i])):
            assert figures.selected_tile(_click(x, y), grid.shape[:2], tiles, columns=columns, pad=pad) == i
    rows = int(np.ceil(tiles / cols))
    if rows * cols > tiles:  # an empty place at the end of the last row is no tile
        assert (
            figures.selected_tile(
                _click(grid.shape[1] - 1, grid.shape[0] - 1), grid.shape[:2], tiles, columns=columns, pad=pad
            )
            is None
        )


def test_selectable_figure_has_the_points_and_select_on_click():
    fig = figures.image_figure(np.zeros((6, 8, 3), np.uint8), "t", points=figures.cell_points(6, 8, 2))
    cells = fig.data[-1]
    assert sorted(zip(cells.y, cells.x)) == [(y, x) for y in (0, 2, 4) for x in (0, 2, 4, 6)]
    assert fig.layout.clickmode == "event+select"
    assert fig.data[0].source.startswith("data:image/png;base64,")


def test_embedding_rows_map_each_trace_point_back_to_its_row():
    """Checked against the figure itself: each trace's customdata holds its points' row indices."""
    groups = ["b", "a", "b", "c", "a", "b"]
    fig = figures.embedding_figure(np.arange(12, dtype=float).reshape(6, 2), groups, [str(i) for i in range(6)], "t")
    points = [{"curve_number": c, "point_index": i} for c, trace in enumerate(fig.data) for i in range(len(trace.x))]
    want = [int(row) for trace in fig.data for row in trace.customdata]
    assert figures.embedding_rows(groups, {"selection": {"points": points}}) == want
    assert sorted(want) == list(range(6)) and [fig.data[c].name for c in range(3)] == ["b", "a", "c"]
    assert figures.embedding_rows(groups, None) == [] and fig.layout.dragmode == "zoom"
