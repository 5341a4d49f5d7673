"""What a run keeps of the steps that failed: dropped drafts, and the report of a failed run.

A failed model step makes no artifact, but its answers and what it spent are in
the run's ledger (`tasks.ledger`). From there:

- `dropped_draft` turns a draft that failed, in a fan-out that allows it
  (`min_items_ok`), into a lineage entry (its provenance: attempts, usage, the
  error as a warning) and a step report, so the stored content says what was
  left out and why;
- `failure_markdown` is the report of a failed run (which step, why, what it
  spent, what the model answered), published on the flow run by
  `publish_failure` for users of the Prefect UI.
"""

from __future__ import annotations

import hashlib
import logging
import re

from prefect.artifacts import acreate_markdown_artifact

from agentflows.tasks.artifacts import Plan, PlanItem, Provenance, StepReport, canonical_json
from agentflows.tasks.ledger import RunLedger, StepAccount
from agentflows.tasks.prompts import template_hashes
from agentflows.tasks.specs import GenerateSpec
from agentflows.tasks.storage import LineageEntry

logger = logging.getLogger(__name__)
RAW_SHOWN = 1_200


def draft_label(spec: GenerateSpec, item: PlanItem) -> str:
    """The call label of one draft, as `write_draft` asks the model (`quiz/generate/02-…`)."""
    return f"{spec.agent_name}/generate/{item.key}"


def dropped_draft(
    spec: GenerateSpec, plan: Plan, item: PlanItem, error: BaseException, ledger: RunLedger
) -> tuple[LineageEntry, StepReport]:
    """The lineage entry and step report of a draft left out of the content."""
    account = ledger.account(draft_label(spec, item))
    warning = f"dropped: {_one_line(error)}"
    provenance = Provenance(
        agent=spec.agent_name,
        agent_version=spec.agent_version,
        step="generate",
        template_hashes=template_hashes(spec.templates),
        provider=spec.model.provider,
        model=spec.model.model,
        usage=account.usage,
        parent_checksum=plan.checksum,
        attempts=tuple(account.attempts),
        warnings=(warning,),
    )
    checksum = hashlib.sha256(canonical_json(provenance.model_dump(mode="json")).encode()).hexdigest()
    label = f"generate {item.key}"
    entry = LineageEntry(checksum=checksum, label=f"{label} (dropped)", provenance=provenance)
    report = StepReport(step="generate", label=label, cached=False, usage=account.usage, warnings=(warning,))
    return entry, report


def failure_markdown(ledger: RunLedger, error: BaseException | None = None) -> str:
    """The report of a failed run: the failed steps, what the run spent, and every answer they got."""
    usage = ledger.usage
    lines = [
        f"# {ledger.agent or 'run'} failed",
        "",
        f"{_one_line(error)}" if error else "",
        "",
        f"Model calls: {usage.calls}, tokens: {usage.prompt_tokens} + {usage.completion_tokens}, "
        f"cost {usage.cost:.4f}.",
    ]
    for account in ledger.failures():
        lines += ["", *_account_lines(account)]
    return "\n".join(lines).strip() + "\n"


def _account_lines(account: StepAccount) -> list[str]:
    lines = [f"## {account.label}", "", f"{account.error}", ""]
    for number, attempt in enumerate(account.attempts, 1):
        finish = f", finish {attempt.finish_reason}" if attempt.finish_reason else ""
        lines += [f"**Answer {number}** ({attempt.model}{finish}): {attempt.error or attempt.method or ''}", ""]
        raw = attempt.raw[:RAW_SHOWN] + ("…" if len(attempt.raw) > RAW_SHOWN else "")
        lines += ["```", raw.replace("```", "ʼʼʼ"), "```", ""]
    return lines


async def publish_failure(ledger: RunLedger, error: BaseException | None = None) -> None:
    """Put the failure report on the flow run; a failure to publish it never hides the run's own error."""
    if not ledger.failures():
        return
    key = re.sub(r"[^a-z0-9-]+", "-", f"{ledger.agent or 'run'}-failure-{(ledger.flow_run_id or '')[:8]}".lower())
    try:
        await acreate_markdown_artifact(
            markdown=failure_markdown(ledger, error), key=key.strip("-")[:100], description="Why the run failed"
        )
    except Exception as exc:  # the run already failed; say why the report is missing, keep the real error
        logger.warning("could not publish the failure report: %s", exc)


def _one_line(error: BaseException | None) -> str:
    text = str(error or "").strip().splitlines()
    return text[0][:500] if text else type(error).__name__
