"""report.html refers to nothing outside itself, inlines plotly.js once, and keeps to a size budget."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import plotly.offline

from vizcore.report import SECTION_IDS

EXTRA_BUDGET = 600_000  # bytes beyond plotly.js for 200 digits (measured: about 310 KB)
NETWORK = re.compile(r"^\s*(https?:|//|ftp:)", re.I)


class Collector(HTMLParser):
    """Every URL-bearing attribute, every <style> text and style attribute, the scripts and the section ids."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self.sections: list[str] = []
        self.tags: set[str] = set()
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "poster", "data", "srcset", "background"):
                self.urls.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")
        if tag == "section":
            self.sections.append(dict(attrs)["id"])
        if tag in ("style", "script"):
            self._in = tag
            (self.styles if tag == "style" else self.scripts).append("")

    def handle_endtag(self, tag):
        self._in = None if tag == self._in else self._in

    def handle_data(self, data):
        if self._in == "style":
            self.styles[-1] += data
        elif self._in == "script":
            self.scripts[-1] += data


def _parsed(written) -> tuple[str, Collector]:
    text = written[0].read_text(encoding="utf-8")
    parser = Collector()
    parser.feed(text)
    return text, parser


def test_nothing_outside_the_file_is_referenced(written):
    _, page = _parsed(written)
    assert page.urls, "the images are data: URIs, the navigation #links"
    for tag, name, value in page.urls:
        assert value.startswith(("data:image/png;base64,", "#")), (tag, name, value[:80])
    for css in page.styles:
        assert "@import" not in css
        for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
            assert target.startswith(("#", "data:")), target
    assert not {"link", "iframe", "object", "embed", "base"} & page.tags
    assert all(not NETWORK.match(value) for _, _, value in page.urls)


def test_plotly_js_is_inlined_once_and_draws_every_figure(written):
    text, page = _parsed(written)
    js = plotly.offline.get_plotlyjs()
    assert sum(script == js for script in page.scripts) == 1
    assert text.count(js[:2000]) == 1
    divs = len(re.findall(r'class="plotly-graph-div"', text))
    assert divs == 4 and text.count("Plotly.newPlot(") == divs  # confusion, faithfulness, weights, robustness
    assert text.count('"typesetMath": false') == divs  # MathJax is never asked for


def test_the_sections_come_in_order_with_print_rules(written):
    text, page = _parsed(written)
    assert page.sections == list(SECTION_IDS)
    assert "@media print" in text and "break-before: page" in text


def test_the_file_keeps_to_its_size_budget(written):
    size = written[0].stat().st_size
    extra = size - len(plotly.offline.get_plotlyjs().encode("utf-8"))
    print(f"report.html: {size:,} bytes, {extra:,} beyond plotly.js")
    assert 50_000 < extra <= EXTRA_BUDGET
