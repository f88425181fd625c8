"""A report as one HTML file that opens offline and prints to PDF.

Images are PNG ``data:`` URIs; plotly.js is inlined once in the head and every figure is a ``<div>`` with its
own small script (``fig.to_html(include_plotlyjs=False, full_html=False)``) and MathJax off; the CSS is
inline, with print rules (A4, a page break before each section, no figure split across pages). Nothing
in the file refers to the network: no ``src`` or ``href`` but ``data:`` URIs and ``#section`` links.

Example:
    >>> page = to_html(report)
    >>> page.count("<section id="), page.count("Plotly.newPlot")
    (9, 4)
"""

from __future__ import annotations

import base64
from html import escape

import numpy as np
import plotly.offline

from vizcore.present import render
from vizcore.report.content import Block, Columns, Gallery, Items, Picture, Plot, Report, Section, Svg, Table, Text

PLOTLY_CONFIG = {"displaylogo": False, "typesetMath": False, "responsive": True, "showTips": False}
PIXELATED_BELOW = 96  # px: smaller images are drawn with crisp pixels when scaled up

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --rule: #d8dee4; --accent: #3b5bdb; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; background: #fff; }
header, main, footer { max-width: 980px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; border-bottom: 1px solid var(--rule); }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0 0 12px; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 8px 0 14px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; }
section { padding: 18px 0 8px; border-bottom: 1px solid var(--rule); }
h2 { font-size: 21px; margin: 6px 0 10px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
p { margin: 6px 0 10px; max-width: 78ch; }
ul { max-width: 78ch; padding-left: 22px; }
li { margin: 4px 0; }
p.lead { font-size: 16.5px; }
p.note { color: var(--muted); font-size: 13.5px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 2px solid var(--rule); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; padding-left: 10px; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12.5px; padding-top: 4px; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid var(--rule); padding: 0 8px; margin-bottom: 12px; }
figure { margin: 8px 0 16px; break-inside: avoid; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; max-width: 90ch; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px 12px; align-items: flex-start; }
.gallery figure { margin: 0; }
.gallery figcaption { font-size: 11.5px; }
img { display: block; max-width: 100%; height: auto; }
img.px { image-rendering: pixelated; }
svg.diagram { max-width: 100%; height: auto; }
.plot { max-width: 720px; }
.columns { display: flex; flex-wrap: wrap; gap: 8px 36px; align-items: flex-start; }
footer { color: var(--muted); font-size: 12.5px; padding-top: 12px; padding-bottom: 40px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 11.5pt; }
  header, main, footer { max-width: none; padding: 0; }
  nav, .modebar-container { display: none !important; }
  section { break-before: page; border: 0; }
  section#summary { break-before: auto; }
  h2, h3 { break-after: avoid; }
  table, tr, img, svg, .plot { break-inside: avoid; }
  .scroll { max-height: none; overflow: visible; border: 0; padding: 0; }
}
"""


def data_uri(image: np.ndarray) -> str:
    """A uint8 image as a PNG ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(render.to_png(np.ascontiguousarray(image))).decode("ascii")


def _picture(p: Picture, in_gallery: bool = False) -> str:
    h, w = p.image.shape[:2]
    shown = p.width or w
    cls = ' class="px"' if max(h, w) < PIXELATED_BELOW and shown > w else ""
    alt = escape(p.alt or p.caption or "image", quote=True)
    img = f'<img{cls} src="{data_uri(p.image)}" alt="{alt}" width="{shown}" height="{round(h * shown / w)}">'
    caption = f"<figcaption>{escape(p.caption)}</figcaption>" if p.caption else ""
    width = f' style="width:{max(shown, 140)}px"' if in_gallery else ""  # a caption wraps under its image
    return f"<figure{width}>{img}{caption}</figure>"


def _table(t: Table) -> str:
    numeric = t.numeric or (False,) * len(t.header)

    def cell(tag: str, text: str, i: int) -> str:
        cls = ' class="num"' if i < len(numeric) and numeric[i] else ""
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    head = "".join(cell("th", h, i) for i, h in enumerate(t.header))
    body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>" for row in t.rows)
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    table = f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if len(t.rows) > 24 else table


class _Figures:
    """Numbers the figures' divs in document order, so the same report gives the same file."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, plot: Plot) -> str:
        self.count += 1
        div = plot.figure.to_html(
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            config=PLOTLY_CONFIG,
            div_id=f"figure-{self.count}",
        )
        caption = f"<figcaption>{escape(plot.caption)}</figcaption>" if plot.caption else ""
        return f'<figure class="plot">{div}{caption}</figure>'


def _block(block: Block, figures: _Figures) -> str:
    if isinstance(block, Text):
        if block.kind == "h3":
            return f"<h3>{escape(block.text)}</h3>"
        cls = f' class="{block.kind}"' if block.kind in ("lead", "note") else ""
        return f"<p{cls}>{escape(block.text)}</p>"
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Picture):
        return _picture(block)
    if isinstance(block, Gallery):
        inner = "".join(_picture(p, True) for p in block.pictures)
        caption = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><div class="gallery">{inner}</div>{caption}</figure>'
    if isinstance(block, Plot):
        return figures.html(block)
    if isinstance(block, Columns):
        return '<div class="columns">' + "".join(f"<div>{_block(b, figures)}</div>" for b in block.blocks) + "</div>"
    if isinstance(block, Svg):
        caption = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
        return f"<figure>{block.markup}{caption}</figure>"
    raise TypeError(f"Not a report block: {type(block).__name__}")


def _section(section: Section, figures: _Figures) -> str:
    body = "\n".join(_block(b, figures) for b in section.blocks)
    return f'<section id="{escape(section.id)}">\n<h2>{escape(section.title)}</h2>\n{body}\n</section>'


def to_html(report: Report) -> str:
    """The whole report as one self-contained HTML document."""
    ident = report.identity
    figures = _Figures()
    sections = "\n".join(_section(s, figures) for s in report.sections)
    nav = " ".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in report.sections)
    subtitle = f"{ident['model']} on {ident['dataset']['description']}"
    footer = (
        f"Made by ConvLens {ident['convlens_version']} (Keras {ident['versions']['keras']}, TensorFlow "
        f"{ident['versions']['tensorflow']}) on {ident['date']} in {report.seconds:.0f} s. This file is "
        "self-contained: it fetches nothing from the network. The numbers are also in report.json."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="ConvLens {escape(ident["convlens_version"])}">\n'
        f"<title>ConvLens report: {escape(ident['model'])}</title>\n<style>{CSS}</style>\n"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n</head>\n<body>\n'
        f"<header>\n<h1>{escape(ident['model'])}</h1>\n<p>{escape(subtitle)}</p>\n<nav>{nav}</nav>\n</header>\n"
        f"<main>\n{sections}\n</main>\n<footer>{escape(footer)}</footer>\n</body>\n</html>\n"
    )
