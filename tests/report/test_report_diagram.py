"""The block diagram's own layout: rows by longest path, no box on another, every arrow drawn, columns that wrap."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import keras

from vizcore.models.summary import Diagram, DiagramNode, architecture_diagram
from vizcore.report import diagram


def _chain(n: int) -> Diagram:
    nodes = tuple(DiagramNode(f"n{i}", "Conv2D → 8x8x4", "#cfe2ff") for i in range(n))
    return Diagram(nodes, tuple((f"n{i}", f"n{i + 1}") for i in range(n - 1)))


def _overlap(a, b) -> bool:
    (ax, ay), (bx, by) = a, b
    return ax < bx + diagram.BOX_W and bx < ax + diagram.BOX_W and ay < by + diagram.BOX_H and by < ay + diagram.BOX_H


def test_a_branch_sits_beside_its_twin_and_the_merge_below_both():
    nodes = tuple(DiagramNode(n, "x", "#fff") for n in ("input", "a", "b", "skip", "add", "out"))
    edges = (("input", "a"), ("a", "b"), ("input", "skip"), ("b", "add"), ("skip", "add"), ("add", "out"))
    where, width, height = diagram.layout(Diagram(nodes, edges))
    assert where["a"][1] == where["skip"][1] < where["b"][1] < where["add"][1] < where["out"][1]  # rows 1, 1, 2, 3, 4
    assert where["a"][0] != where["skip"][0]
    names = list(where)
    assert not any(_overlap(where[p], where[q]) for i, p in enumerate(names) for q in names[i + 1 :])
    assert max(x for x, _ in where.values()) + diagram.BOX_W <= width and max(y for _, y in where.values()) < height


def test_a_long_chain_wraps_into_columns_of_at_most_rows():
    where, width, height = diagram.layout(_chain(30))
    columns = sorted({x for x, _ in where.values()})
    assert len(columns) == 3  # 12 + 12 + 6
    assert height == 2 * diagram.MARGIN + diagram.ROWS * (diagram.BOX_H + diagram.GAP_Y)
    assert where["n12"][0] == columns[1] and where["n12"][1] == where["n0"][1]  # the 13th starts column two at the top


class _Svg(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rects, self.paths, self.texts = 0, 0, []

    def handle_starttag(self, tag, attrs):
        self.rects += tag == "rect"
        self.paths += tag == "path" and dict(attrs).get("d", "").startswith("M") and "z" not in dict(attrs)["d"]

    def handle_data(self, data):
        self.texts.append(data)


def test_mobilenet_by_block_draws_every_block_and_link_with_names_escaped():
    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None)
    drawing = architecture_diagram(model, by_block=True)
    markup = diagram.svg(drawing, title="a < b & c")
    parsed = _Svg()
    parsed.feed(markup)
    assert parsed.rects == len(drawing.nodes) == 20  # the input and 19 blocks
    assert parsed.paths == len(drawing.edges)
    assert "a < b & c" in parsed.texts and "&lt;" in markup
    assert len(set(re.findall(r'<rect x="([\d.]+)"', markup))) == 2  # 20 rows: two columns
