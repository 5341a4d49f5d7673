"""How the viewer shows one stored file: its media type, and the HTML of its page.

    CSV                  a table (pandas, cells escaped)
    Markdown             rendered, raw HTML in it escaped
    Vega-Lite spec       the chart drawn as SVG (the data report builder's drawing; no script,
                         no network) above the highlighted spec
    other text           highlighted source with line numbers (Pygments)
    HTML, images, other  not shown in a page: served as they are, sandboxed (`safety.content_policy`)

Pure: bytes in, markup out.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from agentflows.tasks.builders.common import markdown_to_html
from agentflows.tasks.builders.data_report import chart_svg

HIGHLIGHT_LIMIT = 1_000_000
"""Files larger than this (bytes) are shown as plain text, not highlighted."""
TEXT_TYPES = ("application/json", "application/yaml", "application/toml", "application/sql", "application/xml")
_PANDAS_STYLE = re.compile(r' style="[^"<>]*"')
_FORMATTER = HtmlFormatter(linenos="table", lineanchors="L", anchorlinenos=True, cssclass="highlight")


@dataclass(frozen=True)
class FileView:
    """The body of a file's page: what kind of view it is, and its HTML."""

    kind: str
    """`table`, `markdown`, `chart` or `code`."""
    html: Markup


def media_type(path: str, recorded: Mapping[str, Any]) -> str:
    """The file's media type: as its builder recorded it, else guessed from its name; text in UTF-8."""
    found = recorded.get(path)
    kind = found if isinstance(found, str) and found else mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if is_text(kind) else kind


def is_text(kind: str) -> bool:
    """Whether a media type is text the viewer can show in a page of its own."""
    return kind.startswith("text/") or kind.split(";")[0] in TEXT_TYPES or kind.endswith(("+json", "+xml"))


def shown_in_page(kind: str) -> bool:
    """Whether the file gets a viewer page (text other than HTML) rather than being served as it is."""
    base = kind.split(";")[0]
    return is_text(base) and base != "text/html"


def file_view(path: str, kind: str, data: bytes) -> FileView | None:
    """The page body of a text file, or None when the bytes are not UTF-8 text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    base = kind.split(";")[0]
    if base == "text/csv" and (table := csv_table(data)) is not None:
        return FileView("table", table)
    if base == "text/markdown":
        return FileView("markdown", markdown_to_html(text))
    if path.endswith(".vl.json") and (chart := spec_chart(text)) is not None:
        return FileView("chart", Markup(chart + source_html(path, text)))
    return FileView("code", source_html(path, text))


def csv_table(data: bytes) -> Markup | None:
    """A CSV file as an HTML table, or None when pandas cannot read it."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError):
        return None
    table = frame.to_html(index=False, escape=True, border=0, classes="table", na_rep="")
    return Markup(_PANDAS_STYLE.sub("", table))  # pandas' own style attributes; the viewer allows no inline style


def source_html(path: str, text: str) -> Markup:
    """Highlighted source with anchored line numbers (`#L-12`); plain when it is very large."""
    if len(text) > HIGHLIGHT_LIMIT:
        return Markup(f'<pre class="plain">{escape(text)}</pre>')
    try:
        lexer = get_lexer_for_filename(path)
    except ClassNotFound:
        lexer = TextLexer()
    return Markup(highlight(text, lexer, _FORMATTER))


def highlight_css() -> str:
    """The stylesheet of highlighted source."""
    return str(_FORMATTER.get_style_defs(".highlight"))


def spec_chart(text: str) -> Markup | None:
    """The chart of a Vega-Lite spec with inline data (bar or line over two fields) as SVG, else None."""
    try:
        spec = json.loads(text)
        x, y = (_field_name(spec["encoding"][axis]["field"]) for axis in ("x", "y"))
        frame = pd.DataFrame(spec["data"]["values"])[[x, y]]
        mark = spec.get("mark", "bar")
        kind = mark.get("type", "bar") if isinstance(mark, dict) else mark
        return Markup(f'<figure class="chart">{chart_svg(frame, {"kind": kind, "x": x, "y": y})}</figure>')
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _field_name(field: str) -> str:
    """A Vega-Lite field back to its column name (the builder escapes `.`, brackets, quotes, backslashes)."""
    return re.sub(r"\\(.)", r"\1", field)
