"""Results passed from one agent's run to the agents that build on it.

    upstream run ──► Handoff (plan, drafts, text, content id, checksum) ──► dependent's prompts, cache key, lineage

`handoff_of` makes the `Handoff` of a finished run; `upstream_variables` gives a
dependent's templates each upstream under the name its `uses` entry declares
(none when that upstream is not part of the run). The dependent's lineage records
which upstream content and version it was made from (`uses_label`, read back by
`builds_on`), so `agentflows show` of a quiz leads to its lesson plan. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from agentflows.tasks.artifacts import (
    HANDOFF_TEXT_CHARS,
    BuiltContent,
    Draft,
    Handoff,
    Plan,
    SavedContent,
)

USES_STEP = "uses"
"""The lineage step of an upstream content a run was made from (label `uses <agent> <content id>`)."""


def handoff_of(
    plan: Plan, drafts: Sequence[Draft], built: BuiltContent, saved: SavedContent, inputs: Mapping[str, JsonValue]
) -> Handoff:
    """What agents that build on this run receive of it."""
    by_key = {d.item_key: d for d in drafts}
    items = tuple(
        {
            **item.fields,
            **(by_key[item.key].fields if item.key in by_key else {}),
            "key": item.key,
            "title": item.title,
        }
        for item in plan.items
    )
    return Handoff(
        agent=built.provenance.agent,
        agent_version=built.provenance.agent_version,
        content_id=saved.content_id,
        checksum=built.checksum,
        title=plan.title,
        location=saved.location,
        inputs=dict(inputs),
        fields=dict(plan.fields),
        items=items,
        text=_text_of(built),
    )


def _text_of(built: BuiltContent) -> str:
    """The content's Markdown file, else its primary file, cut to `HANDOFF_TEXT_CHARS`."""
    markdown = next((f for f in built.files if f.media_type == "text/markdown"), None)
    text = (markdown or built.file(built.primary)).text
    return text if len(text) <= HANDOFF_TEXT_CHARS else text[:HANDOFF_TEXT_CHARS] + "\n…"


def upstream_variables(uses: Mapping[str, str], upstream: Mapping[str, Handoff]) -> dict[str, Any]:
    """Each used agent's result under its template variable; None for one that is not part of the run."""
    return {variable: upstream[agent].view() if agent in upstream else None for agent, variable in uses.items()}


def uses_label(handoff: Handoff) -> str:
    """The lineage label of an upstream content: `uses lesson_plan 9a41…`."""
    return f"{USES_STEP} {handoff.agent} {handoff.content_id}"


def builds_on(lineage: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Content id of each upstream, by agent, from a stored lineage (`StoredContent.lineage`)."""
    found = {}
    for entry in lineage:
        parts = str(entry.get("label", "")).split()
        if entry.get("step") == USES_STEP and len(parts) == 3:
            found[parts[1]] = parts[2]
    return found
