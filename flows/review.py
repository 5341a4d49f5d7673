"""An editor's review of the plan, between decide and generate: the run waits for a typed form and acts on it.

    review_plan()   round by round, shows the plan (Markdown above a prefilled form) and waits for a decision:
                    approve → the plan as approved, the editor's edits applied; revise → decide plans again with
                    the editor's notes; reject → `ReviewRejected` (the run ends Cancelled, nothing stored)
    waiting         a run in a process of its own (the CLI, `run_agent`, a router branch) pauses: the process
                    polls every `POLL_SECONDS`; a deployment's top-level run suspends instead, which releases
                    its worker: when resumed, the run starts again from the top, decide comes from the cache
                    and each form already answered is read back (`Suspended` runs need persisted results)
    timeout         `review.timeout` of the agent; the run applies `review.on_timeout` itself, as if a person had
                    decided: `fail` → `ReviewTimedOut` (Failed), `approve` → the plan as decide made it. A
                    suspended run has no process at its deadline: Prefect fails it, so agents whose outcome is
                    `approve` always pause.

Every decision becomes a lineage entry (`ReviewRecord`: decision, notes, reviewer, when, edits), and so do the
plans of revise rounds and an edited plan. When the pause is in place, a progress event says where to review:
the flow run's page in the Prefect UI and the `agentflows approve` / `reject` commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout, NotPausedError
from prefect.flow_runs import apause_flow_run, aresume_flow_run, asuspend_flow_run
from prefect.input.run_input import keyset_from_base_key
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Failed, State

from agentflows.progress import ProgressEvent, emit
from agentflows.review_form import ReviewForm, plan_content, plan_markdown, review_form
from agentflows.review_spec import ReviewSpec
from agentflows.tasks.artifacts import Plan, ReviewRecord
from agentflows.tasks.errors import ReviewEnded, ReviewRejected, ReviewTimedOut
from agentflows.tasks.prompts import clean_user_text
from agentflows.tasks.review import PlanContent, edited_plan, plan_edits, plan_entries, record_entry
from agentflows.tasks.specs import DecideSpec, PlanRevision
from agentflows.tasks.storage import LineageEntry

POLL_SECONDS = 2
"""How often a paused run asks Prefect whether it was resumed (Prefect's default is 10 s)."""
GRACE_SECONDS = 30
"""How much longer than the review timeout Prefect's own pause deadline is: the run applies its outcome first."""
TIMEOUT_REVIEWER = "agentflows (review timeout)"
Redecide = Callable[[PlanRevision], Awaitable[Plan]]


@dataclass(frozen=True)
class Reviewed:
    """The outcome of an approved review: the plan to write from, and what the lineage records of the review."""

    plan: Plan
    lineage: tuple[LineageEntry, ...]
    """Each decision, each revised plan and an edited plan, in order (after decide's first plan)."""
    records: tuple[ReviewRecord, ...]


@dataclass(frozen=True)
class Answer:
    """A decision the run received: the form, when it was sent, and whether the timeout sent it."""

    form: ReviewForm
    at: datetime
    automatic: bool


async def review_plan(spec: DecideSpec, setup: ReviewSpec, plan: Plan, redecide: Redecide) -> Reviewed:
    """Review `plan` round by round until it is approved; raises `ReviewRejected` or `ReviewTimedOut`."""
    lineage: list[LineageEntry] = []
    records: list[ReviewRecord] = []
    for round_ in range(1, setup.rounds + 1):
        answer = await ask_editor(spec, setup, plan, round_)
        form = answer.form
        content = plan_content(spec, form)
        record = ReviewRecord(
            decision=form.decision,
            notes=clean_user_text(form.notes),
            reviewer=clean_user_text(form.reviewer),
            decided_at=answer.at,
            round=round_,
            plan_checksum=plan.checksum,
            edits=plan_edits(PlanContent.of(plan), content),
            automatic=answer.automatic,
        )
        if form.decision == "reject":
            raise _ending(spec.agent_name, plan, record, setup)
        if form.decision == "approve":
            approved = edited_plan(plan, content, parent=plan.checksum)
            record = record.model_copy(update={"approved_checksum": approved.checksum})
            lineage.append(record_entry(record, plan.provenance, f"review round {round_}: approve"))
            if approved is not plan:
                lineage += plan_entries([("decide edited by the editor", approved)])
            return Reviewed(approved, tuple(lineage), (*records, record))
        entry = record_entry(record, plan.provenance, f"review round {round_}: revise")
        lineage.append(entry)
        records.append(record)
        revision = PlanRevision(round=round_ + 1, notes=record.notes, previous=content.view(), parent=entry.checksum)
        plan = await redecide(revision)
        lineage += plan_entries([(f"decide round {round_ + 1}", plan)])
    raise AssertionError("the last round offers only approve and reject")  # pragma: no cover


def ending_state(ended: ReviewEnded) -> State[Any]:
    """The final state of a run its review ended: Cancelled when rejected, Failed when nobody decided in time."""
    if isinstance(ended, ReviewTimedOut):
        return Failed(message=str(ended), data=ended)
    return Cancelled(message=str(ended), data=ended)


def replaying() -> bool:
    """Whether this flow run started again after it was suspended (its pauses fired before; Prefect does not
    count a resumed run as a new run) or retried: what it did before is cached."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return bool(run and (run.empirical_policy.pause_keys or run.run_count > 1))


async def ask_editor(spec: DecideSpec, setup: ReviewSpec, plan: Plan, round_: int) -> Answer:
    """Show `plan` as a form and wait for the editor's decision (or the timeout's)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("a review needs a flow run to pause")
    run = context.flow_run
    deadline = datetime.now(UTC) + timedelta(seconds=setup.timeout_seconds)
    then = "fails" if setup.on_timeout == "fail" else "is approved as it is"
    waits = f"waits until {deadline:%Y-%m-%d %H:%M} UTC, then {then}"
    description = plan_markdown(plan, spec.agent_name, round_, setup.rounds, waits)
    form = review_form(spec, plan, last_round=round_ == setup.rounds, description=description)
    key = f"review-{round_}"
    if suspends(run, setup):
        _announce(spec.agent_name, run.id, plan, round_, setup, "suspended (its worker is released)")
        answer = await asuspend_flow_run(wait_for_input=form, timeout=setup.timeout_seconds, key=key)
        return Answer(answer, await _answered_at(run.id, f"suspended-{key}"), automatic=False)
    watch = _Watch(spec.agent_name, run.id, key, plan, round_, setup)
    watching = asyncio.create_task(watch.run())
    try:
        answer = await apause_flow_run(
            wait_for_input=form,
            timeout=setup.timeout_seconds + GRACE_SECONDS,
            poll_interval=POLL_SECONDS,
            key=key,
        )
    finally:
        watching.cancel()
    return Answer(answer, await _answered_at(run.id, f"paused-{key}"), automatic=watch.decided)


