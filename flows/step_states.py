"""What a step's Prefect state says: its result, recorded as a `StepReport`, or why it failed.

The pipeline (`agentflows.pipeline`) runs the steps; this module reads their
states: `finish` takes a task's result (raising its error) and records the
step's report, `collect_drafts` does so for the fan-out, leaving out drafts
that failed where `min_items_ok` allows and keeping a rework's stored drafts.
`Tally` tells the fan-out when it can no longer succeed, so the drafts not yet
started are not paid for.
"""

from __future__ import annotations

from typing import Any

from prefect.states import State

from agentflows.progress import ProgressEvent, emit
from agentflows.tasks.artifacts import Draft, Plan, PlanItem, Step, StepReport
from agentflows.tasks.errors import ModelCallError, ModelOutputError, RunError
from agentflows.tasks.ledger import RunLedger, current_ledger
from agentflows.tasks.outcomes import dropped_draft
from agentflows.tasks.specs import GenerateSpec
from agentflows.tasks.storage import LineageEntry


class Tally:
    """The fan-out's failed drafts so far: once the step cannot succeed, drafts not yet started are not written.

    Without `min_items_ok` one failed draft fails the step; with it, the step fails once fewer than
    `min_items_ok` drafts are left that could succeed."""

    def __init__(self, total: int, min_items_ok: int | None) -> None:
        self.total, self.min_items_ok, self.failed = total, min_items_ok, 0

    def record(self, state: State[Any]) -> None:
        self.failed += state.is_failed() or state.is_crashed()

    @property
    def hopeless(self) -> bool:
        return self.failed > 0 and self.total - self.failed < (self.min_items_ok or self.total)


async def collect_drafts(
    agent: str,
    spec: GenerateSpec,
    min_items_ok: int | None,
    plan: Plan,
    states: list[State[Any] | Draft | None],
    reports: list[StepReport],
) -> tuple[list[Draft], list[LineageEntry]]:
    """The drafts that were written (or kept by a rework), and the lineage of those dropped (only where
    `min_items_ok` allows). A state of None is a draft not written once the step could not succeed."""
    drafts: list[Draft] = []
    failed: list[tuple[PlanItem, BaseException]] = []
    unwritten = 0
    for item, state in zip(plan.items, states, strict=True):
        if isinstance(state, Draft):  # a stored draft a rework keeps
            drafts.append(kept(state, reports))
            continue
        if state is None:
            unwritten += 1
            continue
        error = await _droppable(state) if min_items_ok is not None else None
        if error is not None:
            emit(ProgressEvent(agent, "generate", "failed", f"generate {item.key} dropped: {await why(state)}"))
            failed.append((item, error))
        else:
            drafts.append(await finish(agent, "generate", f"generate {item.key}", state, reports))
    if failed and len(drafts) < (min_items_ok or 0):
        raise _too_few(agent, len(drafts), len(plan.items), min_items_ok or 0, failed[0][1], unwritten)
    ledger = current_ledger() or RunLedger()
    dropped = []
    for item, error in failed:
        entry, report = dropped_draft(spec, plan, item, error, ledger)
        dropped.append(entry)
        reports.append(report)
    return drafts, dropped


async def _droppable(state: State[Any]) -> BaseException | None:
    """The error of a draft that failed in a way that may leave it out (not a bug), else None."""
    if not (state.is_failed() or state.is_crashed()):
        return None
    error = await state.aresult(raise_on_failure=False)
    return error if isinstance(error, RunError | TimeoutError) else None


def _too_few(agent: str, ok: int, total: int, needed: int, first: BaseException, unwritten: int) -> BaseException:
    left = f" ({unwritten} not written once too many had failed)" if unwritten else ""
    message = (
        f"{agent}/generate: {ok} of {total} drafts succeeded{left}, fewer than min_items_ok ({needed}); first: {first}"
    )
    return type(first)(message) if isinstance(first, ModelOutputError | ModelCallError) else first


def kept(draft: Draft, reports: list[StepReport]) -> Draft:
    """A stored draft a rework keeps, recorded as served from the cache (no model call)."""
    reports.append(StepReport(step="generate", label=f"generate {draft.item_key}", cached=True))
    return draft


async def finish(agent: str, step: Step, label: str, state: State[Any], reports: list[StepReport]) -> Any:
    """The task's result (raising its error if it failed), recorded in `reports`."""
    if state.is_failed() or state.is_crashed() or state.is_cancelled():
        emit(ProgressEvent(agent, step, "failed", f"{label}: {await why(state)}"))
    result = await state.aresult()
    cached = state.name == "Cached"
    if isinstance(result, Plan | Draft):
        report = StepReport(
            step=step, label=label, cached=cached, usage=result.provenance.usage, warnings=result.provenance.warnings
        )
    else:
        report = StepReport(step=step, label=label, cached=cached)
    reports.append(report)
    return result


async def why(state: State[Any]) -> str:
    """The first line of a failed task's error (not Prefect's wrapping of it)."""
    error = await state.aresult(raise_on_failure=False)
    text = str(error).strip().splitlines() if isinstance(error, BaseException) else []
    return text[0] if text else state.message or state.name or "failed"


def status(report: StepReport) -> Any:
    return "cached" if report.cached else "done"
