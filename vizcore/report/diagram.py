"""The block diagram as inline SVG, laid out here (no Graphviz binary is assumed).

Boxes come from ``vizcore.models.summary.architecture_diagram``, the same boxes and arrows the Model page
draws with Graphviz. Each box sits on the row of its longest path from the input; rows stack downwards
and wrap into a new column after ``ROWS`` rows, so a deep network stays on a page. An arrow between
neighbouring rows is a straight line, a skip down a column bends out to its right, and the jump to the
next column runs down the gap between the columns and comes in from above.

Example:
    >>> svg(models.summary.architecture_diagram(model, by_block=True))[:4]
    '<svg'
"""

from __future__ import annotations

from html import escape

from vizcore.models.summary import Diagram

BOX_W, BOX_H = 200, 38  # px
GAP_X, GAP_Y = 24, 22  # between boxes in a row, between rows
COLUMN_GAP = 56
ROWS = 12  # rows per column
MARGIN = 14  # room above the first row for an arrow that comes from the previous column
NAME_CHARS = 28


def _ranks(diagram: Diagram) -> dict[str, int]:
    """Each node's row: its longest path from a node with no inbound arrow (nodes come in call order)."""
    preds: dict[str, list[str]] = {n.name: [] for n in diagram.nodes}
    for a, b in diagram.edges:
        if a in preds and b in preds:
            preds[b].append(a)
    rank: dict[str, int] = {}
    for node in diagram.nodes:
        rank[node.name] = max((rank[p] + 1 for p in preds[node.name] if p in rank), default=0)
    return rank


def _short(text: str, chars: int = NAME_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def layout(diagram: Diagram) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Top-left corner of every box, and the drawing's width and height, in px."""
    rank = _ranks(diagram)
    rows: dict[int, list[str]] = {}
    for node in diagram.nodes:
        rows.setdefault(rank[node.name], []).append(node.name)
    n_rows = max(rows) + 1 if rows else 1
    columns = [range(c, min(c + ROWS, n_rows)) for c in range(0, n_rows, ROWS)]
    where: dict[str, tuple[float, float]] = {}
    x0 = MARGIN
    for col in columns:
        width = max(len(rows.get(r, ())) for r in col) * (BOX_W + GAP_X) - GAP_X
        for r in col:
            names = rows.get(r, [])
            span = len(names) * (BOX_W + GAP_X) - GAP_X
            left = x0 + (width - span) / 2
            y = MARGIN + (r - col.start) * (BOX_H + GAP_Y)
            for i, name in enumerate(names):
                where[name] = (left + i * (BOX_W + GAP_X), y)
        x0 += width + COLUMN_GAP
    height = MARGIN * 2 + min(n_rows, ROWS) * (BOX_H + GAP_Y)  # a gap below the last row: the way to the next column
    return where, x0 - COLUMN_GAP + MARGIN, height


def _edge(a: tuple[float, float], b: tuple[float, float]) -> str:
    x1, y1 = a[0] + BOX_W / 2, a[1] + BOX_H
    x2, y2 = b[0] + BOX_W / 2, b[1]
    if y2 > y1 and y2 - y1 <= GAP_Y + 1 and abs(x2 - x1) < BOX_W:  # the next row, below: straight
        return f'<path d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2 - 2:.1f}"/>'
    if abs(x2 - x1) < 1 and y2 > y1:  # a skip down the same column: bend out to the right
        x1, y1, x2, y2 = a[0] + BOX_W, a[1] + BOX_H / 2, b[0] + BOX_W, b[1] + BOX_H / 2
        bend = x1 + 30 + 0.15 * (y2 - y1) ** 0.8
        return f'<path d="M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2 + 2:.1f},{y2:.1f}"/>'
    if x2 - x1 > BOX_W and y2 < y1:  # on to the next column: down, along the gap between columns, in from above
        low, high, gap = y1 + GAP_Y / 2, y2 - GAP_Y / 2, b[0] - COLUMN_GAP / 2
        return (
            f'<path d="M{x1:.1f},{y1:.1f} L{x1:.1f},{low:.1f} L{gap:.1f},{low:.1f} L{gap:.1f},{high:.1f} '
            f'L{x2:.1f},{high:.1f} L{x2:.1f},{y2 - 2:.1f}"/>'
        )
    return f'<path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + 40:.1f} {x2:.1f},{y2 - 40:.1f} {x2:.1f},{y2 - 2:.1f}"/>'


def svg(diagram: Diagram, *, title: str = "Block diagram") -> str:
    """The diagram as one ``<svg>`` element: rounded boxes (name, type or layer count, output shape) and arrows."""
    where, width, height = layout(diagram)
    parts = [
        f'<svg class="diagram" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        '<g fill="none" stroke="#666" stroke-width="1.2" marker-end="url(#arrow)">',
    ]
    parts += [_edge(where[a], where[b]) for a, b in diagram.edges if a in where and b in where]
    parts.append("</g>")
    for node in diagram.nodes:
        x, y = where[node.name]
        cx = x + BOX_W / 2
        if node.plain:
            parts.append(
                f'<text x="{cx:.1f}" y="{y + BOX_H / 2 + 4:.1f}" text-anchor="middle" font-size="11" '
                f'fill="#555">{escape(node.detail)}</text>'
            )
            continue
        parts.append(
            f"<g><title>{escape(node.name)}: {escape(node.detail)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="7" fill="{escape(node.fill)}" '
            'stroke="#888"/>'
            f'<text x="{cx:.1f}" y="{y + 15:.1f}" text-anchor="middle" font-size="11.5" font-weight="bold" '
            f'fill="#222">{escape(_short(node.name))}</text>'
            f'<text x="{cx:.1f}" y="{y + 30:.1f}" text-anchor="middle" font-size="10.5" '
            f'fill="#444">{escape(_short(node.detail, 34))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