def suspends(run: FlowRun, setup: ReviewSpec) -> bool:
    """Whether the run suspends rather than pauses: a deployment's top-level run, unless the timeout approves."""
    return run.deployment_id is not None and run.parent_task_run_id is None and setup.on_timeout == "fail"


class _Watch:
    """Beside a pause: says where to review once the form is in place, and applies the timeout's outcome."""

    def __init__(self, agent: str, run_id: UUID, key: str, plan: Plan, round_: int, setup: ReviewSpec) -> None:
        self.agent, self.run_id, self.key, self.plan, self.round, self.setup = agent, run_id, key, plan, round_, setup
        self.decided = False

    async def run(self) -> None:
        await self._form_in_place()
        _announce(self.agent, self.run_id, self.plan, self.round, self.setup, "paused")
        await asyncio.sleep(self.setup.timeout_seconds)
        decision = "approve" if self.setup.on_timeout == "approve" else "reject"
        notes = f"nobody decided within {self.setup.timeout}; the agent's review.on_timeout is {self.setup.on_timeout}"
        try:
            await aresume_flow_run(
                self.run_id, run_input={"decision": decision, "notes": notes, "reviewer": TIMEOUT_REVIEWER}
            )
        except (NotPausedError, FlowPauseTimeout, RuntimeError):
            return  # a person decided at the same moment: theirs stands
        self.decided = True

    async def _form_in_place(self) -> None:
        """Return once the run is paused under this key with its form saved (a resume before that would fail)."""
        schema = keyset_from_base_key(f"paused-{self.key}")["schema"]
        async with get_client() as client:
            while True:
                run = await client.read_flow_run(self.run_id)
                state = run.state
                if state and state.is_paused() and state.state_details.pause_key == self.key:
                    saved = await client.filter_flow_run_input(self.run_id, schema, 1, set())
                    if saved:
                        return
                await asyncio.sleep(0.2)


def _announce(agent: str, run_id: UUID, plan: Plan, round_: int, setup: ReviewSpec, how: str) -> None:
    """The progress event that says where to review: the UI page, and the commands with the API they need."""
    settings = get_current_settings()
    ui = settings.ui_url
    where = f"open {ui.rstrip('/')}/v2/runs/flow-run/{run_id} (menu → Resume) or run" if ui else "run"
    api = (
        f" with PREFECT_API_URL={settings.api.url}"
        if settings.api.url
        else " (from this machine only: this run's Prefect API is temporary; `agentflows up` starts a server)"
    )
    emit(
        ProgressEvent(
            agent,
            "review",
            "waiting",
            f"flow run {run_id} {how} for review of plan {plan.title!r} (round {round_} of {setup.rounds}, "
            f"{len(plan.items)} items, at most {setup.timeout}): {where} "
            f"`agentflows approve {run_id} [--notes …] [--plan FILE]` or `agentflows reject {run_id} "
            f"[--notes …]`{api}",
        )
    )


async def _answered_at(run_id: UUID, base_key: str) -> datetime:
    """When the decision was sent: the time Prefect stored the form's answer (the same when a run replays)."""
    response = keyset_from_base_key(base_key)["response"]
    async with get_client() as client:
        found = await client.filter_flow_run_input(run_id, response, 1, set())
    created = found[0].created if found else None
    return datetime.fromtimestamp(created.timestamp(), UTC) if created else datetime.now(UTC)


def _ending(agent: str, plan: Plan, record: ReviewRecord, setup: ReviewSpec) -> ReviewEnded:
    notes = " ".join(record.notes.split())
    if record.automatic:
        return ReviewTimedOut(
            f"{agent}: nobody reviewed the plan {plan.title!r} within {setup.timeout} "
            f"(review.on_timeout: fail); nothing was stored"
        )
    who = record.reviewer or "the editor"
    reason = f": {notes}" if notes else ""
    return ReviewRejected(f"{agent}: {who} rejected the plan {plan.title!r}{reason}; nothing was stored")
