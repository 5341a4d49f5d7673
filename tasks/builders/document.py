"""Document builder: Markdown sections → one Markdown file and one HTML page.

Each draft is a section whose `body` is Markdown. The sections are joined into
`index.md`, and rendered to HTML inside the agent's Jinja layout as
`index.html`. The layout receives `sections`: a list of mappings with `key`,
`title`, `html` (the rendered body) and `fields` (every field of the section).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

REQUIRES = {"body": ("string", "markdown")}
LAYOUT_VARIABLES = frozenset({"sections"})


check_plan = no_plan_checks


def check(fields: Mapping[str, Any]) -> list[str]:
    """Problems with one draft that a model could fix when asked again."""
    body = fields.get("body")
    return [] if isinstance(body, str) and body.strip() else ["`body` is empty; write the section's text"]


def assemble(job: BuildJob) -> Assembly:
    sections = []
    for draft in job.drafts:
        fields = section_fields(job, draft)
        sections.append(
            {
                "key": draft.item_key,
                "title": draft.title,
                "html": markdown_to_html(str(fields["body"])),
                "fields": fields,
            }
        )
    source = f"# {job.plan.title}\n\n{offline_banner(job)}" + "\n".join(
        f"## {draft.title}\n\n{str(section_fields(job, draft)['body']).strip()}\n" for draft in job.drafts
    )
    page = render_layout(job, sections=sections)
    words = len(source.split())
    return Assembly(
        files=(html_file("index.html", page), markdown_file("index.md", source)),
        primary="index.html",
        metadata={"sections": len(sections), "words": words, "format": "markdown"},
    )
