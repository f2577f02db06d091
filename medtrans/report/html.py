"""HTML building blocks of the report: escaping, numbers, tables, embedded PNGs and the page shell.

The page is one self-contained file: inline CSS, images as ``data:image/png;base64,`` URIs, no
scripts, no external resources and no timestamp of its own.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

CSS = """
:root { --ink: #1d2430; --muted: #5d6878; --line: #dfe3ea; --accent: #1f5fa8; --bad: #b03a2e; --warn: #9a6b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: #f4f6f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; min-height: 100vh; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .meta { color: var(--muted); margin: 0; }
header .meta span + span::before { content: "\\00b7"; margin: 0 8px; }
nav { margin: 16px 0 8px; padding: 8px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; }
h2 { margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); font-size: 20px; }
h3 { margin: 22px 0 6px; font-size: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0 8px; }
.card { flex: 1 1 150px; padding: 12px 14px; border: 1px solid var(--line); border-radius: 8px; background: #fafbfd; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; }
.card .value small { font-size: 14px; font-weight: 400; color: var(--muted); }
.box { margin: 14px 0; padding: 10px 14px; border-radius: 6px; border-left: 5px solid; }
.box.bad { background: #fbeceb; border-color: var(--bad); }
.box.missing { background: #fdf6e3; border-color: var(--warn); }
.box ul { margin: 4px 0 0; padding-left: 20px; }
.box strong { display: block; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fbeceb; }
.scroll { overflow-x: auto; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      overflow-x: auto; font-size: 12px; line-height: 1.4; max-height: 520px; }
.note { color: var(--muted); }
a { color: var(--accent); }
"""


@dataclass(frozen=True)
class Section:
    """One titled part of the page; ``anchor`` is its id for the navigation bar."""

    anchor: str
    title: str
    body: str


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def anchor_id(prefix: str, name: str) -> str:
    """An HTML id made of ``prefix`` and ``name`` with anything but letters, digits, '-' and '_' replaced."""
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}"


def format_number(value: float | None) -> str:
    """A number for reading: whole numbers as such, else up to 1-4 decimals by magnitude; 'n/a' when undefined."""
    if value is None or not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1e6:
        return str(int(value))
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.3e}"
    decimals = 1 if magnitude >= 100 else 2 if magnitude >= 10 else 3 if magnitude >= 1 else 4
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def number_cell(value: float | None, exact: str | None = None) -> str:
    """A right-aligned table cell; ``data-value`` keeps the exact number (as written in its source file)."""
    exact_text = exact if exact is not None else ("" if value is None else repr(float(value)))
    return f'<td class="num" data-value="{esc(exact_text)}">{esc(format_number(value))}</td>'


def text_cell(value: Any) -> str:
    """A plain table cell holding escaped text."""
    return f"<td>{esc(value)}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None,
          numeric_headers: Sequence[str] = ()) -> str:
    """A table from header texts and rows of ready-made ``<td>`` cells; ``row_classes`` style whole rows."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if h in numeric_headers else f"<th>{esc(h)}</th>"
                   for h in headers)
    body = []
    for index, cells in enumerate(rows):
        css_class = row_classes[index] if row_classes else ""
        attribute = f' class="{esc(css_class)}"' if css_class else ""
        body.append(f"<tr{attribute}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def figure(png: bytes, alt: str, caption: str = "") -> str:
    """An embedded PNG (base64 data URI) with an optional caption."""
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{caption_html}</figure>'


def item_list(items: Sequence[str]) -> str:
    """A bullet list of escaped texts."""
    return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def box(kind: str, title: str, items: Sequence[str]) -> str:
    """A coloured notice ('bad' or 'missing') with a bold title and a bullet list."""
    return f'<div class="box {esc(kind)}"><strong>{esc(title)}</strong>{item_list(items)}</div>'


def note(text: str) -> str:
    """A muted paragraph."""
    return f'<p class="note">{esc(text)}</p>'


def page(title: str, top: str, sections: Sequence[Section]) -> str:
    """The whole HTML document: header and summary (``top``), navigation, then the sections."""
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{top}<nav>{nav}</nav>{body}</main></body></html>\n"
    )
