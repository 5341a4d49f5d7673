"""The rows a save writes, and how a stored lineage row reads back: pure mapping, no I/O.

LineageEntry, RunInfo   what a save is given beside the content: the run's facts and its lineage
generation_row()        the `generations` row of a run (its usage as really spent, cached steps aside)
lineage_rows()          its `artifact_versions` rows, each artifact's JSON and a person's decision included
lineage_view()          one stored lineage row as `StoredContent.lineage` shows it
dataframe_row()         one content with its generation, as `ContentStore.to_dataframe` lists it
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from agentflows.tasks.artifacts import BuiltContent, Provenance, ReviewRecord, Usage
from agentflows.tasks.storage.records import now
from agentflows.tasks.storage.schema import ArtifactVersion, GeneratedContent, Generation


class LineageEntry(BaseModel):
    """One step artifact of a run: its checksum and provenance."""

    model_config = ConfigDict(frozen=True)

    checksum: str
    label: str
    """`decide`, `generate 02-how-it-works`, `build`; `review round 1: approve` for an editor's decision."""
    provenance: Provenance
    artifact: dict[str, JsonValue] | None = None
    """The plan or draft itself, kept so a rework can start from it."""
    review: ReviewRecord | None = None
    """The person's decision this entry records (review and rework entries)."""
    cached: bool = False
    """Whether the run took this artifact from the cache: then making it cost the run nothing."""

    @property
    def spent(self) -> Usage:
        """What this artifact cost the run: its usage, or nothing when it came from the cache."""
        return Usage() if self.cached else self.provenance.usage


class RunInfo(BaseModel):
    """Facts about the run that produced the content, stored beside it."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str | None = None
    inputs: dict[str, JsonValue] = {}
    lineage: list[LineageEntry] = []
    started_at: datetime | None = None
    reworked_from: str | None = None
    """The stored content this run reworked (`agentflows rerun`)."""


def generation_row(built: BuiltContent, run: RunInfo, content_id: str) -> dict[str, Any]:
    usages = [entry.spent for entry in run.lineage]
    finished = now()
    started = run.started_at
    return {
        "id": run.flow_run_id or f"local-{built.checksum[:32]}",
        "agent": built.provenance.agent,
        "agent_version": built.provenance.agent_version,
        "parameters": run.inputs,
        "flow_run_id": run.flow_run_id,
        "status": "completed",
        "started_at": started,
        "finished_at": finished,
        "seconds": (finished - started).total_seconds() if started else None,
        "model_calls": sum(u.calls for u in usages),
        "prompt_tokens": sum(u.prompt_tokens for u in usages),
        "completion_tokens": sum(u.completion_tokens for u in usages),
        "cost": sum(u.cost for u in usages),
        "latency_seconds": sum(u.latency_seconds for u in usages),
        "reworked_from": run.reworked_from,
        "cached_steps": sum(1 for entry in run.lineage if entry.cached),
        "content_id": content_id,
    }


def lineage_rows(run: RunInfo, generation_id: str) -> list[dict[str, Any]]:
    return [
        {
            "generation_id": generation_id,
            "position": position,
            "step": entry.label.split(" ")[0],
            "label": entry.label[:200],
            "checksum": entry.checksum,
            "parent_checksum": entry.provenance.parent_checksum,
            "template_hashes": entry.provenance.template_hashes,
            "provider": entry.provenance.provider,
            "model": entry.provenance.model,
            "offline": entry.provenance.offline,
            "cached": entry.cached,
            "calls": entry.spent.calls,
            "prompt_tokens": entry.spent.prompt_tokens,
            "completion_tokens": entry.spent.completion_tokens,
            "cost": entry.spent.cost,
            "attempts": [a.model_dump(mode="json") for a in entry.provenance.attempts],
            "warnings": list(entry.provenance.warnings),
            "knowledge": [ref.model_dump(mode="json") for ref in entry.provenance.knowledge],
            "artifact": entry.artifact,
            "review": entry.review.model_dump(mode="json") if entry.review else None,
        }
        for position, entry in enumerate(run.lineage)
    ]


def lineage_view(a: ArtifactVersion) -> dict[str, Any]:
    return {
        "step": a.step,
        "label": a.label,
        "checksum": a.checksum,
        "parent_checksum": a.parent_checksum,
        "template_hashes": a.template_hashes,
        "provider": a.provider,
        "model": a.model,
        "offline": a.offline,
        "cached": a.cached,
        "usage": {
            "calls": a.calls,
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "cost": a.cost,
        },
        "attempts": a.attempts,
        "warnings": a.warnings,
        "knowledge": a.knowledge,
        "review": a.review,
    }


def dataframe_row(c: GeneratedContent, g: Generation) -> dict[str, Any]:
    return {
        "id": c.id,
        "agent": c.agent,
        "agent_version": c.agent_version,
        "content_type": c.content_type,
        "format": c.format,
        "title": c.title,
        "created_at": c.created_at,
        "size": c.size,
        "generation_id": g.id,
        "flow_run_id": g.flow_run_id,
        "model_calls": g.model_calls,
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "tokens": g.prompt_tokens + g.completion_tokens,
        "cost": g.cost,
        "latency_seconds": g.latency_seconds,
        "cached_steps": g.cached_steps,
        "seconds": g.seconds,
    }
