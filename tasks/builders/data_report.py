"""Data report builder: tables and charts → an HTML report, CSV tables and chart specs.

Each draft is one section: `narrative` (Markdown), a table (`columns` and
`rows`) and a `chart` (`kind`: bar or line; `x` and `y`: column names, by default
the first column and the one after it). A row is a list of cells, or an object
whose values are its cells in column order: a `{label, value: number}` row lets a
server that holds the answer to its schema make the value a number. Tables go
through pandas; every section yields `tables/<key>.csv` and a Vega-Lite spec
`charts/<key>.vl.json`; `report.md` opens with the plan's text fields (the key
finding). The layout receives `sections`: mappings with `key`,
`title`, `narrative` (HTML), `table` (HTML), `chart_svg` (an inline SVG drawing
of the chart, so the page needs no script or network) and `chart_spec` (path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
from markupsafe import Markup, escape

from agentflows.tasks.artifacts import BuiltFile
from agentflows.tasks.builders.common import (
    Assembly,
    BuildJob,
    html_file,
    markdown_file,
    markdown_to_html,
    no_plan_checks,
    offline_banner,
    render_layout,
    section_fields,
)
from agentflows.tasks.errors import BuildError

REQUIRES = {
    "narrative": ("string", "markdown"),
    "columns": ("list", None),
    "rows": ("list", None),
    "chart": ("object", None),
}
LAYOUT_VARIABLES = frozenset({"sections"})
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
CHART_KINDS = ("bar", "line")


check_plan = no_plan_checks


def check(fields: Mapping[str, Any]) -> list[str]:
    """Problems with one section that a model could fix when asked again."""
    columns, rows, chart = fields.get("columns"), table_rows(fields.get("rows")), fields.get("chart")
    if not isinstance(columns, list) or len(columns) < 2 or len(set(map(str, columns))) != len(columns):
        return ["`columns` must name at least two different columns"]
    if not isinstance(rows, list) or not rows:
        return ["`rows` must hold at least one row"]
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            return [
                f"row {number} has {len(row) if isinstance(row, list) else 0} cells; "
                f"every row needs {len(columns)}, one per column"
            ]
    if not isinstance(chart, Mapping):
        return ["`chart` must give its kind (and may name the x and y columns)"]
    if chart.get("kind", "bar") not in CHART_KINDS:
        return [f"`chart.kind` is {chart.get('kind')!r}; it must be 'bar' or 'line'"]
    axes = chart_axes(columns, chart)
    for axis in ("x", "y"):
        if axes[axis] not in columns:
            return [f"`chart.{axis}` is {axes[axis]!r}; it must be one of the columns {columns!r}"]
    y_index = columns.index(axes["y"])
    if not all(_is_number(row[y_index]) for row in rows):
        return [f"column {axes['y']!r} is the chart's y axis, so every row needs a number there"]
    return []


def table_rows(rows: Any) -> Any:
    """`rows` with each object row as the list of its values (in column order); anything else as it is."""
    if not isinstance(rows, list):
        return rows
    return [list(row.values()) if isinstance(row, Mapping) else row for row in rows]


def chart_axes(columns: list[Any], chart: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's `kind`, `x` and `y`: the columns it names, else the first column and the one after it."""
    x = chart.get("x", columns[0])
    y = chart.get("y", next((c for c in columns if c != x), x))
    return {"kind": chart.get("kind", "bar"), "x": x, "y": y}


