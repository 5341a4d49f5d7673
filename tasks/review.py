"""A plan as an editor changes it, and what the change was. Pure: no Prefect, no I/O.

    PlanContent      a plan as an editor writes it: title, plan-level fields, items (title and fields), no keys
    edited_plan()    the plan the drafts are written from: decide's own when nothing changed, so its cached
                     drafts are used again, else a new `Plan` whose items are keyed again by position and title
    plan_edits()     what changed between two plans (or two sets of inputs), one line each, for the lineage
    record_entry()   a decision as a lineage entry, checksummed, whose parent is the plan it was about

A new item key is what makes `generate` write an item again: `generate`'s cache
key covers its own item and the plan-level fields, not its siblings, so an edit
rewrites only the items it touched (and those it moved).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from agentflows.tasks.artifacts import Plan, PlanItem, Provenance, ReviewRecord, canonical_json
from agentflows.tasks.names import item_key
from agentflows.tasks.storage import LineageEntry

SHOWN_CHARS = 60
"""Longest value an edit line quotes."""


class PlanContent(BaseModel):
    """A plan as an editor reads and writes it: what `decide` returns, without keys or provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    fields: dict[str, JsonValue] = {}
    """The plan-level fields, e.g. a lesson's objectives."""
    items: tuple[dict[str, JsonValue], ...]
    """Each item's `title` and fields, in order."""

    @classmethod
    def of(cls, plan: Plan) -> PlanContent:
        """The content of `plan`."""
        return cls(
            title=plan.title,
            fields=dict(plan.fields),
            items=tuple({"title": item.title, **item.fields} for item in plan.items),
        )

    def normal(self) -> PlanContent:
        """The same content without null values: a form that sends `null` for an absent field changes nothing."""
        return PlanContent(
            title=self.title,
            fields=_without_nulls(self.fields),
            items=tuple(_without_nulls(item) for item in self.items),
        )

    def view(self) -> dict[str, JsonValue]:
        """The plan as a plan file shows it: `title`, the plan-level fields, then `items`."""
        return {"title": self.title, **self.fields, "items": [dict(item) for item in self.items]}


def edited_plan(plan: Plan, content: PlanContent, parent: str) -> Plan:
    """The plan with `content`: `plan` itself when nothing changed, else a new plan whose parent is `parent`.

    A new plan's items are keyed as decide keys them (position and title), and its
    provenance names no model: the editor wrote it.
    """
    if PlanContent.of(plan).normal() == content.normal():
        return plan
    content = content.normal()
    items = tuple(
        PlanItem(
            key=item_key(index, str(raw["title"])),
            title=str(raw["title"]),
            fields={k: v for k, v in raw.items() if k != "title"},
        )
        for index, raw in enumerate(content.items)
    )
    made = plan.provenance
    provenance = Provenance(
        agent=made.agent, agent_version=made.agent_version, step="decide", offline=made.offline, parent_checksum=parent
    )
    return Plan(title=content.title, items=items, fields=content.fields, provenance=provenance).sealed()


def plan_edits(before: PlanContent, after: PlanContent) -> tuple[str, ...]:
    """Each change from `before` to `after`, one line each (empty when they are the same)."""
    before, after = before.normal(), after.normal()
    edits = [f"title: {_shown(before.title)} → {_shown(after.title)}"] if before.title != after.title else []
    edits += value_edits(before.fields, after.fields)
    old = [canonical_json(item) for item in before.items]
    new = [canonical_json(item) for item in after.items]
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            edits += _block_edits(before.items, after.items, range(i1, i2), range(j1, j2))
    return tuple(edits)


def _block_edits(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], olds: range, news: range
) -> list[str]:
    """The edits of a run of changed items: an item of the same position (when as many items came as went)
    or of the same title is the old one edited; the others were removed or added."""
    pairs = dict(zip(olds, news, strict=True)) if len(olds) == len(news) else {}
    for i in olds:
        same = [j for j in news if j not in pairs.values() and new[j].get("title") == old[i].get("title")]
        if i not in pairs and same:
            pairs[i] = same[0]
    edits = [f"removed item {i + 1} {_shown(old[i].get('title'))}" for i in olds if i not in pairs]
    edits += [_item_edit(old[i], new[j], j) for i, j in sorted(pairs.items(), key=lambda pair: pair[1])]
    return edits + [f"added item {j + 1} {_shown(new[j].get('title'))}" for j in news if j not in pairs.values()]


def value_edits(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`name: old → new` for each key whose value differs between the mappings."""
    return [
        f"{prefix}{name}: {_shown(before.get(name))} → {_shown(after.get(name))}"
        for name in sorted({*before, *after})
        if before.get(name) != after.get(name)
    ]


def record_entry(record: ReviewRecord, about: Provenance, label: str) -> LineageEntry:
    """`record` as the lineage entry `label`; its parent is the plan (or content) the decision was about."""
    checksum = hashlib.sha256(canonical_json(record.model_dump(mode="json")).encode()).hexdigest()
    provenance = Provenance(
        agent=about.agent,
        agent_version=about.agent_version,
        step="decide",
        offline=about.offline,
        parent_checksum=record.plan_checksum,
    )
    return LineageEntry(checksum=checksum, label=label, provenance=provenance, review=record)


def plan_entries(plans: Sequence[tuple[str, Plan]]) -> list[LineageEntry]:
    """Lineage entries of plans, by label, each keeping the plan itself (what a rework starts from)."""
    return [
        LineageEntry(
            checksum=plan.checksum, label=label, provenance=plan.provenance, artifact=plan.model_dump(mode="json")
        )
        for label, plan in plans
    ]


def _item_edit(old: Mapping[str, Any], new: Mapping[str, Any], position: int) -> str:
    changes = "; ".join(value_edits(old, new))
    return f"item {position + 1} {_shown(new.get('title'))}: {changes}"


def _without_nulls(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    return {k: v for k, v in values.items() if v is not None}


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, list | dict) else canonical_json(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
