"""The viewer's HTML pages: Jinja templates (`templates/`, autoescaped) and the values they show.

    index.html     every content, newest first: filters, search, paging
    content.html   a content: the header bar, then its page in a sandboxed frame, its
                   Markdown, a router manifest's components, or its list of files
    file.html      one file: table, Markdown, chart or highlighted source
    lineage.html   the artifacts behind a content: plan, drafts, build; models, tokens, attempts
    error.html     404 and friends, in one sentence

Pure: values in, HTML out; the routes (`app.py`) read the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from agentflows.tasks.manifest import Manifest
from agentflows.tasks.storage import StoredContent

TEMPLATES = Path(__file__).with_name("templates")
PAGE_SIZE = 25
MANIFEST_FILE = "manifest.json"


def human_size(size: int) -> str:
    """`1.2 kB`, `3.4 MB`: a byte count for people."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def utc(moment: datetime) -> datetime:
    """`moment` with its time zone (SQLite gives stored UTC times back without one)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(moment: datetime) -> str:
    """A timestamp as people read it, in UTC."""
    return utc(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime) -> str:
    """A timestamp for machines (ISO 8601 with its offset)."""
    return utc(moment).isoformat()


def page_url(content_id: str, path: str = "") -> str:
    """The viewer URL of a content's page, or of one of its files (path segments quoted)."""
    return f"/contents/{content_id}/{quote(path)}"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(size=human_size, when=when, iso=iso)
_env.globals.update(page_url=page_url)


def render(template: str, **values: Any) -> str:
    """Render one of the viewer's templates."""
    return _env.get_template(template).render(**values)


@dataclass(frozen=True)
class Header:
    """What the bar above every content page says."""

    content: StoredContent
    flow_run_url: str | None
    offline: bool
    current: str
    """`page`, `lineage`, or the path of the file shown."""


def header(content: StoredContent, prefect_ui: str | None, current: str = "page") -> Header:
    """The header bar of `content`, linking its Prefect flow run when a Prefect UI is known."""
    run = content.flow_run_id
    url = f"{prefect_ui.rstrip('/')}/runs/flow-run/{run}" if prefect_ui and run else None
    return Header(content=content, flow_run_url=url, offline=bool(content.metadata.get("offline")), current=current)


def manifest_of(data: bytes) -> Manifest | None:
    """The router manifest in the bytes of a `manifest.json`, or None when they hold none."""
    try:
        return Manifest.model_validate(json.loads(data))
    except (ValueError, ValidationError):
        return None


@dataclass(frozen=True)
class IndexQuery:
    """The index page's filters, as given in its query string."""

    content_type: str = ""
    agent: str = ""
    text: str = ""
    page: int = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def url(self, **changes: Any) -> str:
        """The index URL with these filters, some changed (empty ones left out)."""
        values = {"type": self.content_type, "agent": self.agent, "q": self.text, "page": self.page, **changes}
        kept = {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}
        return "/?" + urlencode(kept) if kept else "/"


def lineage_totals(content: StoredContent) -> dict[str, float]:
    """Model calls, tokens and cost summed over the content's lineage."""
    usages = [step["usage"] for step in content.lineage]
    return {
        "calls": sum(u["calls"] for u in usages),
        "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
        "completion_tokens": sum(u["completion_tokens"] for u in usages),
        "cost": sum(u["cost"] for u in usages),
        "warnings": sum(len(step["warnings"]) for step in content.lineage),
    }


def lineage_names(content: StoredContent) -> dict[str, str]:
    """The label of each artifact by its checksum, so a parent pointer reads as a name."""
    names = {step["checksum"]: step["label"] for step in content.lineage}
    request = content.lineage[0]["parent_checksum"] if content.lineage else None
    if request:
        names.setdefault(request, "request")
    return names
