"""A backtest report as one self-contained HTML page: headings, paragraphs, tables and figures.

Pure rendering, no MLflow: ``foedus.pipelines.report`` gathers a run's figures and tables and
passes them here as ``Section``s. Figures are embedded as ``data:image/png;base64,...`` and the
stylesheet is inline, so the page opens anywhere (a mail attachment, the MLflow UI's artifact
view) with no network and no file beside it.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
p.note { color: #555; font-style: italic; }
nav ol { columns: 2; font-size: 0.95em; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.short { white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, numbers.Real) and math.isnan(value))


def number(value) -> str:
    """A number as a table shows it: whole numbers with thousands separators, shares and
    probabilities with four significant digits (scientific below 0.0001), others with two
    decimals; missing as -."""
    if _missing(value):
        return "-"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral) or float(value).is_integer():
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 1e-4:
        return f"{value:.4g}"
    return f"{value:.2e}"


def percent(value, digits: int = 2) -> str:
    """A share (0.0123) as a percentage (1.23%); missing as -."""
    return "-" if _missing(value) else f"{100 * value:.{digits}f}%"


@dataclass(frozen=True)
class Paragraph:
    """Plain text (escaped), with `backticks` around a command set as code. ``note``: set in
    grey italics, for what is absent and why."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as an HTML table. ``formats``: column -> function of a cell to its
    text (default: ``number`` for numeric columns, the value's text otherwise); the index is
    dropped unless ``index``."""

    frame: pd.DataFrame
    caption: str | None = None
    formats: Mapping[str, Callable[[object], str]] = field(default_factory=dict)
    index: bool = False


@dataclass(frozen=True)
class Image:
    """A PNG figure, embedded as base64."""

    png: bytes
    caption: str = ""

    def __post_init__(self):
        if not self.png.startswith(PNG_MAGIC):
            raise ValueError(f"not a PNG image ({self.caption or 'no caption'})")


@dataclass(frozen=True)
class Section:
    """One heading and its blocks, in order: ``Paragraph``, ``Table``, ``Image`` or a
    ``Section`` (a sub-heading)."""

    heading: str
    blocks: Sequence[Paragraph | Table | Image | Section] = ()


def _anchor(index: int) -> str:
    return f"s{index}"


# identifiers, not quantities: no thousands separator (1,946 is not a year)
PLAIN_COLUMNS = frozenset({"year", "ccode", "ccode1", "ccode2", "fold", "target"})


def _is_quantity(frame: pd.DataFrame, column) -> bool:
    dtype = frame[column].dtype
    return (column not in PLAIN_COLUMNS and pd.api.types.is_numeric_dtype(dtype)
            and not pd.api.types.is_bool_dtype(dtype))


SHORT = 20  # a text column whose cells are never longer is not wrapped (years, test blocks, dates)


def _cell_classes(body: str, classes: dict[int, str]) -> str:
    """Give the cells of each column position in ``classes`` that class: ``to_html`` has no
    per-column classes, and numbers read best right-aligned, short labels unbroken."""
    rows = body.split("<tr>")
    for r, row in enumerate(rows):
        cells = row.split("<td>")
        if len(cells) > 1:
            rows[r] = cells[0] + "".join((f'<td class="{classes[i]}">' if i in classes else "<td>") + cell
                                         for i, cell in enumerate(cells[1:]))
    return "<tr>".join(rows)


def _table(block: Table) -> str:
    frame = block.frame.reset_index() if block.index else block.frame
    quantities = {c for c in frame.columns if _is_quantity(frame, c)}
    formats = {c: block.formats.get(c, number if c in quantities else _text) for c in frame.columns}
    # every cell is text before to_html, so that its own float formatting never applies
    cells = pd.DataFrame({c: [formats[c](v) for v in frame[c].tolist()] for c in frame.columns},
                         columns=frame.columns)
    body = cells.to_html(index=False, escape=True, border=0, justify="left")
    classes = {}
    for i, c in enumerate(frame.columns):
        if c in quantities or (c in block.formats and pd.api.types.is_numeric_dtype(frame[c].dtype)):
            classes[i] = "num"
        elif cells[c].str.len().max() <= SHORT:
            classes[i] = "short"
    body = _cell_classes(body, classes)
    if block.caption:
        body = body.replace(">", f"><caption>{html.escape(block.caption)}</caption>", 1)
    return body


def _text(value) -> str:
    return "-" if _missing(value) else str(value)


def _image(block: Image) -> str:
    data = base64.b64encode(block.png).decode("ascii")
    caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">{caption}</figure>'


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _blocks(blocks, depth: int) -> list[str]:
    parts = []
    for block in blocks:
        if isinstance(block, Paragraph):
            opening = '<p class="note">' if block.note else "<p>"
            parts.append(f"{opening}{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Image):
            parts.append(_image(block))
        elif isinstance(block, Section):
            parts.append(f"<h{depth + 1}>{html.escape(block.heading)}</h{depth + 1}>")
            parts += _blocks(block.blocks, depth + 1)
        else:
            raise TypeError(f"a report block is a Paragraph, Table, Image or Section, not {type(block).__name__}")
    return parts


def render_html(title: str, sections: Sequence[Section], intro: Sequence[Paragraph | Table] = ()) -> str:
    """The whole page: ``title``, ``intro`` blocks, a table of contents, then each section
    under an ``<h2>``. Self-contained: inline stylesheet, images as data URIs, no script."""
    toc = "".join(f'<li><a href="#{_anchor(i)}">{html.escape(s.heading)}</a></li>' for i, s in enumerate(sections))
    body = [f"<h1>{html.escape(title)}</h1>", *_blocks(intro, 2), f"<nav><ol>{toc}</ol></nav>"]
    for i, section in enumerate(sections):
        body.append(f'<h2 id="{_anchor(i)}">{html.escape(section.heading)}</h2>')
        body += _blocks(section.blocks, 2)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