def assemble(job: BuildJob) -> Assembly:
    files: list[BuiltFile] = []
    sections = []
    markdown = [f"# {job.plan.title}\n\n{offline_banner(job)}{plan_summary(job.plan.fields)}"]
    for draft in job.drafts:
        fields = section_fields(job, draft)
        if problems := check(fields):
            raise BuildError(f"draft {draft.item_key!r}: {problems[0]}")
        frame = pd.DataFrame(table_rows(fields["rows"]), columns=[str(c) for c in fields["columns"]])
        chart = chart_axes(fields["columns"], fields["chart"])
        spec = chart_spec(draft.title, frame, chart)
        spec_path = f"charts/{draft.item_key}.vl.json"
        files.append(
            BuiltFile(path=f"tables/{draft.item_key}.csv", media_type="text/csv", text=frame.to_csv(index=False))
        )
        files.append(
            BuiltFile(
                path=spec_path, media_type="application/json", text=json.dumps(spec, indent=2, ensure_ascii=False)
            )
        )
        sections.append(
            {
                "key": draft.item_key,
                "title": draft.title,
                "narrative": markdown_to_html(str(fields["narrative"])),
                "table": Markup(frame.to_html(index=False, escape=True, border=0, classes="table")),
                "chart_svg": chart_svg(frame, chart),
                "chart_spec": spec_path,
                "fields": fields,
            }
        )
        markdown.append(f"## {draft.title}\n\n{str(fields['narrative']).strip()}\n\n{markdown_table(frame)}\n")
    page = html_file("index.html", render_layout(job, sections=sections))
    return Assembly(
        files=(page, markdown_file("report.md", "\n".join(markdown)), *files),
        primary="index.html",
        metadata={"tables": len(sections), "charts": [s["chart_spec"] for s in sections]},
    )


def plan_summary(fields: Mapping[str, Any]) -> str:
    """The plan's own text fields (such as the key finding) as bold-labelled Markdown lines."""
    lines = [
        f"**{name.replace('_', ' ').capitalize()}:** {' '.join(value.split())}\n"
        for name, value in fields.items()
        if isinstance(value, str) and value.strip()
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def chart_spec(title: str, frame: pd.DataFrame, chart: Mapping[str, Any]) -> dict[str, Any]:
    """A Vega-Lite spec of the chart with its data inline."""
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "title": title,
        "data": {"values": json.loads(frame.to_json(orient="records"))},
        "mark": {"type": chart.get("kind", "bar"), "tooltip": True},
        "encoding": {
            "x": {"field": vega_field(chart["x"]), "type": "ordinal", "sort": None},
            "y": {"field": vega_field(chart["y"]), "type": "quantitative"},
        },
    }


def vega_field(column: str) -> str:
    """`column` as a Vega-Lite field name: dots, brackets, quotes and backslashes escaped,
    so that `Sales (1.5 k)` names the column rather than a nested property."""
    return re.sub(r"""([.\[\]\\'"])""", r"\\\1", str(column))


def chart_svg(frame: pd.DataFrame, chart: Mapping[str, Any], width: int = 560, height: int = 240) -> Markup:
    """Draw a bar or line chart as inline SVG; labels are escaped."""
    labels = [str(v) for v in frame[chart["x"]]]
    values = [float(v) for v in frame[chart["y"]]]
    top = max([*values, 0.0]) or 1.0
    bottom = min([*values, 0.0])
    span = (top - bottom) or 1.0
    left, base, plot_h = 40, height - 30, height - 50
    step = (width - left - 10) / max(len(values), 1)

    def y_of(value: float) -> float:
        return base - (value - bottom) / span * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(chart["y"])} by {escape(chart["x"])}">'
    ]
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#888"/>')
    if chart.get("kind") == "line":
        points = " ".join(f"{left + step * (i + 0.5):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="#3366cc" stroke-width="2" points="{points}"/>')
    else:
        for i, value in enumerate(values):
            y0, y1 = sorted((y_of(value), y_of(max(bottom, 0.0))))
            parts.append(
                f'<rect x="{left + step * i + step * 0.15:.1f}" y="{y0:.1f}" width="{step * 0.7:.1f}" '
                f'height="{max(y1 - y0, 1):.1f}" fill="#3366cc"><title>{escape(labels[i])}: {value:g}</title></rect>'
            )
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{left + step * (i + 0.5):.1f}" y="{height - 12}" font-size="11" '
            f'text-anchor="middle">{escape(label[:14])}</text>'
        )
    parts.append(f'<text x="4" y="{y_of(top) + 4:.1f}" font-size="11">{top:g}</text></svg>')
    return Markup("".join(parts))


def markdown_table(frame: pd.DataFrame) -> str:
    """The frame as a Markdown pipe table."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
