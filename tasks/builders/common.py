"""What every builder shares: the build job, Markdown rendering, the layout call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import JsonValue

from agentflows.tasks.artifacts import BuiltFile, ContentType, Draft, Plan
from agentflows.tasks.prompts import render

OFFLINE_NOTICE = (
    "Written by the agentflows offline provider: no language model was called. "
    "Configure a model provider to get real content."
)
COMMON_LAYOUT_VARIABLES = frozenset({"agent", "inputs", "plan", "title", "offline", "notice"})

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@dataclass(frozen=True)
class BuildJob:
    """Everything a builder reads: the plan, its drafts in plan order, and the layout."""

    agent: Mapping[str, Any]
    content_type: ContentType
    inputs: Mapping[str, JsonValue]
    plan: Plan
    drafts: tuple[Draft, ...]
    layout: str
    templates: Mapping[str, str]
    offline: bool


@dataclass(frozen=True)
class Assembly:
    """What a builder makes: files, which one to open first, and metadata."""

    files: tuple[BuiltFile, ...]
    primary: str
    metadata: dict[str, Any] = field(default_factory=dict)


def no_plan_checks(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """`check_plan` of a builder that needs nothing of the plan as a whole."""
    return []


def section_fields(job: BuildJob, draft: Draft) -> dict[str, Any]:
    """A draft's fields over its plan item's fields (the draft wins on a clash)."""
    return {**job.plan.item(draft.item_key).fields, **draft.fields}


def markdown_to_html(text: str) -> Markup:
    """Render Markdown to HTML; raw HTML in the text is escaped, never passed through."""
    return Markup(_markdown.render(text))


def render_layout(job: BuildJob, **variables: Any) -> str:
    """Render the job's layout template with the common variables plus `variables`."""
    common = {
        "agent": dict(job.agent),
        "inputs": dict(job.inputs),
        "plan": job.plan.view(),
        "title": job.plan.title,
        "offline": job.offline,
        "notice": OFFLINE_NOTICE if job.offline else "",
    }
    return render(job.templates, job.layout, {**common, **variables}, html=True)


def html_file(path: str, text: str) -> BuiltFile:
    return BuiltFile(path=path, media_type="text/html", text=text)


def markdown_file(path: str, text: str) -> BuiltFile:
    return BuiltFile(path=path, media_type="text/markdown", text=text)


def offline_banner(job: BuildJob) -> str:
    """A Markdown line saying the content was written offline, or nothing."""
    return f"> {OFFLINE_NOTICE}\n\n" if job.offline else ""
