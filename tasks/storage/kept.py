"""The plan and drafts a stored content was built from, read back from its lineage: what a rework starts from.

Since schema 0003 every `decide` and `generate` row of the lineage keeps its
artifact's JSON. The plan a content's drafts were written from is the last plan
of its lineage: decide's, a revised one, or the editor's edit of either.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentflows.tasks.artifacts import Draft, Plan
from agentflows.tasks.storage.store import ContentStore, StoredContent


@dataclass(frozen=True)
class BuiltFrom:
    """A stored content with the plan and drafts it was built from."""

    content: StoredContent
    plan: Plan
    """The plan its drafts were written from."""
    drafts: dict[str, Draft]
    """Its drafts, by item key."""


def built_from(store: ContentStore, content_id: str) -> BuiltFrom | None:
    """The content `content_id` (or unique prefix) with its plan and drafts; None when its lineage kept none."""
    content = store.get(content_id)
    rows = store.records.lineage(content.generation_id)
    plans = [Plan.model_validate(r.artifact) for r in rows if r.step == "decide" and r.artifact]
    drafts = [Draft.model_validate(r.artifact) for r in rows if r.step == "generate" and r.artifact]
    if not plans:
        return None
    return BuiltFrom(content=content, plan=plans[-1], drafts={d.item_key: d for d in drafts})
